//! Checks over a collection's files as a whole, and named snapshots
//! (see DESIGN.md §6).

pub mod named;
pub mod saves;
pub mod verify;
