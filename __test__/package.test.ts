// Installs the packed tarballs into a fresh project (no Rust, no install
// scripts; the three runtime dependencies from npm's cache or, where the cache
// holds only the abbreviated metadata that `npm install` of this repository
// leaves, from the registry: `--prefer-offline`, as `--offline` fails there
// with ENOTCACHED on a fresh machine) and uses annvault from it as
// users do. Slow by nature: one npm pack + install, several child processes.

import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, type Dirent } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { tempDirs } from './fixtures'

const repo = resolve(__dirname, '..')
const dirs = tempDirs()
let project: string
let tarballs: { main: string; platform: string }

function run(command: string, args: string[], cwd = project): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, CI: 'true' } })
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}\n${result.stdout}\n${result.stderr}`)
  }
  return result
}

function lastJsonLine(output: string): unknown {
  const lines = output.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

beforeAll(() => {
  const out = dirs.next()
  tarballs = JSON.parse(execFileSync('node', [join(repo, 'scripts/pack.js'), out], { encoding: 'utf8' }))
  project = join(dirs.next(), 'consumer')
  mkdirSync(project)
  cpSync(join(repo, '__test__/consumer-fixture'), project, { recursive: true })
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarballs.main, tarballs.platform])
}, 300_000)

afterAll(() => dirs.cleanup())

test('the main tarball holds no binary and no install script; the platform one holds the binary', () => {
  const listing = (tgz: string) => execFileSync('tar', ['tzf', tgz], { encoding: 'utf8' }).trim().split('\n').sort()
  // dist/ holds the compiled lib/ (its files come and go with lib/); the entry points must be there.
  const main = listing(tarballs.main)
  expect(main.filter((f) => !f.startsWith('package/dist/'))).toEqual([
    'package/README.md',
    'package/bin/annvault.js',
    'package/binding.d.ts',
    'package/binding.js',
    'package/index.d.ts',
    'package/index.js',
    'package/index.mjs',
    'package/native.js',
    'package/package.json',
  ])
  expect(main).toContain('package/dist/cli/main.js')
  expect(main).toContain('package/dist/persistence/index.js')
  expect(main).toContain('package/dist/pgvector.js')
  expect(main.filter((f) => f.startsWith('package/dist/') && !/\.(js|d\.ts)$/.test(f))).toEqual([])
  expect(main).toContain('package/dist/persistence/native.js')
  expect(main).toContain('package/dist/persistence/native.d.ts')
  expect(listing(tarballs.platform)).toEqual(['package/annvault.linux-x64-gnu.node', 'package/package.json'])
  const installed = JSON.parse(readFileSync(join(project, 'node_modules/annvault/package.json'), 'utf8'))
  expect(installed.scripts).toBeUndefined()
  expect(installed.optionalDependencies).toEqual({ 'annvault-linux-x64-gnu': installed.version })
})

test('CommonJS require with the factory defaults', () => {
  const result = lastJsonLine(run('node', ['cjs.cjs']).stdout) as {
    hits: { id: string; score: number; payload: { title: string } }[]
    dimensionError: { isDimension: boolean; isStore: boolean; expected: number; actual: number }
    info: { dimension: number; persistencePath: string }
  }
  expect(result.hits).toHaveLength(1)
  expect(result.hits[0].id).toBe('doc-1')
  expect(result.hits[0].score).toBeCloseTo(1, 5)
  expect(result.dimensionError).toEqual({ isDimension: true, isStore: true, expected: 1536, actual: 3 })
  expect(result.info.dimension).toBe(1536)
  expect(result.info.persistencePath).toBe('./data/vector-storage')
})

test('ESM import, named and default, share one set of classes', () => {
  const result = lastJsonLine(run('node', ['esm.mjs']).stdout)
  expect(result).toEqual({
    hits: [
      { id: 'two', score: 3, payload: { n: 2 } },
      { id: 1, score: 1, payload: { n: 1 } },
    ],
    caught: { instance: true, sameClass: true, kind: 'INVALID_ID' },
  })
})

test('strict TypeScript compiles against the published typings and runs', () => {
  const tsc = join(repo, 'node_modules/typescript/bin/tsc')
  run('node', [
    tsc,
    '--strict',
    '--noUncheckedIndexedAccess',
    '--target',
    'ES2022',
    '--module',
    'commonjs',
    '--moduleResolution',
    'node',
    '--esModuleInterop',
    '--typeRoots',
    join(repo, 'node_modules/@types'),
    '--types',
    'node',
    '--outDir',
    'out',
    'app.ts',
  ])
  const result = lastJsonLine(run('node', ['out/app.js']).stdout)
  // 1 hit, 2 listed, 2 in total; update with 2 values into 4 dimensions.
  expect(result).toEqual({ checksum: 122, dims: [4, 2] })
})

test('a type error in user code is caught by the typings', () => {
  writeFileSync(
    join(project, 'wrong.ts'),
    "import { createPersistentInMemoryStore } from 'annvault'\n" +
      "void createPersistentInMemoryStore('x').then(({ store }) => store.search('not a vector'))\n",
  )
  const tsc = join(repo, 'node_modules/typescript/bin/tsc')
  const args = [tsc, '--strict', '--noEmit', '--typeRoots', join(repo, 'node_modules/@types'), '--types', 'node', 'wrong.ts']
  const result = spawnSync('node', args, {
    cwd: project,
    encoding: 'utf8',
  })
  expect(result.status).not.toBe(0)
  expect(result.stdout).toContain('not assignable')
})

test('jest in the user project: test files in parallel workers, exiting by themselves', () => {
  const jest = join(repo, 'node_modules/jest/bin/jest.js')
  rmSync(join(project, 'workers.log'), { force: true })
  // Two workers, always: jest runs files in band when its cached timings say they are quick, unless
  // a worker memory limit is set (shouldRunInBand in @jest/core); this one is never reached.
  const result = run('node', [jest, '--config', 'jest.config.cjs', '--rootDir', project, '--ci', '--maxWorkers=2', '--workerIdleMemoryLimit=4GB'])
  const output = result.stdout + result.stderr
  expect(output).toMatch(/Tests:\s+6 passed, 6 total/)
  expect(output).not.toMatch(/did not exit/)
  const workers = new Set(
    readFileSync(join(project, 'workers.log'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ')[1]),
  )
  expect(workers.size).toBeGreaterThan(1)
})

test('jest in the user project: in band with --detectOpenHandles finds no open handle', () => {
  const jest = join(repo, 'node_modules/jest/bin/jest.js')
  const result = run('node', [jest, '--config', 'jest.config.cjs', '--rootDir', project, '--ci', '--runInBand', '--detectOpenHandles'])
  const output = result.stdout + result.stderr
  expect(output).toMatch(/Tests:\s+6 passed, 6 total/)
  expect(output).not.toMatch(/open handle/i)
  expect(output).not.toMatch(/did not exit/)
})

test('worker_threads load the addon beside the main thread', () => {
  const result = lastJsonLine(run('node', ['worker.cjs']).stdout)
  expect(result).toEqual(['main:b:main', 'w1:b:w1', 'w2:b:w2'])
})

test('npx annvault works from the installed package: --help, and inspect on a collection', () => {
  const help = run('npx', ['--no-install', 'annvault', '--help'])
  expect(help.stdout).toContain('Usage: annvault')
  for (const command of ['inspect', 'verify', 'compact', 'search', 'get', 'export', 'import', 'snapshot', 'migrate', 'backup']) expect(help.stdout).toContain(command)
  const data = dirs.next()
  run('node', [
    '-e',
    `const { createVectorStore } = require('annvault')
     createVectorStore({ collectionName: 'notes', dimension: 2, persistencePath: process.argv[1] }).then(async ({ manager, store }) => {
       await store.insert([[1, 0], [0, 1]], ['a', 'b'], [{}, {}])
       await manager.disconnect()
     })`,
    data,
  ])
  const inspected = JSON.parse(run('npx', ['--no-install', 'annvault', 'inspect', data, '--json', '--quiet']).stdout)
  expect(inspected.collections.map((c: { name: string; count: number; dimension: number }) => [c.name, c.count, c.dimension])).toEqual([
    ['notes', 2, 2],
  ])
})

test('the key-value adapter loads from its sub-path in the installed package and round-trips a value', () => {
  const script = `
    const { NativeAdapter } = require('annvault/persistence/native')
    const path = require('node:path').join(process.cwd(), 'kv-data')
    const a = new NativeAdapter({ path })
    a.init()
      .then(() => a.set([{ key: 'k', value: { kind: 'json', text: '[1]' }, metadata: '{}', expiresAt: null }], 5))
      .then(() => a.get(['k'], 5))
      .then(async ([entry]) => { await a.close(); console.log(JSON.stringify(entry)) })`
  const entry = lastJsonLine(run('node', ['-e', script]).stdout)
  expect(entry).toEqual({
    key: 'k',
    value: { kind: 'json', text: '[1]' },
    metadata: '{}',
    createdAt: 5,
    updatedAt: 5,
    expiresAt: null,
  })
})
