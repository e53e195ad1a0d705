// FileAdapter under failing and crashing file systems: every file-system call an operation makes
// is, in turn, made to fail (EIO, ENOSPC, and EIO from there on) or is where the power goes out.
// After each, a fresh manager over the directory must hold exactly the old state or exactly the
// new one, byte for byte, with no temp or intent file left, and must go on working.

import { promises as fsp, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, type Dirent } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import type { FileAdapterFileSystem } from '../lib/persistence/file-adapter'
import { DefaultPersistenceManager, FileAdapter, PersistenceError } from '../lib/persistence/index'
import { tempDirs } from './fixtures'

const dirs = tempDirs()
afterAll(() => dirs.cleanup())

// A fixed clock, so that two runs of an operation write the same bytes.
const SETUP_TIME = 1_700_000_000_000
const OP_TIME = SETUP_TIME + 3_600_000
let clock = SETUP_TIME
beforeAll(() => {
  jest.spyOn(Date, 'now').mockImplementation(() => clock)
})
afterAll(() => jest.restoreAllMocks())

// ---------------------------------------------------------------- a file system with hooks

interface Hooks {
  /** Before each call; throwing fails the call without doing it. */
  before(call: string, target: string): void
  /** After a call that succeeded; what it returns for an `open` is handed to the handle's calls. */
  after?(call: string, target: string, args: unknown[], token: unknown): unknown
}

/** `fs.promises` with every call the adapter can make, and every call on a handle it opens, going through `hooks`. */
function hookedFs(hooks: Hooks): FileAdapterFileSystem {
  const real = fsp as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const wrapHandle = (handle: FileHandle, target: string, token: unknown) => ({
    async writeFile(...args: unknown[]) {
      hooks.before('handle.writeFile', target)
      await (handle.writeFile as (...a: unknown[]) => Promise<void>)(...args)
      hooks.after?.('handle.writeFile', target, args, token)
    },
    async sync() {
      hooks.before('handle.sync', target)
      await handle.sync()
      hooks.after?.('handle.sync', target, [], token)
    },
    async close() {
      try {
        hooks.before('handle.close', target)
      } finally {
        await handle.close() // a failed close still releases the descriptor, as close(2) does
      }
    },
  })
  const wrapped: Record<string, unknown> = {}
  for (const name of ['copyFile', 'link', 'mkdir', 'open', 'readdir', 'readFile', 'rename', 'rm', 'stat']) {
    wrapped[name] = async (...args: unknown[]) => {
      const target = String(args[0])
      hooks.before(name, target)
      const result = await real[name](...args)
      const token = hooks.after?.(name, target, args, undefined)
      return name === 'open' ? wrapHandle(result as FileHandle, target, token) : result
    }
  }
  return wrapped as unknown as FileAdapterFileSystem
}

function errnoError(code: string, call: string, target: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: injected, ${call} '${target}'`)
  error.code = code
  error.syscall = call
  error.path = target
  return error
}

// ---------------------------------------------------------------- states on disk

type Snapshot = Record<string, string>

/** Every file under `dir` (temp and intent files too) by relative path, with its contents. */
function snapshot(dir: string): Snapshot {
  const out: Snapshot = {}
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true }) as Dirent[]) {
      const full = join(current, entry.name)
      if (entry.isDirectory()) walk(full)
      else out[relative(dir, full).split(sep).join('/')] = readFileSync(full, 'utf8')
    }
  }
  walk(dir)
  return out
}

function same(a: Snapshot, b: Snapshot): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => k in b && a[k] === b[k])
}

function differences(from: Snapshot, to: Snapshot): string[] {
  const out: string[] = []
  for (const k of Object.keys(to)) if (!(k in from)) out.push(`+${k}`)
  for (const k of Object.keys(from)) if (!(k in to)) out.push(`-${k}`)
  for (const k of Object.keys(to)) if (k in from && from[k] !== to[k]) out.push(`~${k}`)
  return out
}

function expectOldOrNew(label: string, actual: Snapshot, old: Snapshot, neu: Snapshot): void {
  if (same(actual, old) || same(actual, neu)) return
  throw new Error(
    `${label}: neither the old state nor the new one; against old: ${differences(old, actual).join(' ')}; ` +
      `against new: ${differences(neu, actual).join(' ')}`,
  )
}

function without(state: Snapshot, ...files: string[]): Snapshot {
  const out = { ...state }
  for (const file of files) delete out[file]
  return out
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  return undefined
}

/**
 * Opens a plain manager over `base` (recovery runs), checks it against old/new, and that it
 * still writes. `probe`: a value written to key `a` after the operation failed and acknowledged.
 */
async function reopenAndCheck(label: string, base: string, old: Snapshot, neu: Snapshot, probe?: string): Promise<void> {
  const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
  await kv.init()
  const state = snapshot(base)
  if (probe === undefined) expectOldOrNew(label, state, old, neu)
  else {
    expect([label, JSON.parse(state['a.json'] ?? 'null')?.value]).toEqual([label, probe])
    expectOldOrNew(label, without(state, 'a.json'), without(old, 'a.json'), without(neu, 'a.json'))
  }
  await kv.find('*') // every entry left parses
  await kv.set('after', label)
  expect((await kv.get('after'))!.value).toBe(label)
  await kv.close()
}

// ---------------------------------------------------------------- the operations

const LONG_OLD = `l${'o'.repeat(99)}` // 100 bytes: in a directory made by the setup
const LONG_NEW = `m${'n'.repeat(119)}` // 120 bytes: its directory is made by the operation

async function seed(base: string): Promise<void> {
  clock = SETUP_TIME
  const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
  await kv.init()
  await kv.set('a', 1)
  await kv.set('b', { x: 2 }, { tag: 'b' })
  await kv.set('bin', Buffer.from([0, 1, 2, 255]))
  await kv.set(LONG_OLD, 'long')
  await kv.set('exp:1', 'soon', {}, { ttl: 60 })
  await kv.set('exp:2', 'soon', {}, { ttl: 60 })
  await kv.close()
  clock = OP_TIME
}

type Operation = (kv: DefaultPersistenceManager) => Promise<unknown>

const operations: Array<[string, Operation]> = [
  ['set of a new key', (kv) => kv.set('c', 3)],
  ['set over an existing key', (kv) => kv.set('a', { y: 'new' }, { tag: 'a' })],
  ['set into a new directory', (kv) => kv.set(LONG_NEW, 'deep')],
  [
    'setMany of several keys in several directories',
    (kv) =>
      kv.setMany([
        { key: 'a', value: 10 },
        { key: 'c', value: 30 },
        { key: LONG_OLD, value: 'longer' },
        { key: LONG_NEW, value: 'deep' },
      ]),
  ],
  ['delete', (kv) => kv.delete('b')],
  ['deleteMany', (kv) => kv.deleteMany(['a', 'b', LONG_OLD, 'missing'])],
  ['clear', (kv) => kv.clear()],
  ['maintain', (kv) => kv.maintain()],
]

interface Scenario {
  seeded: string
  old: Snapshot
  neu: Snapshot
  /** The calls the operation makes when nothing fails. */
  calls: string[]
}

const scenarios = new Map<string, Scenario>()

/** Seeds a directory, runs the operation once on a copy with nothing failing, counting its calls. */
async function scenario(name: string, operation: Operation): Promise<Scenario> {
  const known = scenarios.get(name)
  if (known) return known
  const seeded = join(dirs.next(), 'files')
  await seed(seeded)
  const { base, calls, error } = await crashRun(seeded, operation, Infinity)
  expect(error).toBeUndefined()
  const made: Scenario = { seeded, old: snapshot(seeded), neu: snapshot(base), calls }
  expect(same(made.old, made.neu)).toBe(false)
  expect(Object.keys(made.neu).filter((f) => basename(f).startsWith('~'))).toEqual([])
  scenarios.set(name, made)
  return made
}

function copyOf(dir: string): string {
  const copy = join(dirs.next(), 'files')
  cpSync(dir, copy, { recursive: true })
  return copy
}

// ---------------------------------------------------------------- fault injection

const faults: Array<{ code: string; sticky: boolean; label: string }> = [
  { code: 'EIO', sticky: false, label: 'EIO once' },
  { code: 'ENOSPC', sticky: false, label: 'ENOSPC once' },
  { code: 'EIO', sticky: true, label: 'EIO from then on' },
]

describe.each(operations)('FileAdapter %s', (name, operation) => {
  test.each(faults)('$label at each of its file-system calls rejects with 5002 and leaves the old or the new state', async (fault) => {
    const { seeded, old, neu, calls } = await scenario(name, operation)
    expect(calls.length).toBeGreaterThan(2)
    for (let k = 1; k <= calls.length; k++) {
      const label = `${name}, ${fault.label} at call ${k} of ${calls.length} (${calls[k - 1]})`
      const base = copyOf(seeded)
      let count = 0
      let armed = false
      const fileSystem = hookedFs({
        before(call, target) {
          if (!armed) return
          count++
          if (count === k || (fault.sticky && count > k)) throw errnoError(fault.code, call, target)
        },
      })
      const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base, fileSystem }))
      await kv.init()
      armed = true
      const error = await rejection(operation(kv))
      expect([label, error instanceof PersistenceError, (error as PersistenceError | undefined)?.code]).toEqual([label, true, 5002])
      // The same manager either refuses (it knows a write broke half-way) or goes on: what it then
      // acknowledges must last, even over a key the failed operation touched.
      let probe: string | undefined = `probe ${k}`
      const probeError = await rejection(kv.set('a', probe))
      if (probeError !== undefined) {
        expect([label, probeError instanceof PersistenceError]).toEqual([label, true])
        probe = undefined
      }
      await kv.close()
      await reopenAndCheck(label, base, old, neu, probe)
    }
  })
})

// ---------------------------------------------------------------- power cuts

/** A file or directory as the recorder sees it: what is there now, and what an fsync made durable. */
type Node =
  | { kind: 'file'; data: string; synced: string | null }
  | { kind: 'dir'; entries: Map<string, Node>; synced: Map<string, Node> }

/**
 * Mirrors the calls that succeeded on a directory tree: creates, writes, renames and removals
 * change `entries` / `data`; an fsync of a file makes its data durable, one of a directory its
 * entries. What was on disk when it started counts as durable.
 */
class Recorder {
  readonly root: Node & { kind: 'dir' }

  constructor(readonly base: string) {
    this.root = Recorder.scan(base)
  }

  private static scan(dir: string): Node & { kind: 'dir' } {
    const entries = new Map<string, Node>()
    for (const entry of readdirSync(dir, { withFileTypes: true }) as Dirent[]) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) entries.set(entry.name, Recorder.scan(full))
      else {
        const data = readFileSync(full, 'utf8')
        entries.set(entry.name, { kind: 'file', data, synced: data })
      }
    }
    return { kind: 'dir', entries, synced: new Map(entries) }
  }

  private dirOrNull(target: string): (Node & { kind: 'dir' }) | null {
    let node: Node = this.root
    const rel = relative(this.base, resolve(target))
    for (const part of rel === '' ? [] : rel.split(sep)) {
      const next: Node | undefined = node.kind === 'dir' ? node.entries.get(part) : undefined
      if (!next || next.kind !== 'dir') return null
      node = next
    }
    return node as Node & { kind: 'dir' }
  }

  private dir(target: string): Node & { kind: 'dir' } {
    const node = this.dirOrNull(target)
    if (!node) throw new Error(`recorder: no directory ${target}`)
    return node
  }

  after(call: string, target: string, args: unknown[], token: unknown): unknown {
    const parent = () => this.dir(dirname(target))
    const name = basename(target)
    switch (call) {
      case 'open': {
        const flags = args[1]
        if (flags === 'r') return resolve(target) === this.base ? this.root : parent().entries.get(name)
        if (flags !== 'wx') throw new Error(`recorder: open flags ${String(flags)}`)
        const file: Node = { kind: 'file', data: '', synced: null }
        parent().entries.set(name, file)
        return file
      }
      case 'handle.writeFile': {
        const node = token as Node & { kind: 'file' }
        node.data += String(args[0])
        return undefined
      }
      case 'handle.sync': {
        const node = token as Node
        if (node.kind === 'file') node.synced = node.data
        else node.synced = new Map(node.entries)
        return undefined
      }
      case 'rename': {
        const node = parent().entries.get(name)!
        parent().entries.delete(name)
        const to = String(args[1])
        this.dir(dirname(to)).entries.set(basename(to), node)
        return undefined
      }
      case 'rm': // force: the file may not have been there
        if (resolve(target) !== this.base) this.dirOrNull(dirname(target))?.entries.delete(name)
        return undefined
      case 'mkdir': {
        const recursive = (args[1] as { recursive?: boolean } | undefined)?.recursive === true
        if (recursive && resolve(target) === this.base) return undefined
        if (recursive) throw new Error('recorder: mkdir -p below the base')
        parent().entries.set(name, { kind: 'dir', entries: new Map(), synced: new Map() })
        return undefined
      }
      case 'readFile':
      case 'readdir':
      case 'stat':
        return undefined
      default:
        throw new Error(`recorder: ${call} is not modelled`)
    }
  }

  /**
   * Writes into `dir` what a power cut could leave: the directory entries as they are or only
   * the fsynced ones, and each file's data as it is or only what was fsynced (none: empty).
   */
  materialize(dir: string, entries: 'all' | 'synced', data: 'all' | 'synced'): void {
    const write = (node: Node & { kind: 'dir' }, at: string) => {
      mkdirSync(at, { recursive: true })
      for (const [name, child] of entries === 'all' ? node.entries : node.synced) {
        if (child.kind === 'dir') write(child, join(at, name))
        else writeFileSync(join(at, name), data === 'all' ? child.data : (child.synced ?? ''))
      }
    }
    write(this.root, dir)
  }
}

class PowerCut extends Error {
  code = 'EIO'
}

const worlds: Array<{ entries: 'all' | 'synced'; data: 'all' | 'synced' }> = [
  { entries: 'all', data: 'all' },
  { entries: 'synced', data: 'synced' },
  { entries: 'synced', data: 'all' },
  { entries: 'all', data: 'synced' },
]

interface CrashRun {
  /** The directory as the calls left it. */
  base: string
  recorder: Recorder
  /** The calls made, the one the power went out at and any tried after it included. */
  calls: string[]
  error: unknown
}

/**
 * Runs `operation` over a copy of `seeded` on a recorded file system whose power goes out at
 * call `cutAt` (counted from the operation's start; with `withInit`, the operation opens the
 * manager itself and `init()`'s calls count).
 */
async function crashRun(seeded: string, operation: Operation, cutAt: number, withInit = false): Promise<CrashRun> {
  const base = copyOf(seeded)
  let recorder: Recorder | null = withInit ? new Recorder(base) : null
  const calls: string[] = []
  const fileSystem = hookedFs({
    before(call, target) {
      if (!recorder) return
      calls.push(`${call} ${relative(base, target)}`)
      if (calls.length >= cutAt) throw new PowerCut(`power cut before ${call} ${target}`)
    },
    after: (call, target, args, token) => recorder?.after(call, target, args, token),
  })
  const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base, fileSystem }))
  if (!withInit) {
    await kv.init()
    recorder = new Recorder(base)
  }
  const error = await rejection(operation(kv))
  await kv.close()
  return { base, recorder: recorder!, calls, error }
}

/** Checks that the recorder saw what the directory holds, then reopens each world a power cut could leave. */
async function checkWorlds(label: string, run: CrashRun, old: Snapshot, neu: Snapshot): Promise<void> {
  const everything = join(dirs.next(), 'files')
  run.recorder.materialize(everything, 'all', 'all')
  expect([label, snapshot(everything)]).toEqual([label, snapshot(run.base)])
  for (const world of worlds) {
    const place = join(dirs.next(), 'files')
    run.recorder.materialize(place, world.entries, world.data)
    await reopenAndCheck(`${label}, entries: ${world.entries}, data: ${world.data}`, place, old, neu)
  }
}

describe.each(operations)('FileAdapter %s', (name, operation) => {
  test('a power cut at each of its file-system calls leaves the old or the new state, the new one once it resolved', async () => {
    const { seeded, old, neu, calls } = await scenario(name, operation)
    for (let k = 1; k <= calls.length + 1; k++) {
      const cut = k <= calls.length
      const label = cut ? `${name}, power cut at call ${k} of ${calls.length} (${calls[k - 1]})` : `${name}, no power cut`
      const run = await crashRun(seeded, operation, k)
      if (cut) expect([label, run.error instanceof PersistenceError]).toEqual([label, true])
      else expect([label, run.error]).toEqual([label, undefined])
      // Once it resolved, nothing of it may be lost, whatever was not fsynced.
      await checkWorlds(label, run, cut ? old : neu, neu)
    }
  })
})

describe('FileAdapter init', () => {
  test('a power cut at each file-system call of a recovery replaying a batch leaves it to the next init, which finishes it', async () => {
    const [name, operation] = operations.find(([n]) => n.startsWith('setMany'))!
    const { seeded, neu, calls } = await scenario(name, operation)
    // The batch's first rename is its intent's; then the base directory is fsynced (open, sync,
    // close) and the entries' renames begin: the power goes out at the first of them.
    const intent = calls.findIndex((call) => call.startsWith('rename '))
    expect(calls[intent + 4]).toMatch(/^rename /)
    const crashed = await crashRun(seeded, operation, intent + 5)
    const committed = join(dirs.next(), 'files')
    crashed.recorder.materialize(committed, 'synced', 'synced')
    expect(Object.keys(snapshot(committed))).toContain('~batch.json')
    const init: Operation = (kv) => kv.init()
    const reference = await crashRun(committed, init, Infinity, true)
    expect(reference.error).toBeUndefined()
    expect(snapshot(reference.base)).toEqual(neu)
    for (let k = 1; k <= reference.calls.length; k++) {
      const label = `recovery, power cut at call ${k} of ${reference.calls.length} (${reference.calls[k - 1]})`
      const run = await crashRun(committed, init, k, true)
      expect([label, run.error instanceof PersistenceError]).toEqual([label, true])
      await checkWorlds(label, run, neu, neu)
    }
  })
})

// ---------------------------------------------------------------- reads and maintenance

// The reads (get, getMany, has, find, keys, iterate, stats), maintain and backupTo: a failing
// file-system call is a 5002 naming the file, never a null, false or shorter list standing in for
// what could not be read, and changes no file; the adapter then goes on as if it had not happened.
// A missing key is still null: ENOENT of an entry's file is its absence, not an error.

/** The time of a maintain that finds nothing expired (the seed's TTL entries expire at SETUP_TIME + 60 s). */
const BEFORE_EXPIRY = SETUP_TIME + 1_000

async function atTime<T>(time: number, run: () => Promise<T>): Promise<T> {
  const saved = clock
  clock = time
  try {
    return await run()
  } finally {
    clock = saved
  }
}

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = []
  for await (const item of iterable) out.push(item)
  return out
}

/** A read-side operation; `dest()` is a fresh path that does not exist (for backupTo). */
type ReadOperation = (kv: DefaultPersistenceManager, dest: () => string) => Promise<unknown>

const LONG_PREFIX = `${LONG_OLD.slice(0, 90)}*` // matched inside the long keys' directory

async function backup(kv: DefaultPersistenceManager, dest: () => string): Promise<unknown> {
  const to = dest()
  const count = await (kv.adapter as FileAdapter).backupTo(to)
  return { count, files: snapshot(to) }
}

const readOperations: Array<{ name: string; run: ReadOperation; faults?: string[]; writes?: boolean }> = [
  { name: 'get of a key', run: (kv) => kv.get('b') },
  { name: 'get of a key in a directory', run: (kv) => kv.get(LONG_OLD) },
  { name: 'get of a binary value', run: (kv) => kv.get('bin') },
  { name: 'get of a missing key', run: (kv) => kv.get('missing') },
  { name: 'get of an expired key', run: (kv) => kv.get('exp:1') },
  { name: 'getMany', run: (kv) => kv.getMany(['a', 'bin', 'missing', LONG_OLD, 'exp:2']) },
  { name: 'has of a key', run: (kv) => kv.has('a') },
  { name: 'has of a missing key', run: (kv) => kv.has('missing') },
  { name: 'find of every key', run: (kv) => kv.find('*') },
  { name: 'find with a prefix', run: (kv) => kv.find('b*') },
  { name: 'find with a prefix inside a directory', run: (kv) => kv.find(LONG_PREFIX) },
  { name: 'keys', run: (kv) => kv.keys() },
  { name: 'keys with a prefix', run: (kv) => kv.keys('exp:*') },
  { name: 'iterate', run: (kv) => collect(kv.iterate('*', { pageSize: 2 })) },
  { name: 'stats', run: (kv) => kv.stats() },
  { name: 'maintain with nothing expired', run: (kv) => atTime(BEFORE_EXPIRY, () => kv.maintain()) },
  // Its writes (sweeping exp:1 and exp:2) are the crash tests' above; here, faults while it reads.
  { name: 'maintain, while it reads', run: (kv) => kv.maintain(), writes: true },
  { name: 'backupTo', run: backup, faults: ['EIO', 'EACCES', 'ENOSPC'] },
]

const READ_CALLS = new Set(['readdir', 'readFile', 'stat'])

interface ReadReference {
  seeded: string
  /** The copy the reference ran in: `calls` name files in it. */
  base: string
  before: Snapshot
  /** The operation's result and the directory after it, nothing failing. */
  result: unknown
  after: Snapshot
  calls: Array<{ call: string; target: string }>
  /** Entry file (relative path) → the key it holds. */
  keyOf: Map<string, string>
}

let readSeed: string | null = null

async function readReference(run: ReadOperation): Promise<ReadReference> {
  if (readSeed === null) {
    readSeed = join(dirs.next(), 'files')
    await seed(readSeed)
  }
  const seeded = readSeed
  const before = snapshot(seeded)
  const keyOf = new Map(Object.entries(before).map(([file, text]) => [file, JSON.parse(text).key as string]))
  const base = copyOf(seeded)
  const calls: Array<{ call: string; target: string }> = []
  let armed = false
  const fileSystem = hookedFs({
    before(call, target) {
      if (armed) calls.push({ call, target })
    },
  })
  const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base, fileSystem }))
  await kv.init()
  armed = true
  const result = await run(kv, () => join(dirs.next(), 'backup'))
  armed = false
  await kv.close()
  return { seeded, base, before, result, after: snapshot(base), calls, keyOf }
}

describe.each(readOperations)('FileAdapter $name', ({ name, run, faults = ['EIO', 'EACCES'], writes = false }) => {
  const cases = [
    ...faults.map((code) => ({ code, sticky: false, label: `${code} once` })),
    { code: 'EIO', sticky: true, label: 'EIO from then on' },
  ]
  test.each(cases)('$label at each file-system call rejects with 5002 naming the file and changes nothing', async (fault) => {
    const reference = await readReference(run)
    // Only the reads of an operation that then writes: a fault in its writes is the crash tests'.
    const firstWrite = reference.calls.findIndex(({ call }) => !READ_CALLS.has(call))
    const calls = writes ? reference.calls.slice(0, firstWrite) : reference.calls
    if (writes) expect(firstWrite).toBeGreaterThan(2)
    else expect(same(reference.after, reference.before)).toBe(true)
    expect(calls.length).toBeGreaterThan(0)
    for (let k = 1; k <= calls.length; k++) {
      const { call, target } = calls[k - 1]
      const where = `${call} ${relative(reference.base, target)}`
      const label = `${name}, ${fault.label} at call ${k} of ${calls.length} (${where})`
      const base = copyOf(reference.seeded)
      let count = 0
      let armed = false
      let failed: { call: string; target: string } | null = null
      const fileSystem = hookedFs({
        before(c, t) {
          if (!armed) return
          count++
          if (count === k) failed = { call: c, target: t }
          if (count === k || (fault.sticky && count > k)) throw errnoError(fault.code, c, t)
        },
      })
      const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base, fileSystem }))
      await kv.init()
      const dests: string[] = []
      const dest = () => {
        dests.push(join(dirs.next(), 'backup'))
        return dests[dests.length - 1]
      }
      armed = true
      const error = (await rejection(run(kv, dest))) as PersistenceError | undefined
      armed = false
      expect([label, error instanceof PersistenceError, error?.code, error?.details.errno]).toEqual([label, true, 5002, fault.code])
      // The error names the file the failed call was on, and for an entry's file the key.
      const failedOn = failed as { call: string; target: string } | null
      expect([label, failedOn?.call]).toEqual([label, call])
      expect([label, error!.details.file]).toEqual([label, failedOn!.target])
      expect([label, error!.message.includes(failedOn!.target)]).toEqual([label, true])
      const entryKey = reference.keyOf.get(relative(base, failedOn!.target).split(sep).join('/'))
      if (call === 'readFile' && entryKey !== undefined) expect([label, error!.details.key]).toEqual([label, entryKey])
      // Not a file changed, and a backup that failed leaves no half copy (unless removing it failed too).
      expect([label, differences(reference.before, snapshot(base))]).toEqual([label, []])
      if (!fault.sticky) for (const d of dests) expect([label, existsSync(d)]).toEqual([label, false])
      // A failed read breaks nothing: the same manager, faults gone, does what it would have done.
      expect([label, await run(kv, dest)]).toEqual([label, reference.result])
      expect([label, differences(reference.after, snapshot(base))]).toEqual([label, []])
      await kv.close()
    }
  })
})

describe('FileAdapter reads: what is missing is null, not an error', () => {
  test('a missing or expired key is null (has: false), and an expired entry is left out of find, keys and stats', async () => {
    expect((await readReference((kv) => kv.get('missing'))).result).toBeNull()
    expect((await readReference((kv) => kv.get('exp:1'))).result).toBeNull()
    expect((await readReference((kv) => kv.has('missing'))).result).toBe(false)
    expect((await readReference((kv) => kv.has('a'))).result).toBe(true)
    expect((await readReference((kv) => kv.keys())).result).toEqual(['a', 'b', 'bin', LONG_OLD])
    expect((await readReference((kv) => kv.stats())).result).toMatchObject({ totalEntries: 4 })
    const b = (await readReference((kv) => kv.get('b'))).result as { value: unknown; metadata: unknown }
    expect([b.value, b.metadata]).toEqual([{ x: 2 }, { tag: 'b' }])
  })

  test('stats does not count a file that went away after it was listed (a write renamed its temp file)', async () => {
    const reference = await readReference((kv) => kv.stats())
    const stats = reference.calls.filter(({ call }) => call === 'stat')
    expect(stats.length).toBe(Object.keys(reference.before).length)
    for (const { target } of stats) {
      const base = copyOf(reference.seeded)
      const gone = join(base, relative(reference.base, target))
      const fileSystem = hookedFs({
        before(call, t) {
          if (call === 'stat' && t === gone) throw errnoError('ENOENT', call, t)
        },
      })
      const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base, fileSystem }))
      await kv.init()
      const expected = reference.result as { size: number; totalEntries: number }
      expect(await kv.stats()).toEqual({ ...expected, size: expected.size - statSync(gone).size })
      await kv.close()
    }
  })

  test('stats while writes go on never fails', async () => {
    const base = join(dirs.next(), 'files')
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
    await kv.init()
    let done = false
    const writer = (async () => {
      for (let i = 0; i < 300; i++) await kv.set(`k${i % 7}`, i)
      done = true
    })()
    const failures: unknown[] = []
    let calls = 0
    while (!done) {
      calls++
      await kv.stats().catch((error) => failures.push(error))
    }
    await writer
    expect(calls).toBeGreaterThan(10)
    expect(failures).toEqual([])
    expect((await kv.stats()).totalEntries).toBe(7)
    await kv.close()
  })
})

// ---------------------------------------------------------------- corrupt entry files

/** Ways an entry file can be damaged, each with the reason the error gives. */
const corruptions: Array<{ name: string; damage: (text: string) => string | Buffer; reason: RegExp }> = [
  { name: 'an empty file', damage: () => '', reason: /not JSON/ },
  { name: 'the first half of the file', damage: (t) => t.slice(0, Math.floor(t.length / 2)), reason: /not JSON/ },
  { name: 'all but its last two bytes', damage: (t) => t.slice(0, -2), reason: /not JSON/ },
  { name: 'text that is not JSON', damage: () => 'not json\n', reason: /not JSON/ },
  { name: 'a JSON array', damage: () => '[1,2]\n', reason: /not a key-value entry file/ },
  { name: 'JSON null', damage: () => 'null\n', reason: /not a key-value entry file/ },
  { name: 'format version 2', damage: (t) => t.replace('"v":1', '"v":2'), reason: /not a key-value entry file \(v 1\)/ },
  { name: 'another key', damage: (t) => t.replace(/"key":"[^"]*"/, '"key":"other"'), reason: /holds key "other"/ },
  {
    name: 'metadata that is an array',
    damage: (t) => t.replace(/"metadata":\{[^}]*\}/, '"metadata":[1]'),
    reason: /metadata is not an object/,
  },
  {
    name: 'a createdAt that is a string',
    damage: (t) => t.replace(/"createdAt":\d+/, '"createdAt":"yesterday"'),
    reason: /bad timestamps/,
  },
  { name: 'no expiresAt', damage: (t) => t.replace(/,"expiresAt":null\}/, '}'), reason: /bad expiresAt/ },
  { name: 'an unknown kind', damage: (t) => t.replace('"kind":"json"', '"kind":"yaml"'), reason: /unknown kind "yaml"/ },
  { name: 'no value', damage: (t) => t.replace(/"value":.*,"metadata"/, '"metadata"'), reason: /no value/ },
  {
    name: 'a byte that is not UTF-8',
    damage: (t) => {
      const at = t.indexOf('"metadata"')
      return Buffer.concat([Buffer.from(t.slice(0, at + 1)), Buffer.from([0xff]), Buffer.from(t.slice(at + 1))])
    },
    reason: /not UTF-8/,
  },
]

const binaryCorruptions: typeof corruptions = [
  { name: 'a binary value that is not base64', damage: (t) => t.replace(/"value":"[^"]*"/, '"value":"***"'), reason: /not base64/ },
  {
    name: 'a binary value cut mid-character',
    damage: (t) => t.replace(/"value":"([^"]*)"/, (_, v: string) => `"value":"${v.slice(0, 5)}"`),
    reason: /not base64/,
  },
]

/** The operations that read every entry or the damaged one; each must reject. */
function readers(key: string): Array<[string, (kv: DefaultPersistenceManager) => Promise<unknown>]> {
  const prefix = `${key.slice(0, -1)}*`
  return [
    ['get', (kv) => kv.get(key)],
    ['getMany', (kv) => kv.getMany(['a', key])],
    ['has', (kv) => kv.has(key)],
    ['find of every key', (kv) => kv.find('*')],
    [`find ${prefix.slice(0, 12)}`, (kv) => kv.find(prefix)],
    ['keys', (kv) => kv.keys()],
    [`keys ${prefix.slice(0, 12)}`, (kv) => kv.keys(prefix)],
    ['iterate', (kv) => collect(kv.iterate('*'))],
    ['stats', (kv) => kv.stats()],
    ['maintain, with entries to sweep', (kv) => kv.maintain()],
    ['maintain, with none', (kv) => atTime(BEFORE_EXPIRY, () => kv.maintain())],
    ['set of that key (it keeps the createdAt it holds)', (kv) => kv.set(key, 'new')],
  ]
}

const damaged = [
  ...corruptions.flatMap((c) => [
    { ...c, key: 'b', where: 'b.json' },
    { ...c, key: LONG_OLD, where: 'a file in a directory' },
  ]),
  ...binaryCorruptions.map((c) => ({ ...c, key: 'bin', where: 'bin.json' })),
]

describe('FileAdapter corrupt entry files', () => {
  test.each(damaged)('$name ($where) is a 5005 naming the file and the key for every read, and changes nothing', async (c) => {
    const { key, damage, reason } = c
    const seeded = join(dirs.next(), 'files')
    await seed(seeded)
    const file = Object.entries(snapshot(seeded)).find(([, text]) => JSON.parse(text).key === key)![0]
    const path = join(seeded, ...file.split('/'))
    const bytes = damage(readFileSync(path, 'utf8'))
    expect(Buffer.from(bytes).equals(readFileSync(path))).toBe(false)
    writeFileSync(path, bytes)
    const before = snapshot(seeded)
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: seeded }))
    await kv.init()
    for (const [name, read] of readers(key)) {
      const error = (await rejection(read(kv))) as PersistenceError | undefined
      expect([name, error instanceof PersistenceError, error?.code]).toEqual([name, true, 5005])
      expect([name, error!.details.file, error!.details.key]).toEqual([name, path, key])
      expect([name, error!.message]).toEqual([name, expect.stringContaining(path)])
      expect([name, error!.message]).toEqual([name, expect.stringMatching(reason)])
      expect([name, error!.message.includes(JSON.stringify(key))]).toEqual([name, true])
      expect([name, differences(before, snapshot(seeded))]).toEqual([name, []])
    }
    // The other entries read as before.
    expect((await kv.get('a'))!.value).toBe(1)
    await kv.close()
  })

  test('a file name that is not the encoding of its bytes is no entry (not a second copy of the key)', async () => {
    const seeded = join(dirs.next(), 'files')
    await seed(seeded)
    const a = readFileSync(join(seeded, 'a.json'))
    writeFileSync(join(seeded, '.61.json'), a) // `a` spelled as an escape
    writeFileSync(join(seeded, '.ff.json'), a) // bytes that are not UTF-8
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: seeded }))
    await kv.init()
    expect(await kv.keys()).toEqual(['a', 'b', 'bin', LONG_OLD])
    expect((await kv.stats()).totalEntries).toBe(4)
    await kv.close()
  })

  test('backupTo copies a damaged file as it is: the copy reads back with the same 5005', async () => {
    const seeded = join(dirs.next(), 'files')
    await seed(seeded)
    writeFileSync(join(seeded, 'b.json'), '{"v":1,"key":"b"')
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: seeded }))
    await kv.init()
    const dest = join(dirs.next(), 'backup')
    await (kv.adapter as FileAdapter).backupTo(dest)
    await kv.close()
    expect(readFileSync(join(dest, 'b.json'), 'utf8')).toBe('{"v":1,"key":"b"')
    const copy = new DefaultPersistenceManager(new FileAdapter({ basePath: dest }))
    await copy.init()
    const error = (await rejection(copy.get('b'))) as PersistenceError
    expect([error.code, error.details.file]).toEqual([5005, join(dest, 'b.json')])
    await copy.close()
  })
})
