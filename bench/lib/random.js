// The one seeded pseudo-random generator of the benchmarks and the jest tests
// (__test__/fixtures.ts re-exports it): mulberry32, 32 bits of state, the same
// sequence on every machine, so data sets and test failures reproduce.
'use strict'

/** Returns a function giving uniform numbers in [0, 1) from `seed`. */
function mulberry32(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

module.exports = { mulberry32 }
