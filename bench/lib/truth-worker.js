// Exact top-k by brute force for a slice of the queries: without filter, and
// among points with i % 100 === 7 (1 %) and i % 4 === 1 (25 %).
'use strict'

const { parentPort, workerData } = require('node:worker_threads')

const { dim, k } = workerData
const data = new Float32Array(workerData.data)
const queries = workerData.queries
const rows = data.length / dim

/** Keeps the k best (score, id) pairs, best first; ties broken by lower id. */
class TopK {
  constructor() {
    this.scores = []
    this.ids = []
  }
  offer(score, id) {
    const n = this.scores.length
    if (n === k && score <= this.scores[n - 1]) return
    let at = n
    while (at > 0 && this.scores[at - 1] < score) at--
    this.scores.splice(at, 0, score)
    this.ids.splice(at, 0, id)
    if (this.scores.length > k) {
      this.scores.pop()
      this.ids.pop()
    }
  }
}

const out = { none: [], pct1: [], quarter: [] }
for (let q = 0; q < queries.length / dim; q++) {
  const qo = q * dim
  const all = new TopK()
  const pct1 = new TopK()
  const quarter = new TopK()
  for (let i = 0; i < rows; i++) {
    const o = i * dim
    let s = 0
    for (let d = 0; d < dim; d++) s += queries[qo + d] * data[o + d]
    all.offer(s, i)
    if (i % 100 === 7) pct1.offer(s, i)
    if (i % 4 === 1) quarter.offer(s, i)
  }
  out.none.push(all.ids)
  out.pct1.push(pct1.ids)
  out.quarter.push(quarter.ids)
}
parentPort.postMessage(out)
