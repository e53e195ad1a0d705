// annvault/langchain against the real @langchain/core: a VectorStore, a retriever, a small RAG
// chain. Only the embedding function is a stand-in (word counts over a small vocabulary, so the
// expected order is known); the store is the real one, on disk in a temp directory. The checks
// follow LangChain's standard vector-store integration suite: empty store, add returns ids, not
// thresholded, inputs not mutated, delete one / many / missing, idempotent re-add, get by ids.

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Document } from '@langchain/core/documents'
import { Embeddings } from '@langchain/core/embeddings'
import { ChatPromptTemplate } from '@langchain/core/prompts'
import { RunnablePassthrough, RunnableSequence } from '@langchain/core/runnables'
import { AnnvaultVectorStore } from '../dist/langchain'
import { ErrorCodes, VectorStoreError } from '../index'
import { cosine, tempDirs } from './fixtures'

const VOCABULARY = ['cat', 'dog', 'fish', 'car', 'bike', 'train', 'apple', 'pear']

/** A deterministic embedding: how often each vocabulary word occurs, plus a small constant. */
class WordCountEmbeddings extends Embeddings {
  calls = 0
  constructor() {
    super({})
  }
  static vector(text: string): number[] {
    const words = text.toLowerCase().split(/\W+/)
    return VOCABULARY.map((w) => words.filter((x) => x === w).length + 0.01)
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    this.calls += 1
    return texts.map((t) => WordCountEmbeddings.vector(t))
  }
  async embedQuery(text: string): Promise<number[]> {
    return WordCountEmbeddings.vector(text)
  }
}

const dirs = tempDirs()
const open: AnnvaultVectorStore[] = []
afterEach(async () => {
  for (const store of open.splice(0)) await store.close()
  dirs.cleanup()
})

function make(path = dirs.next()): AnnvaultVectorStore {
  const store = new AnnvaultVectorStore(new WordCountEmbeddings(), { persistencePath: path, collectionName: 'docs' })
  open.push(store)
  return store
}

const animals = () => [
  new Document({ pageContent: 'the cat sat', metadata: { kind: 'pet', legs: 4 }, id: 'cat' }),
  new Document({ pageContent: 'the dog ran after the cat', metadata: { kind: 'pet', legs: 4 }, id: 'dog' }),
  new Document({ pageContent: 'a fish swims', metadata: { kind: 'pet', legs: 0 }, id: 'fish' }),
  new Document({ pageContent: 'a red car and a bike', metadata: { kind: 'vehicle', wheels: 4 }, id: 'car' }),
  new Document({ pageContent: 'an apple and a pear', metadata: { kind: 'fruit' }, id: 'fruit' }),
]

test('an empty store finds nothing, and creates no files for a read', async () => {
  const path = dirs.next()
  const store = make(path)
  expect(await store.similaritySearch('cat', 4)).toEqual([])
  expect(await store.getByIds(['x'])).toEqual([])
  await store.delete({ ids: ['x'] })
  expect(existsSync(join(path, 'docs'))).toBe(false)
})

test('addDocuments returns the ids (document ids, options.ids, generated), without changing the inputs', async () => {
  const store = make()
  const docs = animals()
  const copy = JSON.parse(JSON.stringify(docs))
  expect(await store.addDocuments(docs)).toEqual(['cat', 'dog', 'fish', 'car', 'fruit'])
  expect(JSON.parse(JSON.stringify(docs))).toEqual(copy)

  const given = await store.addDocuments([new Document({ pageContent: 'train', metadata: {} })], { ids: ['t1'] })
  expect(given).toEqual(['t1'])
  const generated = await store.addDocuments([
    new Document({ pageContent: 'bike', metadata: {} }),
    new Document({ pageContent: 'bike bike', metadata: {} }),
  ])
  expect(generated).toHaveLength(2)
  for (const id of generated) expect(id).toMatch(/^[0-9a-f-]{36}$/)
  expect(new Set(generated).size).toBe(2)
  expect(await (await store.store()).count()).toBe(8)
})

test('similaritySearchWithScore: best first, scores are cosine similarities (higher is closer), not thresholded', async () => {
  const store = make()
  await store.addDocuments(animals())
  const results = await store.similaritySearchWithScore('cat', 10)
  expect(results).toHaveLength(5) // every document, however far
  expect(results.slice(0, 2).map(([d]) => d.id)).toEqual(['cat', 'dog'])
  const query = WordCountEmbeddings.vector('cat')
  for (const [doc, score] of results) {
    expect(score).toBeCloseTo(cosine(query, WordCountEmbeddings.vector(doc.pageContent)), 5)
  }
  const scores = results.map(([, s]) => s)
  expect([...scores].sort((a, b) => b - a)).toEqual(scores)
  expect(scores[0]).toBeGreaterThan(0.99)
  const [first] = results[0]
  expect(first).toBeInstanceOf(Document)
  expect(first).toMatchObject({ id: 'cat', pageContent: 'the cat sat', metadata: { kind: 'pet', legs: 4 } })
})

test('a score threshold keeps the close documents (similarities, so higher passes)', async () => {
  const store = make()
  await store.addDocuments(animals())
  const kept = (await store.similaritySearchWithScore('cat', 10)).filter(([, score]) => score >= 0.5)
  expect(kept.map(([d]) => d.id)).toEqual(['cat', 'dog'])
})

test('filters are annvault filters, evaluated in the store', async () => {
  const store = make()
  await store.addDocuments(animals())
  expect((await store.similaritySearch('cat', 10, { kind: 'vehicle' })).map((d) => d.id)).toEqual(['car'])
  expect((await store.similaritySearch('cat', 10, { legs: { lt: 4 } })).map((d) => d.id)).toEqual(['fish'])
  expect((await store.similaritySearch('apple', 2, { kind: { any: ['fruit', 'vehicle'] } })).map((d) => d.id)).toEqual(['fruit', 'car'])
  await expect(store.similaritySearch('cat', 1, { kind: { near: 1 } } as never)).rejects.toMatchObject({
    code: ErrorCodes.INVALID_FILTER,
  })
})

test('delete by id: one, many, missing ones ignored; by filter; re-adding an id overwrites it', async () => {
  const store = make()
  await store.addDocuments(animals())
  await store.delete({ ids: ['cat'] })
  expect((await store.similaritySearch('cat', 10)).map((d) => d.id)).not.toContain('cat')
  await store.delete({ ids: ['dog', 'fish', 'never-there'] })
  expect((await store.similaritySearch('cat', 10)).map((d) => d.id).sort()).toEqual(['car', 'fruit'])
  await store.delete({ filter: { kind: 'vehicle' } })
  expect((await store.similaritySearch('cat', 10)).map((d) => d.id)).toEqual(['fruit'])

  await store.addDocuments([new Document({ id: 'fruit', pageContent: 'a train', metadata: { kind: 'vehicle' } })])
  await store.addDocuments([new Document({ id: 'fruit', pageContent: 'a train', metadata: { kind: 'vehicle' } })])
  const all = await store.similaritySearch('train', 10)
  expect(all).toHaveLength(1)
  expect(all[0]).toMatchObject({ id: 'fruit', pageContent: 'a train', metadata: { kind: 'vehicle' } })
  await expect(store.delete({})).rejects.toBeInstanceOf(VectorStoreError)
})

test('getByIds: in the order asked, missing ids left out', async () => {
  const store = make()
  await store.addDocuments(animals())
  const got = await store.getByIds(['fish', 'nope', 'cat'])
  expect(got.map((d) => [d.id, d.pageContent])).toEqual([
    ['fish', 'a fish swims'],
    ['cat', 'the cat sat'],
  ])
})

test('metadata may not use the text key; a rejected batch adds nothing', async () => {
  const store = make()
  await store.addDocuments(animals())
  await expect(
    store.addDocuments([new Document({ pageContent: 'x', metadata: { pageContent: 'clash' } })]),
  ).rejects.toMatchObject({ code: ErrorCodes.INVALID_PAYLOAD })
  await expect(
    store.addDocuments([
      new Document({ pageContent: 'car', metadata: {}, id: 'ok' }),
      new Document({ pageContent: 'car', metadata: { when: new Date(0) }, id: 'bad' }),
    ]),
  ).rejects.toMatchObject({ code: ErrorCodes.INVALID_PAYLOAD })
  expect(await store.getByIds(['ok', 'bad'])).toEqual([])
})

test('maxMarginalRelevanceSearch prefers a different document over a duplicate', async () => {
  const store = make()
  await store.addDocuments([
    new Document({ id: 'a', pageContent: 'cat cat dog', metadata: {} }),
    new Document({ id: 'b', pageContent: 'cat cat dog', metadata: {} }),
    new Document({ id: 'c', pageContent: 'cat cat fish', metadata: {} }),
    new Document({ id: 'd', pageContent: 'pear', metadata: {} }),
  ])
  // a, b and c are equally close to the query; a and b are the same text.
  const plain = await store.similaritySearchWithScore('cat', 3)
  expect(plain.map(([d]) => d.id).sort()).toEqual(['a', 'b', 'c'])
  const diverse = (await store.maxMarginalRelevanceSearch('cat', { k: 2, fetchK: 4, lambda: 0.5 })).map((d) => d.id)
  expect(diverse).toHaveLength(2)
  expect(diverse).toContain('c')
  expect(diverse.filter((id) => id === 'a' || id === 'b')).toHaveLength(1)
})

test('fromTexts, then load the collection in another process after one that exited without closing', async () => {
  const path = dirs.next()
  const embeddings = new WordCountEmbeddings()
  // A child adds documents and exits without close(): every write was durable already.
  const script = `
    const { AnnvaultVectorStore } = require(${JSON.stringify(resolve(__dirname, '../dist/langchain.js'))})
    const { Embeddings } = require('@langchain/core/embeddings')
    const VOCABULARY = ${JSON.stringify(VOCABULARY)}
    class E extends Embeddings {
      constructor() { super({}) }
      async embedDocuments(texts) { return texts.map((t) => this.v(t)) }
      async embedQuery(t) { return this.v(t) }
      v(text) { const w = text.toLowerCase().split(/\\W+/); return VOCABULARY.map((x) => w.filter((y) => y === x).length + 0.01) }
    }
    AnnvaultVectorStore.fromTexts(['the cat sat', 'a red car', 'a pear'], [{ n: 1 }, { n: 2 }, { n: 3 }], new E(), {
      persistencePath: process.argv[1], collectionName: 'kb',
    }).then(() => process.exit(0))`
  const child = spawnSync(process.execPath, ['-e', script, path], { encoding: 'utf8', cwd: resolve(__dirname, '..') })
  expect(child.stderr).toBe('')
  expect(child.status).toBe(0)

  const loaded = await AnnvaultVectorStore.load(join(path, 'kb'), embeddings)
  open.push(loaded)
  const [best] = await loaded.similaritySearchWithScore('car', 1)
  expect(best[0]).toMatchObject({ pageContent: 'a red car', metadata: { n: 2 } })
  expect(best[1]).toBeGreaterThan(0.99)

  await expect(AnnvaultVectorStore.load(join(path, 'nothing'), embeddings)).rejects.toMatchObject({ kind: 'NOT_FOUND' })
  await expect(
    AnnvaultVectorStore.fromExistingCollection(embeddings, { persistencePath: path, collectionName: 'nothing' }),
  ).rejects.toMatchObject({ kind: 'NOT_FOUND' })
})

test('close() releases the collection: another store can open it, and sees every document', async () => {
  const path = dirs.next()
  const first = await AnnvaultVectorStore.fromDocuments(animals(), new WordCountEmbeddings(), { persistencePath: path, collectionName: 'docs' })
  const second = await AnnvaultVectorStore.fromExistingCollection(new WordCountEmbeddings(), { persistencePath: path, collectionName: 'docs' }).catch(
    (error: unknown) => error,
  )
  expect(second).toMatchObject({ kind: 'IN_USE' })
  await first.close()
  const reopened = await AnnvaultVectorStore.fromExistingCollection(new WordCountEmbeddings(), { persistencePath: path, collectionName: 'docs' })
  open.push(reopened)
  expect((await reopened.getByIds(['cat', 'dog', 'fish', 'car', 'fruit'])).length).toBe(5)
})

test('asRetriever().invoke, with k and a filter, and in a small RAG chain', async () => {
  const store = make()
  await store.addDocuments(animals())
  const retriever = store.asRetriever()
  const docs = await retriever.invoke('cat')
  expect(docs[0].id).toBe('cat')
  const one = await store.asRetriever({ k: 1, filter: { kind: 'vehicle' } }).invoke('cat')
  expect(one.map((d) => d.id)).toEqual(['car'])

  const chain = RunnableSequence.from([
    {
      context: store.asRetriever(2).pipe((found: Document[]) => found.map((d) => d.pageContent).join('\n')),
      question: new RunnablePassthrough(),
    },
    ChatPromptTemplate.fromTemplate('Answer from the context.\nContext:\n{context}\nQuestion: {question}'),
  ])
  const prompt = await chain.invoke('what did the cat do?')
  const text = prompt.toString()
  expect(text).toContain('the cat sat')
  expect(text).toContain('the dog ran after the cat')
  expect(text).not.toContain('pear')
  expect(text).toContain('Question: what did the cat do?')
})
