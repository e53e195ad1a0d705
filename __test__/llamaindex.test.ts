// annvault/llamaindex against the real @llamaindex/core: nodes in, nodes out, LlamaIndex's
// MetadataFilters mapped onto annvault's filters (each operator), delete by source document, and
// a reopen. Only the embedding model is a stand-in (word counts, so the expected order is known);
// the store is the real one, on disk in a temp directory.

import { BaseEmbedding } from '@llamaindex/core/embeddings'
import { NodeRelationship, TextNode, type Metadata } from '@llamaindex/core/schema'
import { type MetadataFilters, VectorStoreQueryMode } from '@llamaindex/core/vector-store'
import { AnnvaultVectorStore, toAnnvaultFilter } from '../dist/llamaindex'
import { ErrorCodes, VectorStoreError } from '../index'
import { cosine, tempDirs } from './fixtures'

const VOCABULARY = ['cat', 'dog', 'fish', 'car', 'bike', 'train', 'apple', 'pear']

class WordCountEmbedding extends BaseEmbedding {
  constructor() {
    super()
  }
  async getTextEmbedding(text: string): Promise<number[]> {
    const words = text.toLowerCase().split(/\W+/)
    return VOCABULARY.map((w) => words.filter((x) => x === w).length + 0.01)
  }
}

const embedModel = new WordCountEmbedding()
const dirs = tempDirs()
const open: AnnvaultVectorStore[] = []
afterEach(async () => {
  for (const store of open.splice(0)) await store.close()
  dirs.cleanup()
})

function make(path = dirs.next()): AnnvaultVectorStore {
  const store = new AnnvaultVectorStore({ persistencePath: path, collectionName: 'nodes', embedModel })
  open.push(store)
  return store
}

async function node(id: string, text: string, doc: string, metadata: Metadata): Promise<TextNode> {
  return new TextNode({
    id_: id,
    text,
    metadata,
    embedding: await embedModel.getTextEmbedding(text),
    relationships: { [NodeRelationship.SOURCE]: { nodeId: doc, metadata: {} } },
  })
}

async function corpus(): Promise<TextNode[]> {
  return Promise.all([
    node('n1', 'the cat sat', 'doc-a', { kind: 'pet', year: 2020, tags: ['small', 'furry'] }),
    node('n2', 'the dog ran after the cat', 'doc-a', { kind: 'pet', year: 2021, tags: ['furry'] }),
    node('n3', 'a fish swims', 'doc-b', { kind: 'pet', year: 2022, tags: ['small', 'wet'] }),
    node('n4', 'a red car and a bike', 'doc-b', { kind: 'vehicle', year: 2023, tags: ['fast'] }),
    node('n5', 'an apple and a pear', 'doc-c', { kind: 'fruit', year: 2024, tags: [] }),
  ])
}

async function query(store: AnnvaultVectorStore, text: string, k: number, filters?: MetadataFilters, docIds?: string[]) {
  return store.query({
    queryEmbedding: await embedModel.getTextEmbedding(text),
    similarityTopK: k,
    mode: VectorStoreQueryMode.DEFAULT,
    filters,
    docIds,
  })
}

test('add returns the node ids; query returns the top k nodes with their text, metadata and similarities', async () => {
  const store = make()
  expect(store.storesText).toBe(true)
  const nodes = await corpus()
  expect(await store.add(nodes)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5'])
  const result = await query(store, 'cat', 3)
  expect(result.ids).toEqual(['n1', 'n2', expect.any(String)])
  expect(result.similarities).toHaveLength(3)
  const q = await embedModel.getTextEmbedding('cat')
  expect(result.similarities[0]).toBeCloseTo(cosine(q, nodes[0].getEmbedding()), 5)
  expect(result.similarities[1]).toBeCloseTo(cosine(q, nodes[1].getEmbedding()), 5)
  expect([...result.similarities].sort((a, b) => b - a)).toEqual(result.similarities)
  const first = result.nodes![0] as TextNode
  expect(first).toBeInstanceOf(TextNode)
  expect(first.id_).toBe('n1')
  expect(first.getText()).toBe('the cat sat')
  expect(first.metadata).toEqual({ kind: 'pet', year: 2020, tags: ['small', 'furry'] })
  expect(first.sourceNode?.nodeId).toBe('doc-a')
})

test('every supported filter operator, AND of several, and docIds', async () => {
  const store = make()
  await store.add(await corpus())
  const ids = async (filters: MetadataFilters, docIds?: string[]) => (await query(store, 'cat', 10, filters, docIds)).ids.sort()
  const one = (key: string, operator: string, value: unknown): MetadataFilters => ({ filters: [{ key, operator, value } as never] })

  expect(await ids(one('kind', '==', 'vehicle'))).toEqual(['n4'])
  expect(await ids(one('year', '==', 2022))).toEqual(['n3'])
  expect(await ids(one('year', '>', 2022))).toEqual(['n4', 'n5'])
  expect(await ids(one('year', '>=', 2022))).toEqual(['n3', 'n4', 'n5'])
  expect(await ids(one('year', '<', 2021))).toEqual(['n1'])
  expect(await ids(one('year', '<=', 2021))).toEqual(['n1', 'n2'])
  expect(await ids(one('kind', 'in', ['fruit', 'vehicle']))).toEqual(['n4', 'n5'])
  expect(await ids(one('tags', 'any', ['wet', 'fast']))).toEqual(['n3', 'n4'])
  expect(await ids(one('tags', 'all', ['small', 'furry']))).toEqual(['n1'])
  expect(await ids(one('tags', 'contains', 'furry'))).toEqual(['n1', 'n2'])
  expect(await ids(one('kind', '!=', 'pet'))).toEqual(['n4', 'n5'])
  expect(await ids(one('tags', '!=', 'small'))).toEqual(['n2', 'n4', 'n5'])
  expect(await ids(one('kind', 'nin', ['pet', 'fruit']))).toEqual(['n4'])
  expect(await ids(one('year', 'nin', [2020, 2021, 2022]))).toEqual(['n4', 'n5'])
  // Only nodes that have the key (annvault's rule for every operator): none has 'color'.
  expect(await ids(one('color', '!=', 'red'))).toEqual([])

  // AND (the default condition, and spelled out), two bounds on one key merged.
  expect(
    await ids({
      filters: [
        { key: 'year', operator: '>', value: 2020 },
        { key: 'year', operator: '<=', value: 2023 },
        { key: 'kind', operator: '==', value: 'pet' },
      ],
      condition: 'and',
    }),
  ).toEqual(['n2', 'n3'])
  // docIds: only nodes of these source documents.
  expect(await ids({ filters: [] }, ['doc-b'])).toEqual(['n3', 'n4'])
  expect(await ids(one('kind', '==', 'pet'), ['doc-b', 'doc-c'])).toEqual(['n3'])
  // 'or' over a single filter is that filter.
  expect(await ids({ filters: [{ key: 'kind', operator: '==', value: 'fruit' }], condition: 'or' })).toEqual(['n5'])
})

test('what annvault filters cannot express is rejected with INVALID_FILTER, never dropped', async () => {
  const store = make()
  await store.add(await corpus())
  const rejected: MetadataFilters[] = [
    { filters: [{ key: 'kind', operator: 'nin', value: 'pet' }] },
    { filters: [{ key: 'year', operator: '>', value: '2020' }] },
    { filters: [{ key: 'kind', operator: 'in', value: 'pet' }] },
    { filters: [{ key: 'kind', operator: 'text_match', value: 3 }] },
    // A metadata key annvault would read as a group, in either condition.
    { filters: [{ key: 'or', operator: '==', value: 'x' }] },
    {
      filters: [
        { key: 'kind', operator: '==', value: 'pet' },
        { key: 'not', operator: 'is_empty' },
      ],
      condition: 'or',
    },
  ]
  for (const filters of rejected) {
    const error = await query(store, 'cat', 3, filters).then(
      () => null,
      (e: unknown) => e,
    )
    expect({ filters, error }).toEqual({ filters, error: expect.any(VectorStoreError) })
    expect((error as VectorStoreError).code).toBe(ErrorCodes.INVALID_FILTER)
  }
  expect(() => toAnnvaultFilter({ filters: [{ key: 'kind', operator: 'text_match', value: 3 }] })).toThrow(/'kind' with 'text_match' needs a string/)
})

test("condition 'or', text_match, is_empty, and AND of clauses that do not merge on one key", async () => {
  const store = make()
  await store.add([
    ...(await corpus()),
    await node('n6', 'a cat and a dog', 'doc-d', { kind: 'pet', year: 2019 }),
    await node('n7', 'a train', 'doc-d', { kind: 'vehicle', year: 2018, tags: null } as unknown as Metadata),
  ])
  const ids = async (filters: MetadataFilters, docIds?: string[]) => (await query(store, 'cat', 10, filters, docIds)).ids.sort()

  const either: MetadataFilters = {
    filters: [
      { key: 'kind', operator: '==', value: 'fruit' },
      { key: 'year', operator: '<', value: 2020 },
    ],
    condition: 'or',
  }
  expect(toAnnvaultFilter(either)).toEqual({ or: [{ kind: 'fruit' }, { year: { lt: 2020 } }] })
  expect(await ids(either)).toEqual(['n5', 'n6', 'n7'])
  // docIds still AND-ed with the group.
  expect(await ids(either, ['doc-c'])).toEqual(['n5'])
  // Every operator inside an 'or'.
  expect(
    await ids({
      filters: [
        { key: 'tags', operator: 'all', value: ['small', 'wet'] },
        { key: 'kind', operator: 'text_match', value: 'hic' },
        { key: 'tags', operator: 'is_empty' },
      ],
      condition: 'or',
    }),
  ).toEqual(['n3', 'n4', 'n5', 'n6', 'n7'])

  // text_match: a substring of a string field, or of a string in an array field; case-sensitive.
  expect(await ids({ filters: [{ key: 'kind', operator: 'text_match', value: 've' }] })).toEqual(['n4', 'n7'])
  expect(await ids({ filters: [{ key: 'tags', operator: 'text_match', value: 'urr' }] })).toEqual(['n1', 'n2'])
  expect(await ids({ filters: [{ key: 'kind', operator: 'text_match', value: 'PET' }] })).toEqual([])

  // is_empty: missing (n6), null (n7) or [] (n5).
  expect(await ids({ filters: [{ key: 'tags', operator: 'is_empty' }] })).toEqual(['n5', 'n6', 'n7'])
  expect(await ids({ filters: [{ key: 'kind', operator: 'is_empty' }] })).toEqual([])
  expect(
    await ids({
      filters: [
        { key: 'tags', operator: 'is_empty' },
        { key: 'kind', operator: '==', value: 'pet' },
      ],
    }),
  ).toEqual(['n6'])

  // Two clauses on one key that one annvault clause cannot hold: an 'and' group.
  const notPetButFruit: MetadataFilters = {
    filters: [
      { key: 'kind', operator: '!=', value: 'pet' },
      { key: 'kind', operator: '==', value: 'fruit' },
    ],
  }
  expect(toAnnvaultFilter(notPetButFruit)).toEqual({ kind: { ne: 'pet' }, and: [{ kind: 'fruit' }] })
  expect(await ids(notPetButFruit)).toEqual(['n5'])
  expect(
    await ids({
      filters: [
        { key: 'year', operator: '>', value: 2019 },
        { key: 'year', operator: '>', value: 2021 },
      ],
    }),
  ).toEqual(['n3', 'n4', 'n5'])
})

test('two equalities on one key must both hold', () => {
  expect(
    toAnnvaultFilter({
      filters: [
        { key: 'tags', operator: '==', value: 'small' },
        { key: 'tags', operator: 'contains', value: 'furry' },
      ],
    }),
  ).toEqual({ tags: { all: ['small', 'furry'] } })
})

test('delete(refDocId) removes every node of that document and nothing else', async () => {
  const store = make()
  await store.add(await corpus())
  await store.delete('doc-a')
  expect((await query(store, 'cat', 10)).ids.sort()).toEqual(['n3', 'n4', 'n5'])
  await store.delete('no-such-doc')
  expect((await query(store, 'cat', 10)).ids).toHaveLength(3)
  await store.delete('doc-b')
  expect((await query(store, 'cat', 10)).ids).toEqual(['n5'])
})

test('a new store on the same directory finds every node; persist() is a no-op because writes are durable', async () => {
  const path = dirs.next()
  const first = new AnnvaultVectorStore({ persistencePath: path, collectionName: 'nodes', embedModel })
  await first.add(await corpus())
  await first.persist()
  await first.close()
  const second = make(path)
  expect(() => second.client()).toThrow(/not open yet/)
  const result = await query(second, 'car', 1)
  expect(result.ids).toEqual(['n4'])
  expect((result.nodes![0] as TextNode).getText()).toBe('a red car and a bike')
  expect(await second.client().count()).toBe(5)
})

test('an empty store answers with no nodes; a query mode other than default is refused', async () => {
  const store = make()
  expect(await query(store, 'cat', 3)).toEqual({ nodes: [], similarities: [], ids: [] })
  await store.delete('anything')
  await store.add(await corpus())
  await expect(
    store.query({ queryEmbedding: [1, 0, 0, 0, 0, 0, 0, 0], similarityTopK: 1, mode: VectorStoreQueryMode.HYBRID }),
  ).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
})
