// Progress for the steps of a command that can take seconds (opening a large
// collection, a compaction): a cli-progress bar on stderr when stderr is a
// terminal, one plain line per step when it is not (logs, CI), nothing with
// --quiet. stdout carries only the command's result, so `--json` output
// stays parseable whatever the progress mode.

import { SingleBar, Presets } from 'cli-progress'

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none'

export interface Progress {
  /** Starts step `label` (the previous one is done). */
  step(label: string): void
  /** All steps done: clears the bar. */
  stop(): void
}

/**
 * `auto`: a bar on a terminal; otherwise plain lines for commands whose steps can take long
 * (`linesOffTerminal`), nothing for quick looks (search, get).
 */
export function progressMode(
  options: { quiet?: boolean; progress?: string },
  linesOffTerminal = true,
): Exclude<ProgressMode, 'auto'> {
  if (options.quiet) return 'none'
  const mode = (options.progress ?? 'auto') as ProgressMode
  if (mode === 'auto') return process.stderr.isTTY ? 'bar' : linesOffTerminal ? 'lines' : 'none'
  return mode
}

export function startProgress(mode: Exclude<ProgressMode, 'auto'>, total: number, command: string): Progress {
  if (mode === 'none') return { step() {}, stop() {} }
  if (mode === 'lines') {
    let done = 0
    return {
      step(label) {
        done += 1
        process.stderr.write(`annvault ${command}: [${done}/${total}] ${label}\n`)
      },
      stop() {},
    }
  }
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: `annvault ${command} {bar} {value}/{total} {label}`,
      hideCursor: true,
      clearOnComplete: true,
      // `--progress bar` draws on a stream that is not a terminal too (tests, `script` logs).
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 200,
    },
    Presets.shades_classic,
  )
  let done = -1
  bar.start(total, 0, { label: '' })
  return {
    step(label) {
      done += 1
      bar.update(done, { label })
    },
    stop() {
      bar.update(total, { label: 'done' })
      bar.stop()
    },
  }
}

/** The store's progress events (export, import, verify) as a bar or as lines at every tenth. */
export function operationProgress(
  mode: Exclude<ProgressMode, 'auto'>,
  command: string,
): { onProgress(event: { phase: string; percentage: number; message: string }): void; stop(): void } {
  if (mode === 'none') return { onProgress() {}, stop() {} }
  if (mode === 'lines') {
    let shown = -1
    let phase = ''
    return {
      onProgress(event) {
        const tenth = Math.floor(event.percentage / 10)
        if (event.phase === phase && tenth === shown) return
        phase = event.phase
        shown = tenth
        process.stderr.write(`annvault ${command}: ${event.phase} ${Math.round(event.percentage)}% ${event.message}\n`)
      },
      stop() {},
    }
  }
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: `annvault ${command} {phase} {bar} {percentage}%`,
      hideCursor: true,
      clearOnComplete: true,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 200,
    },
    Presets.shades_classic,
  )
  bar.start(100, 0, { phase: '' })
  return {
    onProgress(event) {
      bar.update(Math.round(event.percentage), { phase: event.phase })
    },
    stop() {
      bar.stop()
    },
  }
}
