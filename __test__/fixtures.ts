import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh directory per test, removed after it. */
export function tempDirs(): { next(): string; cleanup(): void } {
  const made: string[] = []
  return {
    next() {
      const dir = mkdtempSync(join(tmpdir(), 'annvault-test-'))
      made.push(dir)
      return dir
    },
    cleanup() {
      for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Deterministic pseudo-random vectors (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randomVectors(count: number, dimension: number, seed = 1): number[][] {
  const next = rng(seed)
  return Array.from({ length: count }, () => Array.from({ length: dimension }, () => next() * 2 - 1))
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

/** Awaits `promise`, expects it to reject with an instance of `type`, and returns the error. */
export async function rejectionOf<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(type)
    return error as E
  }
  throw new Error(`expected a rejection with ${type.name}`)
}
