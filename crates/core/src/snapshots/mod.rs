//! Checks over a collection's files as a whole (and, later, named
//! snapshots and backups, see DESIGN.md §6).

pub mod verify;
