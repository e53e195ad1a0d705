/**
 * `PackStorage`: large immutable artifacts (proof bundles, model files,
 * document batches), one compressed, checksummed pack file per key under
 * `pack_path`, written atomically and streamed both ways (memory stays
 * bounded by the stream buffers, whatever the pack's size).
 *
 * Keys. A key is 1–1,024 UTF-8 bytes of `/`-separated components, the
 * pack's path under `pack_path` plus `.pack` (`proofs/2026/p1` →
 * `proofs/2026/p1.pack`). A component is 1–200 bytes, does not start with
 * `.` (which also rules out `.` and `..`, and keeps the temp files' names
 * apart), and holds no `\`, NUL or other control character; an empty
 * component (`a//b`, a leading or trailing `/`) is refused too. Any other
 * key is refused with 5003 (INVALID_KEY) before a file is touched: no key
 * reaches outside `pack_path`.
 *
 * Pack file, little-endian:
 *
 * ```text
 *   0  magic     8 bytes  "AVPACK\r\n"
 *   8  version   u32      1
 *  12  kind      u8       0 Buffer, 1 string (UTF-8), 2 JSON (UTF-8 text), 3 stream (bytes)
 *  13  codec     u8       1 = raw DEFLATE (RFC 1951)
 *  14  reserved  u16      0
 *  16  key_len   u32      bytes of key
 *  20  key       UTF-8    the key the pack was stored under
 *  20+key_len    body     the value's bytes, raw-DEFLATE compressed, `body_len` bytes
 *  end-56        trailer:
 *        raw_len   u64    the value's bytes before compression
 *        body_len  u64    bytes of body
 *        sha256    32 B   SHA-256 of header bytes 0..20+key_len followed by the value's
 *                         uncompressed bytes
 *        magic     8 B    "AVPACKND"
 * ```
 *
 * The checksum covers the header (kind, codec, key) and the value, so a
 * damaged byte anywhere is caught: in the header or trailer by their
 * checks, in the body by the inflate failing or by the SHA-256. Any of
 * them is 5103 (CORRUPT_PACK) naming the file; nothing damaged is ever
 * returned. `retrieve` reads the pack once to verify it before it returns
 * anything (with `{ stream: true }`, a second pass over the same open file
 * feeds the stream), so a stream only ever carries verified bytes.
 *
 * Writes: the pack is streamed into `.<random>.tmp` in the target's
 * directory (header, compressed body, trailer), fsynced, renamed over the
 * key's file, and the directory fsynced: a reader sees the old pack or the
 * new one, never part of one; a crash leaves at most a temp file, removed
 * at the next open. The rename (and a delete's unlink) run one at a time,
 * so a backup, which takes the same turn to link every pack, sees one
 * point of the write order.
 */

import { createHash, randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import * as path from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as zlib from 'node:zlib'

import { encodeValue } from '../persistence/manager'
import type { StorageSpec } from './config'
import { ioError, StorageError, StorageErrorCode } from './errors'
import { copyTreeDurable, fsyncPath, STAGING_SUFFIX, swapIn, walkFiles } from './fsutil'
import { Gate, Mutex, type RetrieveOptions, type Storage, type StorageBackupResult } from './storage'

type PackSpec = Extract<StorageSpec, { type: 'pack' }>

export const PACK_MAGIC = Buffer.from('AVPACK\r\n', 'latin1')
export const PACK_END_MAGIC = Buffer.from('AVPACKND', 'latin1')
export const PACK_VERSION = 1
const HEADER_FIXED = 20
const TRAILER_LEN = 56
const CODEC_DEFLATE_RAW = 1
const SUFFIX = '.pack'
const MAX_KEY_BYTES = 1024
const MAX_COMPONENT_BYTES = 200

export const PackKind = Object.freeze({ BUFFER: 0, STRING: 1, JSON: 2, STREAM: 3 } as const)
type Kind = (typeof PackKind)[keyof typeof PackKind]

/** Throws 5003 unless `key` is a safe pack key (see the module comment). */
export function checkPackKey(key: unknown): asserts key is string {
  const fail = (reason: string) =>
    new StorageError(`invalid pack key ${JSON.stringify(key)}: ${reason}`, StorageErrorCode.INVALID_KEY, { key })
  if (typeof key !== 'string') throw fail('a key must be a string')
  if (key.length === 0) throw fail('a key must not be empty')
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw fail(`a key is at most ${MAX_KEY_BYTES} UTF-8 bytes`)
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(key)) throw fail('a key must be valid Unicode')
  for (const component of key.split('/')) {
    if (component.length === 0) throw fail('empty path component (a leading, trailing or double /)')
    if (component.startsWith('.')) throw fail(`a component must not start with '.' (${JSON.stringify(component)})`)
    if (Buffer.byteLength(component) > MAX_COMPONENT_BYTES) throw fail(`a component is at most ${MAX_COMPONENT_BYTES} bytes`)
    // eslint-disable-next-line no-control-regex
    if (/[\\\u0000-\u001f\u007f]/.test(component)) throw fail('a key must not hold \\, NUL or control characters')
  }
}

function isReadable(value: unknown): value is NodeJS.ReadableStream {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as NodeJS.ReadableStream).pipe === 'function' &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  )
}

function header(kind: Kind, key: string): Buffer {
  const keyBytes = Buffer.from(key, 'utf8')
  const out = Buffer.alloc(HEADER_FIXED + keyBytes.length)
  PACK_MAGIC.copy(out, 0)
  out.writeUInt32LE(PACK_VERSION, 8)
  out.writeUInt8(kind, 12)
  out.writeUInt8(CODEC_DEFLATE_RAW, 13)
  out.writeUInt16LE(0, 14)
  out.writeUInt32LE(keyBytes.length, 16)
  keyBytes.copy(out, HEADER_FIXED)
  return out
}

interface Layout {
  kind: Kind
  header: Buffer
  bodyStart: number
  bodyLen: number
  rawLen: number
  sha256: Buffer
}

export class PackStorage implements Storage {
  readonly name: string
  readonly type = 'pack' as const
  readonly paths: string[]
  readonly root: string
  private readonly gate = new Gate()
  /** The renames and unlinks that change which packs exist, and backups' links, one at a time. */
  private readonly commits = new Mutex()
  private closed = false

  private constructor(private readonly spec: PackSpec) {
    this.name = spec.name
    this.root = spec.packPath
    this.paths = [spec.packPath]
  }

  static async open(spec: PackSpec): Promise<PackStorage> {
    const storage = new PackStorage(spec)
    try {
      await fs.mkdir(spec.packPath, { recursive: true })
      await storage.removeTempFiles(spec.packPath)
    } catch (error) {
      throw ioError(error, 'open pack storage', spec.packPath, spec.name)
    }
    return storage
  }

  private fileOf(key: string): string {
    return path.join(this.root, ...key.split('/')) + SUFFIX
  }

  private checkOpen(operation: string): void {
    if (this.closed) {
      throw new StorageError(`pack storage ${this.name} is closed (${operation})`, 5001, { storage: this.name, operation, state: 'closed' })
    }
  }

  /**
   * Stores `data` under `key`: a Buffer / Uint8Array, a string, a readable
   * stream (read back as a Buffer, or a stream with `{ stream: true }`) or
   * any JSON value (checked as the key-value API checks it: 5004 for what
   * JSON cannot carry).
   */
  async store(key: string, data: unknown): Promise<void> {
    checkPackKey(key)
    this.checkOpen('store')
    let kind: Kind
    let source: Readable
    if (data instanceof Uint8Array) {
      kind = PackKind.BUFFER
      source = Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
    } else if (typeof data === 'string') {
      kind = PackKind.STRING
      source = Readable.from([Buffer.from(data, 'utf8')])
    } else if (isReadable(data)) {
      kind = PackKind.STREAM
      source = data instanceof Readable ? data : Readable.from(data as AsyncIterable<unknown>)
    } else {
      const encoded = encodeValue(data, key)
      kind = PackKind.JSON
      source = Readable.from([Buffer.from(encoded.kind === 'json' ? encoded.text : '', 'utf8')])
    }
    return this.gate.run(() => this.write(key, kind, source))
  }

  private async write(key: string, kind: Kind, source: Readable): Promise<void> {
    const target = this.fileOf(key)
    const dir = path.dirname(target)
    const temp = path.join(dir, `.${randomBytes(8).toString('hex')}.tmp`)
    let handle: FileHandle | null = null
    try {
      await fs.mkdir(dir, { recursive: true })
      handle = await fs.open(temp, 'wx')
      const head = header(kind, key)
      await handle.write(head, 0, head.length, 0)
      const hash = createHash('sha256').update(head)
      let rawLen = 0
      let position = head.length
      const tap = new Transform({
        transform(chunk: unknown, _encoding, callback) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk instanceof Uint8Array ? Buffer.from(chunk) : null
          if (bytes === null) {
            callback(new StorageError('a pack stream must yield Buffers, Uint8Arrays or strings', StorageErrorCode.SERIALIZATION, { key }))
            return
          }
          hash.update(bytes)
          rawLen += bytes.length
          callback(null, bytes)
        },
      })
      const file = handle
      await pipeline(source, tap, zlib.createDeflateRaw({ level: this.spec.level }), async (compressed: AsyncIterable<Buffer>) => {
        for await (const chunk of compressed) {
          await file.write(chunk, 0, chunk.length, position)
          position += chunk.length
        }
      })
      const trailer = Buffer.alloc(TRAILER_LEN)
      trailer.writeBigUInt64LE(BigInt(rawLen), 0)
      trailer.writeBigUInt64LE(BigInt(position - head.length), 8)
      hash.digest().copy(trailer, 16)
      PACK_END_MAGIC.copy(trailer, 48)
      await handle.write(trailer, 0, TRAILER_LEN, position)
      await handle.sync()
      await handle.close()
      handle = null
      await this.commits.run(async () => {
        await fs.rename(temp, target)
        await fsyncPath(dir)
      })
    } catch (error) {
      if (handle) await handle.close().catch(() => undefined)
      await fs.rm(temp, { force: true }).catch(() => undefined)
      if (error instanceof StorageError || (error as { code?: unknown }).code === 5004) throw error
      throw ioError(error, 'store pack', target, this.name)
    }
  }

  /**
   * The value stored under `key` as it went in (a Buffer for a Buffer or a
   * stream, a string, a JSON value), or a Readable of its bytes with
   * `{ stream: true }`; `null` when there is none. The pack is verified
   * first (5103 when damaged).
   */
  async retrieve(key: string, options?: RetrieveOptions): Promise<any> {
    checkPackKey(key)
    this.checkOpen('retrieve')
    return this.gate.run(() => this.read(key, options?.stream === true))
  }

  private async read(key: string, asStream: boolean): Promise<any> {
    const file = this.fileOf(key)
    let handle: FileHandle
    try {
      handle = await fs.open(file, 'r')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw ioError(error, 'open pack', file, this.name)
    }
    let keep = false
    try {
      const layout = await this.layout(handle, file, key)
      const chunks: Buffer[] | null = asStream ? null : []
      await this.inflate(handle, layout, file, chunks)
      if (asStream) {
        keep = true
        const body = handle.createReadStream({ start: layout.bodyStart, end: layout.bodyStart + layout.bodyLen - 1, autoClose: true })
        const inflate = zlib.createInflateRaw()
        body.on('error', (error) => inflate.destroy(error))
        return body.pipe(inflate)
      }
      const bytes = Buffer.concat(chunks as Buffer[], layout.rawLen)
      switch (layout.kind) {
        case PackKind.STRING:
          return bytes.toString('utf8')
        case PackKind.JSON:
          return JSON.parse(bytes.toString('utf8'))
        default:
          return bytes
      }
    } catch (error) {
      if (error instanceof StorageError) throw error
      throw ioError(error, 'read pack', file, this.name)
    } finally {
      if (!keep) await handle.close().catch(() => undefined)
    }
  }

  private corrupt(file: string, reason: string, cause?: unknown): StorageError {
    return new StorageError(`pack ${file} is damaged: ${reason}`, StorageErrorCode.CORRUPT_PACK, { file, storage: this.name }, cause === undefined ? undefined : { cause })
  }

  private async layout(handle: FileHandle, file: string, key: string): Promise<Layout> {
    const { size } = await handle.stat()
    if (size < HEADER_FIXED + TRAILER_LEN) throw this.corrupt(file, `${size} bytes is shorter than a pack`)
    const fixed = Buffer.alloc(HEADER_FIXED)
    await handle.read(fixed, 0, HEADER_FIXED, 0)
    if (!fixed.subarray(0, 8).equals(PACK_MAGIC)) throw this.corrupt(file, 'bad magic')
    const version = fixed.readUInt32LE(8)
    if (version !== PACK_VERSION) throw this.corrupt(file, `unknown version ${version}`)
    const kind = fixed.readUInt8(12)
    if (kind > PackKind.STREAM) throw this.corrupt(file, `unknown kind ${kind}`)
    if (fixed.readUInt8(13) !== CODEC_DEFLATE_RAW || fixed.readUInt16LE(14) !== 0) throw this.corrupt(file, 'unknown codec')
    const keyLen = fixed.readUInt32LE(16)
    if (keyLen > MAX_KEY_BYTES || HEADER_FIXED + keyLen + TRAILER_LEN > size) throw this.corrupt(file, `key length ${keyLen}`)
    const head = Buffer.alloc(HEADER_FIXED + keyLen)
    fixed.copy(head, 0)
    await handle.read(head, HEADER_FIXED, keyLen, HEADER_FIXED)
    if (!head.subarray(HEADER_FIXED).equals(Buffer.from(key, 'utf8'))) throw this.corrupt(file, 'the key it names is not its own')
    const trailer = Buffer.alloc(TRAILER_LEN)
    await handle.read(trailer, 0, TRAILER_LEN, size - TRAILER_LEN)
    if (!trailer.subarray(48).equals(PACK_END_MAGIC)) throw this.corrupt(file, 'bad trailer magic (truncated?)')
    const rawLen = trailer.readBigUInt64LE(0)
    const bodyLen = trailer.readBigUInt64LE(8)
    const bodyStart = head.length
    if (bodyLen !== BigInt(size - bodyStart - TRAILER_LEN)) throw this.corrupt(file, 'body length does not match the file size')
    if (rawLen > BigInt(Number.MAX_SAFE_INTEGER)) throw this.corrupt(file, 'raw length out of range')
    return { kind: kind as Kind, header: head, bodyStart, bodyLen: Number(bodyLen), rawLen: Number(rawLen), sha256: trailer.subarray(16, 48) }
  }

  /** Inflates the body, checking length and SHA-256; collects the bytes into `out` when given. */
  private async inflate(handle: FileHandle, layout: Layout, file: string, out: Buffer[] | null): Promise<void> {
    const hash = createHash('sha256').update(layout.header)
    let rawLen = 0
    const body =
      layout.bodyLen === 0
        ? Readable.from([])
        : handle.createReadStream({ start: layout.bodyStart, end: layout.bodyStart + layout.bodyLen - 1, autoClose: false })
    try {
      await pipeline(body, zlib.createInflateRaw(), async (plain: AsyncIterable<Buffer>) => {
        for await (const chunk of plain) {
          rawLen += chunk.length
          if (rawLen > layout.rawLen) throw this.corrupt(file, 'more bytes than the trailer says')
          hash.update(chunk)
          out?.push(chunk)
        }
      })
    } catch (error) {
      if (error instanceof StorageError) throw error
      if ((error as { errno?: number }).errno !== undefined && (error as { code?: string }).code?.startsWith('Z_')) {
        throw this.corrupt(file, `the compressed body does not inflate (${(error as Error).message})`, error)
      }
      throw error
    }
    if (rawLen !== layout.rawLen) throw this.corrupt(file, `${rawLen} bytes inflated, the trailer says ${layout.rawLen}`)
    if (!hash.digest().equals(layout.sha256)) throw this.corrupt(file, 'SHA-256 mismatch')
  }

  async delete(key: string): Promise<boolean> {
    checkPackKey(key)
    this.checkOpen('delete')
    const file = this.fileOf(key)
    return this.gate.run(() =>
      this.commits.run(async () => {
        try {
          await fs.unlink(file)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
          throw ioError(error, 'delete pack', file, this.name)
        }
        await fsyncPath(path.dirname(file))
        return true
      }),
    )
  }

  async listKeys(prefix = ''): Promise<string[]> {
    this.checkOpen('listKeys')
    return this.gate.run(async () => {
      let files: string[]
      try {
        files = await walkFiles(this.root)
      } catch (error) {
        throw ioError(error, 'list packs', this.root, this.name)
      }
      return files
        .filter((rel) => rel.endsWith(SUFFIX) && !rel.split('/').some((c) => c.startsWith('.')))
        .map((rel) => rel.slice(0, -SUFFIX.length))
        .filter((key) => key.startsWith(String(prefix)))
        .sort()
    })
  }

  list_keys(prefix?: string): Promise<string[]> {
    return this.listKeys(prefix)
  }

  async close(): Promise<void> {
    if (this.closed) return
    await this.gate.shut(async () => {
      this.closed = true
    })
  }

  /**
   * Links (or copies, across file systems) every pack into `dest` in one
   * turn of the commit order: the set of packs as of one point, each file
   * complete (a pack is never written in place, only replaced by rename).
   */
  async backupTo(dest: string): Promise<StorageBackupResult> {
    this.checkOpen('backup')
    return this.gate.run(() =>
      this.commits.run(async () => {
        await fs.mkdir(dest)
        let count = 0
        for (const rel of await walkFiles(this.root)) {
          if (!rel.endsWith(SUFFIX) || rel.split('/').some((c) => c.startsWith('.'))) continue
          const from = path.join(this.root, ...rel.split('/'))
          const to = path.join(dest, ...rel.split('/'))
          await fs.mkdir(path.dirname(to), { recursive: true })
          try {
            await fs.link(from, to)
          } catch (error) {
            const code = (error as NodeJS.ErrnoException).code
            if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw error
            await fs.copyFile(from, to)
          }
          count++
        }
        return { count }
      }),
    )
  }

  async restoreFrom(src: string): Promise<void> {
    this.checkOpen('restore')
    await this.gate.shut(() =>
      this.commits.run(async () => {
        const staged = this.root + STAGING_SUFFIX
        try {
          await fs.rm(staged, { recursive: true, force: true })
          await copyTreeDurable(src, staged)
          await swapIn(this.root, staged)
        } catch (error) {
          await fs.rm(staged, { recursive: true, force: true }).catch(() => undefined)
          throw ioError(error, 'restore packs', this.root, this.name)
        }
      }),
    )
  }

  private async removeTempFiles(dir: string): Promise<void> {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) await this.removeTempFiles(full)
      else if (entry.name.startsWith('.') && entry.name.endsWith('.tmp')) await fs.rm(full, { force: true })
    }
  }
}
