/**
 * `BackupSet`: the backups under `backup.path`, as `StorageManager` writes,
 * lists, verifies and prunes them.
 *
 * ```text
 * <backup.path>/
 *   <id>/                    id = the UTC time it started, 20261201T081106123Z (-1, -2 … if taken)
 *     <storage>/ …           one directory per storage, as its backupTo wrote it
 *     MANIFEST.json          written last (temp file, fsync, rename, directory fsync)
 * ```
 *
 * `MANIFEST.json`: `{ format: "annvault-storage-backup", version: 1, id,
 * createdAt (Unix ms), storages: { <name>: { type, count?, skipped? } },
 * files: [{ path, bytes, sha256 }] (every file under <id>/ but the
 * manifest, '/'-separated, sorted), bytes (their sum) }`.
 *
 * A backup exists once its manifest does: a directory without one is a
 * backup that failed or was cut short (a crash, a kill), never listed,
 * never restored, and removed by the next backup. Every file is fsynced,
 * then every directory, before the manifest is written. Deleting one
 * removes the manifest first (durably), then the rest.
 */

import { promises as fs } from 'node:fs'
import * as path from 'node:path'

import type { StorageType } from './config'
import { StorageError, StorageErrorCode } from './errors'
import { exists, fsyncPath, fsyncTree, hashFile, walkFiles, writeFileAtomic } from './fsutil'

export const MANIFEST_FILE = 'MANIFEST.json'
export const BACKUP_FORMAT = 'annvault-storage-backup'
const ID = /^\d{8}T\d{9}Z(-\d+)?$/

export interface BackupFile {
  path: string
  bytes: number
  sha256: string
}

export interface BackupStorageInfo {
  type: StorageType
  count?: number
  skipped?: string
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT
  version: 1
  id: string
  createdAt: number
  storages: Record<string, BackupStorageInfo>
  files: BackupFile[]
  bytes: number
}

/** What `listBackups` and `backupNow` resolve to for one backup. */
export interface BackupInfo {
  id: string
  createdAt: Date
  /** The backup's directory. */
  path: string
  storages: Record<string, BackupStorageInfo>
  files: number
  bytes: number
}

export interface VerifyProblem {
  path: string
  problem: 'missing' | 'size' | 'sha256' | 'unlisted'
  expected?: string | number
  actual?: string | number
}

export interface BackupVerifyResult {
  id: string
  ok: boolean
  files: number
  bytes: number
  problems: VerifyProblem[]
}

export function backupId(time: number): string {
  return new Date(time).toISOString().replace(/[-:.]/g, '')
}

function info(dir: string, manifest: BackupManifest): BackupInfo {
  return {
    id: manifest.id,
    createdAt: new Date(manifest.createdAt),
    path: dir,
    storages: manifest.storages,
    files: manifest.files.length,
    bytes: manifest.bytes,
  }
}

export function backupError(message: string, dir: string, cause?: unknown, extra: Record<string, unknown> = {}): StorageError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code
  return new StorageError(
    message,
    StorageErrorCode.BACKUP,
    { path: (cause as NodeJS.ErrnoException | undefined)?.path ?? dir, ...(errno ? { errno } : {}), ...extra },
    cause === undefined ? undefined : { cause },
  )
}

export class BackupSet {
  constructor(readonly root: string) {}

  /** Makes `<root>/<id>/` for a new backup (removing leftovers of failed ones first). */
  async begin(time: number): Promise<{ id: string; dir: string }> {
    try {
      await fs.mkdir(this.root, { recursive: true })
      await this.removePartial()
      const base = backupId(time)
      for (let n = 0; ; n++) {
        const id = n === 0 ? base : `${base}-${n}`
        const dir = path.join(this.root, id)
        try {
          await fs.mkdir(dir)
          return { id, dir }
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        }
      }
    } catch (error) {
      throw backupError(`cannot create a backup under ${this.root}: ${(error as Error).message}`, this.root, error)
    }
  }

  /** fsyncs the backup, hashes its files and writes its manifest: from here it is listed. */
  async commit(id: string, dir: string, createdAt: number, storages: Record<string, BackupStorageInfo>): Promise<BackupInfo> {
    try {
      await fsyncTree(dir)
      const files: BackupFile[] = []
      let bytes = 0
      for (const rel of await walkFiles(dir)) {
        const h = await hashFile(path.join(dir, ...rel.split('/')))
        files.push({ path: rel, bytes: h.bytes, sha256: h.sha256 })
        bytes += h.bytes
      }
      const manifest: BackupManifest = { format: BACKUP_FORMAT, version: 1, id, createdAt, storages, files, bytes }
      await writeFileAtomic(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 1))
      await fsyncPath(this.root)
      return info(dir, manifest)
    } catch (error) {
      if (error instanceof StorageError) throw error
      throw backupError(`cannot complete backup ${id}: ${(error as Error).message}`, dir, error)
    }
  }

  /** Removes what a failed backup left (best effort: without a manifest it is never listed anyway). */
  async discard(dir: string): Promise<void> {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined)
  }

  private async removePartial(): Promise<void> {
    for (const name of await fs.readdir(this.root)) {
      if (!ID.test(name)) continue
      const dir = path.join(this.root, name)
      if (!(await exists(path.join(dir, MANIFEST_FILE)))) await fs.rm(dir, { recursive: true, force: true })
    }
  }

  private async readManifest(id: string): Promise<BackupManifest | null> {
    const file = path.join(this.root, id, MANIFEST_FILE)
    let text: string
    try {
      text = await fs.readFile(file, 'utf8')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return null
      throw backupError(`cannot read ${file}: ${(error as Error).message}`, file, error)
    }
    let manifest: BackupManifest
    try {
      manifest = JSON.parse(text) as BackupManifest
    } catch (error) {
      throw new StorageError(`backup manifest ${file} does not parse`, StorageErrorCode.BACKUP_CORRUPT, { id, file }, { cause: error })
    }
    if (manifest?.format !== BACKUP_FORMAT || manifest.version !== 1 || manifest.id !== id || !Array.isArray(manifest.files)) {
      throw new StorageError(`backup manifest ${file} is not an annvault backup manifest of version 1 for ${id}`, StorageErrorCode.BACKUP_CORRUPT, {
        id,
        file,
      })
    }
    return manifest
  }

  async manifest(id: string): Promise<BackupManifest> {
    if (typeof id !== 'string' || !ID.test(id)) {
      throw new StorageError(`no backup ${JSON.stringify(id)}`, StorageErrorCode.NOT_FOUND, { id })
    }
    const manifest = await this.readManifest(id)
    if (manifest === null) throw new StorageError(`no backup ${id} under ${this.root}`, StorageErrorCode.NOT_FOUND, { id })
    return manifest
  }

  /** Complete backups, oldest first. */
  async list(): Promise<BackupInfo[]> {
    let names: string[]
    try {
      names = await fs.readdir(this.root)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw backupError(`cannot list ${this.root}: ${(error as Error).message}`, this.root, error)
    }
    const out: BackupInfo[] = []
    for (const name of names.filter((n) => ID.test(n)).sort()) {
      const manifest = await this.readManifest(name)
      if (manifest !== null) out.push(info(path.join(this.root, name), manifest))
    }
    return out.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1))
  }

  /** Every file's size and SHA-256 against the manifest, and no file it does not list. */
  async verify(id: string): Promise<BackupVerifyResult> {
    const manifest = await this.manifest(id)
    const dir = path.join(this.root, id)
    const problems: VerifyProblem[] = []
    let present: string[]
    try {
      present = await walkFiles(dir)
      for (const file of manifest.files) {
        const full = path.join(dir, ...file.path.split('/'))
        if (file.path.split('/').includes('..') || !(await exists(full))) {
          problems.push({ path: file.path, problem: 'missing' })
          continue
        }
        const actual = await hashFile(full)
        if (actual.bytes !== file.bytes) problems.push({ path: file.path, problem: 'size', expected: file.bytes, actual: actual.bytes })
        else if (actual.sha256 !== file.sha256) problems.push({ path: file.path, problem: 'sha256', expected: file.sha256, actual: actual.sha256 })
      }
    } catch (error) {
      throw backupError(`cannot read backup ${id}: ${(error as Error).message}`, dir, error)
    }
    const listed = new Set(manifest.files.map((f) => f.path))
    for (const rel of present) if (rel !== MANIFEST_FILE && !listed.has(rel)) problems.push({ path: rel, problem: 'unlisted' })
    return { id, ok: problems.length === 0, files: manifest.files.length, bytes: manifest.bytes, problems }
  }

  /** Deletes a backup: its manifest first (durably), so a crash leaves at most an unlisted directory. */
  async remove(id: string): Promise<void> {
    const dir = path.join(this.root, id)
    try {
      await fs.rm(path.join(dir, MANIFEST_FILE), { force: true })
      await fsyncPath(dir)
      await fs.rm(dir, { recursive: true, force: true })
    } catch (error) {
      throw backupError(`cannot delete backup ${id}: ${(error as Error).message}`, dir, error)
    }
  }
}
