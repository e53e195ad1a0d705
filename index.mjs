// ESM entry: the same module as index.js (one copy of the classes, so
// `instanceof` holds whether a caller imports or requires).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const annvault = require('./index.js')

export const {
  createPersistentInMemoryStore,
  createVectorStore,
  InMemoryVectorStore,
  VectorStoreManager,
  VectorStoreError,
  VectorDimensionError,
  PersistenceError,
  ErrorCodes,
  DatabasePersistence,
  VectorDB,
  StorageManager,
} = annvault
export default annvault
