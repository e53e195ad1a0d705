#!/usr/bin/env node
// Packs annvault the way it is published: the main package (JS façade,
// loader, typings; no binary, no install script) with an optional dependency
// on the platform package that carries the built .node file.
//
//   node scripts/pack.js <out-dir>     prints the two tarball paths as JSON
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const out = path.resolve(process.argv[2] || path.join(root, 'dist'))
const platform = 'linux-x64-gnu'
const binary = `annvault.${platform}.node`

function pack(dir) {
  const output = execFileSync('npm', ['pack', '--json', '--pack-destination', out], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return path.join(out, JSON.parse(output)[0].filename)
}

function main() {
  if (!fs.existsSync(path.join(root, binary))) {
    throw new Error(`${binary} is missing: run 'npm run build' (or build:debug) first`)
  }
  fs.mkdirSync(out, { recursive: true })
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-pack-'))
  try {
    const rootPackage = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

    const platformDir = path.join(staging, platform)
    fs.mkdirSync(platformDir)
    const platformPackage = JSON.parse(fs.readFileSync(path.join(root, 'npm', platform, 'package.json'), 'utf8'))
    if (platformPackage.version !== rootPackage.version) {
      throw new Error(`npm/${platform}/package.json has version ${platformPackage.version}, expected ${rootPackage.version}`)
    }
    fs.writeFileSync(path.join(platformDir, 'package.json'), JSON.stringify(platformPackage, null, 2))
    fs.copyFileSync(path.join(root, binary), path.join(platformDir, binary))

    const mainDir = path.join(staging, 'main')
    fs.mkdirSync(mainDir)
    for (const file of [...rootPackage.files, 'README.md', 'LICENSE']) {
      // `dist/` (the compiled lib/ façade) is a directory: copy recursively.
      if (fs.existsSync(path.join(root, file))) fs.cpSync(path.join(root, file), path.join(mainDir, file), { recursive: true })
    }
    const published = { ...rootPackage }
    delete published.devDependencies
    delete published.scripts
    // The benchmark reference (hnswlib-node) is an optional dependency of the repository only.
    delete published.allowScripts
    published.optionalDependencies = { [platformPackage.name]: rootPackage.version }
    fs.writeFileSync(path.join(mainDir, 'package.json'), JSON.stringify(published, null, 2))

    const tarballs = { main: pack(mainDir), platform: pack(platformDir) }
    process.stdout.write(JSON.stringify(tarballs) + '\n')
  } finally {
    fs.rmSync(staging, { recursive: true, force: true })
  }
}

main()
