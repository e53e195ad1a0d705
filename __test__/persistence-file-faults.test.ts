// FileAdapter under failing and crashing file systems: every file-system call an operation makes
// is, in turn, made to fail (EIO, ENOSPC, and EIO from there on) or is where the power goes out.
// After each, a fresh manager over the directory must hold exactly the old state or exactly the
// new one, byte for byte, with no temp or intent file left, and must go on working.

import { promises as fsp, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync, type Dirent } from 'node:fs'
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
