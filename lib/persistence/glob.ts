/**
 * Key patterns of the key-value API, exactly as the adapter contract
 * (`adapter.ts`) defines them and as the SQLite table's Rust twin
 * (`crates/core/src/kv/glob.rs`, `Glob::parse`) matches them:
 *
 * - `*` any run of characters, none included — `:` and `/` are ordinary;
 * - `?` exactly one character (a Unicode code point, not a UTF-16 unit);
 * - `[abc]`, `[a-z]`, `[!abc]` one character of / not of a set; inside a set
 *   `\` escapes, a `-` first or last is literal, the first `]` closes;
 * - `\` makes the next character literal;
 * - the pattern matches the whole key.
 *
 * Malformed patterns (a trailing `\`, an unclosed `[`, an empty set, a range
 * out of order) are refused with code 5003.
 *
 * Why not minimatch / picomatch / micromatch: they are path matchers — `*`
 * stops at `/`, a leading `.` is special, `{a,b}` and `**` expand, options
 * change the escape rules per platform — while keys are flat strings in
 * which `user:42/avatar` must match `user:*`. A glob of our own is thirty
 * lines and agrees with the SQLite engine character for character, and it
 * exposes what those libraries do not: the literal prefix, which is what
 * lets an adapter read only the keys that can match.
 */

import { PersistenceError, PersistenceErrorCode } from './errors'

type Token =
  | { t: 'lit'; c: string }
  | { t: 'any' }
  | { t: 'star' }
  | { t: 'set'; negated: boolean; ranges: Array<[number, number]> }

export interface Glob {
  /** The pattern as given. */
  readonly pattern: string
  /** The literal characters every matching key starts with. */
  readonly prefix: string
  /** Whether the pattern has no wildcard (it matches the key `prefix` only). */
  readonly literal: boolean
  matches(key: string): boolean
}

function invalid(pattern: string, reason: string): PersistenceError {
  return new PersistenceError(`invalid pattern ${JSON.stringify(pattern)}: ${reason}`, PersistenceErrorCode.INVALID_KEY, {
    pattern,
  })
}

export function parseGlob(pattern: string): Glob {
  if (typeof pattern !== 'string') {
    throw new PersistenceError(`a pattern must be a string, got ${typeof pattern}`, PersistenceErrorCode.INVALID_KEY, {
      pattern: String(pattern),
    })
  }
  const chars = Array.from(pattern)
  const tokens: Token[] = []
  let i = 0
  while (i < chars.length) {
    const c = chars[i++]
    if (c === '*') tokens.push({ t: 'star' })
    else if (c === '?') tokens.push({ t: 'any' })
    else if (c === '\\') {
      if (i >= chars.length) throw invalid(pattern, "ends with an unescaped '\\'")
      tokens.push({ t: 'lit', c: chars[i++] })
    } else if (c === '[') {
      const negated = chars[i] === '!'
      if (negated) i++
      const members: Array<{ c: string; escaped: boolean }> = []
      let closed = false
      while (i < chars.length) {
        const m = chars[i++]
        if (m === ']') {
          closed = true
          break
        }
        if (m === '\\') {
          if (i >= chars.length) throw invalid(pattern, "ends with an unescaped '\\'")
          members.push({ c: chars[i++], escaped: true })
        } else members.push({ c: m, escaped: false })
      }
      if (!closed) throw invalid(pattern, "'[' without a closing ']'")
      if (members.length === 0) throw invalid(pattern, "empty character set '[]'")
      const ranges: Array<[number, number]> = []
      for (let j = 0; j < members.length; ) {
        const low = members[j].c.codePointAt(0)!
        const dash = members[j + 1]
        if (dash && dash.c === '-' && !dash.escaped && j + 2 < members.length) {
          const high = members[j + 2].c.codePointAt(0)!
          if (high < low) throw invalid(pattern, 'character range out of order')
          ranges.push([low, high])
          j += 3
        } else {
          ranges.push([low, low])
          j += 1
        }
      }
      tokens.push({ t: 'set', negated, ranges })
    } else tokens.push({ t: 'lit', c })
  }
  let prefix = ''
  for (const token of tokens) {
    if (token.t !== 'lit') break
    prefix += token.c
  }
  const literal = tokens.every((token) => token.t === 'lit')
  return {
    pattern,
    prefix,
    literal,
    matches: (key: string) => matchTokens(tokens, key),
  }
}

function tokenMatches(token: Token, c: string): boolean {
  switch (token.t) {
    case 'lit':
      return token.c === c
    case 'any':
      return true
    case 'star':
      return false
    case 'set': {
      const cp = c.codePointAt(0)!
      return token.ranges.some(([low, high]) => low <= cp && cp <= high) !== token.negated
    }
  }
}

// One backtrack point for the last `*`: linear in practice, O(key × pattern) at worst.
function matchTokens(tokens: Token[], keyText: string): boolean {
  const key = Array.from(keyText)
  let p = 0
  let k = 0
  let starP = -1
  let starK = 0
  while (k < key.length) {
    const token = tokens[p]
    if (token !== undefined && token.t === 'star') {
      starP = p++
      starK = k
      continue
    }
    if (token !== undefined && tokenMatches(token, key[k])) {
      p++
      k++
      continue
    }
    if (starP < 0) return false
    p = starP + 1
    k = ++starK
  }
  for (; p < tokens.length; p++) if (tokens[p].t !== 'star') return false
  return true
}

/** Escapes a literal so that it can be put in a pattern (`escapeGlob('a*') + '*'`). */
export function escapeGlob(literal: string): string {
  return literal.replace(/[\\*?[\]]/g, (c) => `\\${c}`)
}

/**
 * Compares keys in code point order, which is UTF-8 byte order (the order
 * the contract asks for). JS's default string order compares UTF-16 units and
 * puts U+10000… before U+E000….
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) {
      // Surrogates (a code point ≥ U+10000) sort after every other unit.
      const xs = x >= 0xd800 && x <= 0xdfff
      const ys = y >= 0xd800 && y <= 0xdfff
      if (xs !== ys) return xs ? 1 : -1
      return x - y
    }
  }
  return a.length - b.length
}
