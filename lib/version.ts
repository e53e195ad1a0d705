/** The package's version, read from package.json at load time. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const version: string = require('../package.json').version
