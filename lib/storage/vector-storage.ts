/**
 * `VectorStorage`: a storage of type `vectors`, one annvault collection
 * (`<path>/<collection>/`). A key is a point's id (a string); a value is
 * `{ vector, payload? }` and `retrieve` resolves `{ vector, payload }`.
 *
 * Backup: a named snapshot of the collection (taken at one point of its
 * write order while writes go on), whose files — sealed, never written
 * again — are copied into the backup, after which the snapshot is deleted.
 * Restore: those files go back under `snapshots/<id>/` (the `SNAPSHOT`
 * manifest last, atomically) and `restoreSnapshot` checks every SHA-256
 * and switches the collection to it atomically.
 */

import { promises as fs } from 'node:fs'
import * as path from 'node:path'

import type { StorageSpec } from './config'
import { ioError, StorageError, StorageErrorCode } from './errors'
import { copyFileDurable, fsyncPath, walkFiles, writeFileAtomic } from './fsutil'
import { Gate, type Storage, type StorageBackupResult } from './storage'

type VectorSpec = Extract<StorageSpec, { type: 'vectors' }>

interface VectorStoreLike {
  insert(vectors: number[][], ids: string[], payloads: Record<string, unknown>[]): Promise<void>
  get(id: string): Promise<{ id: string | number; vector: number[]; payload: Record<string, unknown> } | null>
  delete(id: string): Promise<void>
  count(): Promise<number>
  list(filters: undefined, limit: number): Promise<[Array<{ id: string | number }>, number]>
  createSnapshot(name?: string): Promise<{ id: string; count: number }>
  deleteSnapshot(id: string): Promise<unknown>
  restoreSnapshot(id: string): Promise<unknown>
  disconnect(): Promise<void>
}

const DISTANCES = { cosine: 'Cosine', euclidean: 'Euclidean', dot: 'Dot' } as const
const SNAPSHOT_MANIFEST = 'SNAPSHOT'

export class VectorStorage implements Storage {
  readonly name: string
  readonly type = 'vectors' as const
  readonly paths: string[] = []
  private readonly gate = new Gate()

  private constructor(
    private readonly spec: VectorSpec,
    private readonly vectors: VectorStoreLike,
  ) {
    this.name = spec.name
  }

  static async open(spec: VectorSpec): Promise<VectorStorage> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const annvault = require('../../index.js') as {
      createVectorStore(config: Record<string, unknown>): Promise<{ store: VectorStoreLike }>
    }
    const { store } = await annvault.createVectorStore({
      type: 'in-memory',
      collectionName: spec.collection,
      dimension: spec.dimension,
      distance: DISTANCES[spec.distance],
      persistencePath: spec.path,
    })
    return new VectorStorage(spec, store)
  }

  /** The collection itself, for search and the rest of the vector store API. */
  get collection(): VectorStoreLike {
    return this.vectors
  }

  private get collectionDir(): string {
    return path.join(this.spec.path, this.spec.collection)
  }

  async store(key: string, data: unknown): Promise<void> {
    checkId(key)
    const value = data as { vector?: unknown; payload?: unknown } | null
    if (value === null || typeof value !== 'object' || !Array.isArray(value.vector) && !ArrayBuffer.isView(value.vector)) {
      throw new StorageError(
        `a vectors storage stores { vector, payload? }, got ${value === null ? 'null' : typeof value}`,
        StorageErrorCode.SERIALIZATION,
        { storage: this.name, key },
      )
    }
    await this.gate.run(() => this.vectors.insert([value.vector as number[]], [key], [(value.payload ?? {}) as Record<string, unknown>]))
  }

  async retrieve(key: string): Promise<{ vector: number[]; payload: Record<string, unknown> } | null> {
    checkId(key)
    const point = await this.gate.run(() => this.vectors.get(key))
    return point === null ? null : { vector: point.vector, payload: point.payload }
  }

  async delete(key: string): Promise<boolean> {
    checkId(key)
    return this.gate.run(async () => {
      const existed = (await this.vectors.get(key)) !== null
      await this.vectors.delete(key)
      return existed
    })
  }

  listKeys(prefix = ''): Promise<string[]> {
    return this.gate.run(async () => {
      const total = await this.vectors.count()
      const [points] = await this.vectors.list(undefined, Math.max(total, 1))
      return points
        .map((p) => String(p.id))
        .filter((id) => id.startsWith(String(prefix)))
        .sort()
    })
  }

  list_keys(prefix?: string): Promise<string[]> {
    return this.listKeys(prefix)
  }

  close(): Promise<void> {
    return this.gate.shut(() => this.vectors.disconnect())
  }

  backupTo(dest: string): Promise<StorageBackupResult> {
    return this.gate.run(() => this.copySnapshot(dest))
  }

  private async copySnapshot(dest: string): Promise<StorageBackupResult> {
    const snap = await this.vectors.createSnapshot()
    const from = path.join(this.collectionDir, 'snapshots', snap.id)
    try {
      await fs.mkdir(dest)
      const snapDir = path.join(dest, snap.id)
      await fs.mkdir(snapDir)
      for (const rel of await walkFiles(from)) await copyFileDurable(path.join(from, rel), path.join(snapDir, rel))
    } catch (error) {
      throw ioError(error, 'copy the snapshot', from, this.name)
    } finally {
      await this.vectors.deleteSnapshot(snap.id)
    }
    return { count: snap.count }
  }

  async restoreFrom(src: string): Promise<void> {
    const ids = await fs.readdir(src)
    if (ids.length !== 1) {
      throw new StorageError(`the backup of vectors storage ${this.name} holds ${ids.length} snapshots, expected 1`, StorageErrorCode.BACKUP_CORRUPT, {
        storage: this.name,
        path: src,
      })
    }
    const id = ids[0]
    const from = path.join(src, id)
    const to = path.join(this.collectionDir, 'snapshots', id)
    await this.gate.shut(async () => {
      try {
        await fs.rm(to, { recursive: true, force: true })
        await fs.mkdir(to, { recursive: true })
        for (const rel of await walkFiles(from)) {
          if (rel !== SNAPSHOT_MANIFEST) await copyFileDurable(path.join(from, rel), path.join(to, rel))
        }
        // A snapshot exists once its manifest does: written last, atomically.
        await writeFileAtomic(path.join(to, SNAPSHOT_MANIFEST), await fs.readFile(path.join(from, SNAPSHOT_MANIFEST)))
        await fsyncPath(path.dirname(to))
      } catch (error) {
        throw ioError(error, 'restore the snapshot', to, this.name)
      }
      try {
        await this.vectors.restoreSnapshot(id)
      } finally {
        await this.vectors.deleteSnapshot(id)
      }
    })
  }
}

function checkId(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new StorageError('a vectors key is a non-empty string (the point id)', StorageErrorCode.INVALID_KEY, { key })
  }
}
