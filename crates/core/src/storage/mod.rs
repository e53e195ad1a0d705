//! Durable storage of a collection: the file formats (WAL, snapshot,
//! manifest), the storage trait every byte goes through, and the directory
//! that ties them together (recovery, commit, checkpoint).

pub mod codec;
pub mod directory;
pub mod engine;
pub mod fs;
pub mod legacy;
pub mod manifest;
pub mod sim;
pub mod snapshot;
pub mod wal;
