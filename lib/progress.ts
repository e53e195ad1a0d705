/**
 * One progress event, the same shape everywhere annvault reports progress:
 * the vector store's `onProgress` (`ProgressEvent` in index.d.ts, whose
 * `operation` is narrowed to the store's operations), `DatabasePersistence`
 * and the native key-value adapter's checkpoints. README, "Progress".
 */
export interface Progress {
  operation: string
  phase: string
  current: number
  total: number
  /** 0–100. */
  percentage: number
  message: string
}
