#!/usr/bin/env node
// annvault demo: a small RAG-style document store under ./data.
//
// Ingests a few thousand documents with deterministic synthetic embeddings
// (each topic has a centre; a document is its topic's centre plus noise),
// then runs unfiltered and filtered searches and prints results and timings.
'use strict'

const { performance } = require('node:perf_hooks')
const { createPersistentInMemoryStore } = require('..')
const { mulberry32 } = require('../bench/lib/random')

const DIMENSION = 384
const DOCUMENTS = 5000
const BATCH = 500
const TOPICS = ['databases', 'rust', 'node', 'search', 'storage', 'networking', 'testing', 'compilers']
const SOURCES = ['wiki', 'blog', 'paper', 'docs']

const random = mulberry32(2026)
const centres = TOPICS.map(() => Float32Array.from({ length: DIMENSION }, () => random() * 2 - 1))

function embed(topic, noise, next = random) {
  const v = new Float32Array(DIMENSION)
  for (let d = 0; d < DIMENSION; d++) v[d] = centres[topic][d] + (next() * 2 - 1) * noise
  return v
}

function ms(start) {
  return (performance.now() - start).toFixed(2)
}

async function main() {
  const started = performance.now()
  const { manager, store } = await createPersistentInMemoryStore('demo-docs', DIMENSION, './data/vector-storage')
  console.log(`annvault demo — collection 'demo-docs', ${DIMENSION} dimensions, path ./data/vector-storage`)
  console.log(`connected in ${ms(started)} ms`)

  const existing = await store.count()
  if (existing > 0) {
    console.log(`found ${existing} documents from an earlier run: no ingest needed`)
  } else {
    console.log(`the store is empty: ingesting ${DOCUMENTS} documents in batches of ${BATCH}`)
    const ingestStart = performance.now()
    for (let start = 0; start < DOCUMENTS; start += BATCH) {
      const vectors = []
      const ids = []
      const payloads = []
      for (let i = start; i < Math.min(start + BATCH, DOCUMENTS); i++) {
        const topic = i % TOPICS.length
        const source = SOURCES[Math.floor(i / TOPICS.length) % SOURCES.length]
        vectors.push(embed(topic, 0.9))
        ids.push(`doc-${i}`)
        payloads.push({
          title: `Document ${i} about ${TOPICS[topic]}`,
          topic: TOPICS[topic],
          source,
          year: 2000 + ((i * 7) % 25),
          tags: [TOPICS[topic], source],
        })
      }
      await store.insert(vectors, ids, payloads)
    }
    const seconds = (performance.now() - ingestStart) / 1000
    console.log(`ingested ${DOCUMENTS} documents in ${(seconds * 1000).toFixed(1)} ms (${Math.round(DOCUMENTS / seconds)} docs/s)`)
  }

  // Its own generator: the same query whether or not this run ingested.
  const query = embed(TOPICS.indexOf('rust'), 0.5, mulberry32(7))
  const searches = [
    ['unfiltered', undefined],
    ["topic = 'rust'", { topic: 'rust' }],
    ['year >= 2020 and source in (paper, docs)', { year: { gte: 2020 }, source: { any: ['paper', 'docs'] } }],
    ["tags contain all of ('storage', 'blog')", { tags: { all: ['storage', 'blog'] } }],
  ]
  for (const [label, filters] of searches) {
    const runs = 20
    let results = []
    const t = performance.now()
    for (let r = 0; r < runs; r++) results = await store.search(query, 3, filters)
    const each = ((performance.now() - t) / runs).toFixed(3)
    console.log(`\nsearch (${label}): ${each} ms per query`)
    for (const hit of results) {
      console.log(`  ${hit.score.toFixed(4)}  ${String(hit.id).padEnd(10)} ${hit.payload.title} [${hit.payload.source}, ${hit.payload.year}]`)
    }
  }

  const [page, total] = await store.list({ topic: 'node', year: 2024 }, 5)
  console.log(`\nlist(topic = 'node', year = 2024): ${total} match; first ids: ${page.map((r) => r.id).join(', ')}`)
  const health = await manager.healthCheck()
  console.log(`health: ${JSON.stringify(health)}`)
  await manager.disconnect()
  console.log(`\ndone in ${ms(started)} ms. Run 'npm run demo' again: a second run looks for this data first.`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
