/**
 * The storage manager's configuration: YAML or JSON text, a file holding
 * it, or an object, validated into a {@link StorageConfig}.
 *
 * The document's `persistence` section is the configuration (other top
 * level sections belong to the application and are ignored); an object or
 * file without one is taken as the section itself. Inside it every key is
 * known or refused with code 5101 naming it (`details.key`, a dotted path
 * such as `persistence.storages.file.base_path`).
 *
 * Relative paths resolve against the config file's directory (an object's:
 * `options.baseDir`, else the working directory). A relative path whose
 * `..` leads out of that directory is refused; an absolute path is taken
 * as written.
 */

import { promises as fs } from 'node:fs'
import * as path from 'node:path'

import { StorageError, StorageErrorCode } from './errors'

export type StorageType = 'file' | 'database' | 'cache' | 'native' | 'pack' | 'vectors'

export type StorageSpec =
  | { name: string; type: 'file'; basePath: string }
  | { name: string; type: 'database'; dbPath: string; table: string; synchronous: 'full' | 'normal' | 'off' }
  | { name: string; type: 'cache'; ttl: number | undefined }
  | { name: string; type: 'native'; path: string; durability: 'fsync' | 'flush' }
  | { name: string; type: 'pack'; packPath: string; level: number }
  | {
      name: string
      type: 'vectors'
      path: string
      collection: string
      dimension: number
      distance: 'cosine' | 'euclidean' | 'dot'
    }

export type Schedule = { kind: 'hourly' | 'daily' | 'weekly' | 'interval'; intervalMs: number }

export interface BackupSpec {
  enabled: boolean
  path: string
  /** Keep the newest this many complete backups. */
  retention: number
  schedule: Schedule | null
}

export interface StorageConfig {
  /** The directory relative paths resolve against. */
  baseDir: string
  defaultStorage: string
  storages: Map<string, StorageSpec>
  backup: BackupSpec | null
}

const HOUR = 3_600_000
const SCHEDULES: Record<string, number> = { hourly: HOUR, daily: 24 * HOUR, weekly: 7 * 24 * HOUR }

const KEYS: Record<StorageType, string[]> = {
  file: ['type', 'base_path'],
  database: ['type', 'db_path', 'table', 'synchronous'],
  cache: ['type', 'ttl'],
  native: ['type', 'path', 'durability'],
  pack: ['type', 'pack_path', 'compression_level'],
  vectors: ['type', 'path', 'collection', 'dimension', 'distance'],
}

function configError(key: string, reason: string, cause?: unknown): StorageError {
  return new StorageError(`invalid storage config at ${key}: ${reason}`, StorageErrorCode.CONFIG, { key }, cause === undefined ? undefined : { cause })
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function checkKeys(value: Record<string, unknown>, allowed: string[], at: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw configError(`${at}.${key}`, `unknown key (known: ${allowed.join(', ')})`)
  }
}

function str(value: Record<string, unknown>, key: string, at: string): string {
  const v = value[key]
  if (v === undefined || v === null) throw configError(`${at}.${key}`, 'missing')
  if (typeof v !== 'string' || v.length === 0) throw configError(`${at}.${key}`, 'must be a non-empty string')
  return v
}

function oneOf<T extends string>(value: Record<string, unknown>, key: string, at: string, options: readonly T[], fallback: T): T {
  const v = value[key]
  if (v === undefined || v === null) return fallback
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) {
    throw configError(`${at}.${key}`, `must be one of ${options.map((o) => `'${o}'`).join(', ')}`)
  }
  return v as T
}

/** Resolves a configured path; a relative one must stay inside `baseDir`. */
export function resolvePath(raw: string, baseDir: string, key: string): string {
  if (raw.includes('\0')) throw configError(key, 'a path must not contain NUL')
  if (path.isAbsolute(raw)) return path.normalize(raw)
  const resolved = path.resolve(baseDir, raw)
  const rel = path.relative(baseDir, resolved)
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw configError(key, `${JSON.stringify(raw)} leads outside the config's directory ${baseDir}`)
  }
  return resolved
}

function parseStorage(name: string, raw: unknown, baseDir: string): StorageSpec {
  const at = `persistence.storages.${name}`
  if (!isObject(raw)) throw configError(at, 'must be a mapping with a type')
  const type = raw.type
  if (type === undefined) throw configError(`${at}.type`, 'missing')
  if (typeof type !== 'string' || !(type in KEYS)) {
    throw configError(`${at}.type`, `unknown storage type ${JSON.stringify(type)} (known: ${Object.keys(KEYS).join(', ')})`)
  }
  checkKeys(raw, KEYS[type as StorageType], at)
  const p = (key: string) => resolvePath(str(raw, key, at), baseDir, `${at}.${key}`)
  switch (type as StorageType) {
    case 'file':
      return { name, type: 'file', basePath: p('base_path') }
    case 'database': {
      const table = raw.table === undefined ? 'app_data' : str(raw, 'table', at)
      return {
        name,
        type: 'database',
        dbPath: p('db_path'),
        table,
        synchronous: oneOf(raw, 'synchronous', at, ['full', 'normal', 'off'] as const, 'full'),
      }
    }
    case 'cache': {
      const ttl = raw.ttl
      if (ttl !== undefined && ttl !== null && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0)) {
        throw configError(`${at}.ttl`, 'must be a positive number of seconds')
      }
      return { name, type: 'cache', ttl: typeof ttl === 'number' ? ttl : undefined }
    }
    case 'native':
      return { name, type: 'native', path: p('path'), durability: oneOf(raw, 'durability', at, ['fsync', 'flush'] as const, 'fsync') }
    case 'pack': {
      const level = raw.compression_level ?? 6
      if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 9) {
        throw configError(`${at}.compression_level`, 'must be an integer from 0 to 9')
      }
      return { name, type: 'pack', packPath: p('pack_path'), level }
    }
    case 'vectors': {
      const dimension = raw.dimension
      if (dimension === undefined) throw configError(`${at}.dimension`, 'missing')
      if (typeof dimension !== 'number' || !Number.isInteger(dimension) || dimension < 1) {
        throw configError(`${at}.dimension`, 'must be a positive integer')
      }
      return {
        name,
        type: 'vectors',
        path: p('path'),
        collection: str(raw, 'collection', at),
        dimension,
        distance: oneOf(raw, 'distance', at, ['cosine', 'euclidean', 'dot'] as const, 'cosine'),
      }
    }
  }
}

function parseSchedule(raw: unknown): Schedule | null {
  const key = 'persistence.backup.schedule'
  if (raw === undefined || raw === null) return null
  if (typeof raw === 'string' && raw in SCHEDULES) return { kind: raw as Schedule['kind'], intervalMs: SCHEDULES[raw] }
  const ms = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw
  if (typeof ms === 'number' && Number.isInteger(ms) && ms >= 1000) return { kind: 'interval', intervalMs: ms }
  throw configError(key, "must be 'hourly', 'daily', 'weekly' or a whole number of milliseconds (at least 1000)")
}

function parseBackup(raw: unknown, baseDir: string): BackupSpec | null {
  const at = 'persistence.backup'
  if (raw === undefined || raw === null) return null
  if (!isObject(raw)) throw configError(at, 'must be a mapping')
  checkKeys(raw, ['enabled', 'schedule', 'retention', 'path'], at)
  const enabled = raw.enabled ?? true
  if (typeof enabled !== 'boolean') throw configError(`${at}.enabled`, 'must be true or false')
  const retention = raw.retention ?? 7
  if (typeof retention !== 'number' || !Number.isInteger(retention) || retention < 1) {
    throw configError(`${at}.retention`, 'must be a positive integer (how many backups to keep)')
  }
  return {
    enabled,
    path: resolvePath(str(raw, 'path', at), baseDir, `${at}.path`),
    retention,
    schedule: parseSchedule(raw.schedule),
  }
}

/** Validates a parsed document (see the module comment). */
export function normalizeConfig(document: unknown, baseDir: string): StorageConfig {
  if (!isObject(document)) throw configError('persistence', 'the configuration must be a mapping')
  const section = 'persistence' in document ? document.persistence : document
  if (!isObject(section)) throw configError('persistence', 'must be a mapping')
  checkKeys(section, ['default_storage', 'storages', 'backup'], 'persistence')
  if (!isObject(section.storages) || Object.keys(section.storages).length === 0) {
    throw configError('persistence.storages', section.storages === undefined ? 'missing' : 'must be a mapping of at least one storage')
  }
  const storages = new Map<string, StorageSpec>()
  const seenPaths = new Map<string, string>()
  for (const [name, raw] of Object.entries(section.storages)) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      throw configError(`persistence.storages.${name}`, 'a storage name is 1-64 letters, digits, _ or -')
    }
    const spec = parseStorage(name, raw, baseDir)
    const where = 'basePath' in spec ? spec.basePath : 'dbPath' in spec ? spec.dbPath : 'packPath' in spec ? spec.packPath : 'path' in spec ? spec.path : null
    if (where !== null) {
      const other = seenPaths.get(where)
      if (other !== undefined && !(spec.type === 'vectors' && storages.get(other)?.type === 'vectors')) {
        throw configError(`persistence.storages.${name}`, `uses the same path as storage ${other}`)
      }
      seenPaths.set(where, name)
    }
    storages.set(name, spec)
  }
  const first = storages.keys().next().value as string
  const defaultStorage = section.default_storage === undefined ? first : str(section, 'default_storage', 'persistence')
  if (!storages.has(defaultStorage)) {
    throw configError('persistence.default_storage', `names no storage (have: ${[...storages.keys()].join(', ')})`)
  }
  return { baseDir, defaultStorage, storages, backup: parseBackup(section.backup, baseDir) }
}

/** Parses YAML (a superset of JSON) text, syntax errors as 5101 with the line. */
export function parseText(text: string, source: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml')
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const first = doc.errors[0]
    throw new StorageError(`${source} does not parse: ${first.message}`, StorageErrorCode.CONFIG, {
      key: '(document)',
      file: source,
      line: first.linePos?.[0]?.line,
    })
  }
  return doc.toJS()
}

export interface LoadOptions {
  /** Directory relative paths of an object config resolve against (default: the working directory). */
  baseDir?: string
}

/** A file path (`.yaml`, `.yml`, `.json`, anything YAML parses), or an already parsed object. */
export async function loadConfig(pathOrObject: unknown, options: LoadOptions = {}): Promise<StorageConfig> {
  if (typeof pathOrObject === 'string') {
    const file = path.resolve(pathOrObject)
    let text: string
    try {
      text = await fs.readFile(file, 'utf8')
    } catch (error) {
      throw new StorageError(`cannot read the config ${file}: ${(error as Error).message}`, StorageErrorCode.CONFIG, {
        key: '(document)',
        file,
        errno: (error as NodeJS.ErrnoException).code,
      })
    }
    return normalizeConfig(parseText(text, file), path.dirname(file))
  }
  return normalizeConfig(pathOrObject, path.resolve(options.baseDir ?? process.cwd()))
}
