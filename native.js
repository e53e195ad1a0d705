'use strict'

// Loads the Rust addon. faiss runs its parallel work (training, adds,
// searches) on OpenMP, whose idle threads spin by default: beside the
// store's own threads, and on small machines, the spinning starved the real
// work (an IVF256,PQ48 index of 20,000 × 384 took 230 s to train, add and
// audit on a busy 2-core machine, 45 s with passive waiting). libgomp reads
// the setting when it loads, with the addon, so it is set before; a value
// the user set is kept.
if (process.env.OMP_WAIT_POLICY === undefined) process.env.OMP_WAIT_POLICY = 'PASSIVE'

module.exports = require('./binding.js')
