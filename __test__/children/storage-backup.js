// A process that backs up a StorageManager over and over while writing, and
// prints a line before each backup; the test kills it with SIGKILL.
// argv: <config.json path>
'use strict'
const { StorageManager } = require('../../dist/storage/index.js')

async function main() {
  const manager = await StorageManager.fromConfig(process.argv[2])
  let n = 0
  const writing = (async () => {
    for (;;) {
      await manager.store('db', `k${String(n).padStart(6, '0')}`, { n })
      n++
    }
  })()
  writing.catch((error) => {
    process.stderr.write(String(error && error.stack) + '\n')
    process.exit(2)
  })
  for (let i = 0; ; i++) {
    process.stdout.write(`backup ${i}\n`)
    const info = await manager.backupNow()
    process.stdout.write(`done ${info.id}\n`)
  }
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack) + '\n')
  process.exit(1)
})
