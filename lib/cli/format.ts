// Small text helpers shared by the commands' human-readable output.

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

export function formatTime(ms: number | null): string {
  return ms === null || ms === 0 ? 'never' : new Date(ms).toISOString()
}

/** Writes `value` to stdout as one JSON document. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export function printLines(lines: string[]): void {
  process.stdout.write(lines.join('\n') + '\n')
}
