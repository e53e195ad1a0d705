/** Uniform numbers in [0, 1) from `seed` (mulberry32); see random.js. */
export declare function mulberry32(seed: number): () => number
