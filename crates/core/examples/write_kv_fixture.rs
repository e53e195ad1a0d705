//! Writes the key-value format fixture that `tests/kv.rs` opens.
//!
//! ```text
//! cargo run -p annvault-core --example write_kv_fixture [-- <dir>]
//! ```
//!
//! `<dir>` defaults to `crates/core/tests/fixtures/kv-v1`. The fixture holds
//! a checkpoint (JSON, binary, a deflated large value, an overwrite that
//! kept `createdAt`, an expired entry swept before it) and a log after it
//! (a batch with an expiring entry, a delete, a single set). Like the collection fixtures it is committed and never
//! rewritten: every later reader must open it with the same contents.

use std::path::PathBuf;
use std::sync::Arc;

use annvault_core::kv::{KvOptions, KvStore, KvValue, KvWrite};
use annvault_core::storage::directory::{DirOptions, Durability};
use annvault_core::storage::fs::OsStorage;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn json(key: &str, value: &str, metadata: &str, expires_at: Option<i64>) -> KvWrite {
    KvWrite {
        key: key.into(),
        value: KvValue::Json(value.into()),
        metadata: metadata.into(),
        expires_at,
    }
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kv-v1"));
    if dir.exists() {
        return Err(format!("{} exists; fixtures are never rewritten", dir.display()).into());
    }
    let store = KvStore::open(KvOptions {
        storage: Arc::new(OsStorage),
        path: dir,
        dir: DirOptions {
            durability: Durability::Fsync,
            checkpoint_wal_bytes: u64::MAX,
            ..DirOptions::default()
        },
    })?;
    let t = 1_700_000_000_000_i64;
    store.set(
        store.ticket(),
        vec![
            json("user:1", "{\"name\":\"Ada\"}", "{\"role\":\"admin\"}", None),
            json("user:2", "[1,2,3]", "{}", None),
            json("cache:x", "\"soon gone\"", "{}", Some(t + 500)),
        ],
        t,
    )?;
    store.set(
        store.ticket(),
        vec![KvWrite {
            key: "blob:é".into(),
            value: KvValue::Binary(vec![0, 1, 2, 254, 255]),
            metadata: "{}".into(),
            expires_at: None,
        }],
        t + 1,
    )?;
    let big = format!("\"{}\"", "annvault ".repeat(10_000));
    store.set(store.ticket(), vec![json("big", &big, "{}", None)], t + 2)?;
    store.set(
        store.ticket(),
        vec![json(
            "user:1",
            "{\"name\":\"Ada L.\"}",
            "{\"role\":\"admin\"}",
            None,
        )],
        t + 3,
    )?;
    // Sweeps `cache:x`, then checkpoints.
    store.maintain(store.ticket(), t + 1000)?;
    store.set(
        store.ticket(),
        vec![
            json("user:3", "null", "{}", None),
            json(
                "session:9",
                "true",
                "{\"ip\":\"10.0.0.1\"}",
                Some(t + 1_000_000),
            ),
        ],
        t + 1010,
    )?;
    store.delete(store.ticket(), vec!["user:2".into()], t + 1011)?;
    store.set(
        store.ticket(),
        vec![json("after", "1.5", "{}", None)],
        t + 1012,
    )?;
    // No close: the last records stay in the log, as after a crash.
    Ok(())
}
