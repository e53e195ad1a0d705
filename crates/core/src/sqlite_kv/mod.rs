//! A key-value table in a SQLite database: the storage of the JS
//! `SQLiteAdapter` (`lib/persistence/sqlite-adapter.ts`), behind the adapter
//! contract `lib/persistence/adapter.ts`.
//!
//! The file is an ordinary SQLite 3 database (WAL journal) that `sqlite3`,
//! Python or any SQLite tool reads. One row per entry:
//!
//! ```sql
//! CREATE TABLE "<table>" (
//!   key        TEXT PRIMARY KEY NOT NULL,  -- UTF-8, compared bytewise
//!   kind       TEXT NOT NULL,              -- 'json' | 'binary'
//!   value      BLOB NOT NULL,              -- JSON text (stored as TEXT) or raw bytes
//!   metadata   TEXT NOT NULL,              -- JSON object
//!   created_at INTEGER NOT NULL,           -- Unix ms, kept across overwrites
//!   updated_at INTEGER NOT NULL,           -- Unix ms
//!   expires_at INTEGER                     -- Unix ms, NULL = never
//! ) WITHOUT ROWID;
//! CREATE INDEX "<table>_expires" ON "<table>"(expires_at) WHERE expires_at IS NOT NULL;
//! ```
//!
//! The clock is the caller's (`now`): an entry with `expires_at <= now` is
//! absent for every call, and swept by [`SqliteKv::maintain`]. A pattern is
//! served by the key range of its literal prefix (the primary key index)
//! and filtered by [`crate::kv::Glob`] (its strict [`Glob::parse`]), because
//! SQLite's `GLOB` cannot escape.
//!
//! Every SQLite failure (including "file is not a database" and
//! `SQLITE_CORRUPT`) becomes [`Error::Database`] naming the file: a corrupt
//! file is never taken for an empty store.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};
use crate::kv::Glob;

/// Longest table name accepted.
pub const MAX_TABLE_NAME: usize = 64;

/// `PRAGMA synchronous` of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL on every commit (the default): a resolved set survives power loss.
    Full,
    /// fsync only at checkpoints: a crash of the machine may lose the last commits.
    Normal,
    /// never fsync.
    Off,
}

impl Synchronous {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            "off" => Ok(Synchronous::Off),
            other => Err(Error::InvalidArgument {
                name: "synchronous",
                reason: format!("expected 'full', 'normal' or 'off', got {other:?}"),
            }),
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        }
    }
}

/// A stored value: JSON text or raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Json(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Write {
    pub key: String,
    pub value: Value,
    pub metadata: String,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub total_entries: u64,
    /// Bytes of the database file and its WAL.
    pub size: u64,
    /// Unix ms of the last commit made by this handle, if any.
    pub last_sync: Option<i64>,
}

/// Table names are SQL identifiers we quote ourselves: letters, digits and
/// `_`, not starting with a digit, not SQLite's reserved `sqlite_` prefix.
pub fn validate_table_name(name: &str) -> Result<()> {
    let refuse = |reason: &str| Error::InvalidArgument {
        name: "tableName",
        reason: format!("{name:?}: {reason}"),
    };
    if name.is_empty() || name.len() > MAX_TABLE_NAME {
        return Err(refuse("must be 1 to 64 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(refuse("only ASCII letters, digits and '_' are allowed"));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(refuse("must not start with a digit"));
    }
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(refuse("the 'sqlite_' prefix is reserved by SQLite"));
    }
    Ok(())
}

struct Statements {
    get: String,
    upsert: String,
    delete: String,
    range: String,
    range_open: String,
    keys_range: String,
    keys_range_open: String,
    clear: String,
    count: String,
    sweep: String,
}

impl Statements {
    fn new(t: &str) -> Self {
        let live = "(expires_at IS NULL OR expires_at > ?1)";
        let columns = "key, kind, value, metadata, created_at, updated_at, expires_at";
        Statements {
            get: format!("SELECT {columns} FROM \"{t}\" WHERE key = ?2 AND {live}"),
            upsert: format!(
                "INSERT INTO \"{t}\" (key, kind, value, metadata, created_at, updated_at, expires_at) \
                 VALUES (?2, ?3, ?4, ?5, ?1, ?1, ?6) \
                 ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, value = excluded.value, \
                 metadata = excluded.metadata, updated_at = excluded.updated_at, \
                 expires_at = excluded.expires_at, \
                 created_at = CASE WHEN \"{t}\".expires_at IS NOT NULL AND \"{t}\".expires_at <= ?1 \
                 THEN excluded.created_at ELSE \"{t}\".created_at END"
            ),
            delete: format!("DELETE FROM \"{t}\" WHERE key = ?2 RETURNING {live}"),
            range: format!(
                "SELECT {columns} FROM \"{t}\" WHERE key >= ?2 AND key < ?3 AND {live} ORDER BY key"
            ),
            range_open: format!(
                "SELECT {columns} FROM \"{t}\" WHERE key >= ?2 AND {live} ORDER BY key"
            ),
            keys_range: format!(
                "SELECT key FROM \"{t}\" WHERE key >= ?2 AND key < ?3 AND {live} ORDER BY key"
            ),
            keys_range_open: format!(
                "SELECT key FROM \"{t}\" WHERE key >= ?2 AND {live} ORDER BY key"
            ),
            clear: format!("DELETE FROM \"{t}\""),
            count: format!("SELECT count(*) FROM \"{t}\" WHERE {live}"),
            sweep: format!(
                "DELETE FROM \"{t}\" WHERE expires_at IS NOT NULL AND expires_at <= ?1"
            ),
        }
    }
}

struct Open {
    conn: Connection,
    last_sync: Option<i64>,
}

/// One SQLite connection to one key-value table. Calls are serialised by a
/// mutex (the binding runs each on the libuv pool); `close` releases the
/// connection and every later call fails with [`Error::Closed`].
pub struct SqliteKv {
    path: PathBuf,
    table: String,
    sql: Statements,
    state: Mutex<Option<Open>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqliteKv {
    pub fn open(path: &Path, table: &str, synchronous: Synchronous) -> Result<Self> {
        validate_table_name(table)?;
        let db = |e: rusqlite::Error| database_error(path, e);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        // Set before the first table exists; a no-op on an existing file
        // (changing it there would need a full VACUUM).
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
            .map_err(db)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Database {
                file: path.display().to_string(),
                reason: format!("could not switch the journal to WAL (it is {mode})"),
            });
        }
        conn.execute_batch(&format!("PRAGMA synchronous = {}", synchronous.pragma()))
            .map_err(db)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (
               key TEXT PRIMARY KEY NOT NULL,
               kind TEXT NOT NULL,
               value BLOB NOT NULL,
               metadata TEXT NOT NULL,
               created_at INTEGER NOT NULL,
               updated_at INTEGER NOT NULL,
               expires_at INTEGER
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS \"{table}_expires\" ON \"{table}\"(expires_at)
               WHERE expires_at IS NOT NULL;"
        ))
        .map_err(db)?;
        check_columns(&conn, path, table)?;
        Ok(SqliteKv {
            path: path.to_owned(),
            table: table.to_owned(),
            sql: Statements::new(table),
            state: Mutex::new(Some(Open {
                conn,
                last_sync: None,
            })),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn with<T>(&self, work: impl FnOnce(&mut Open) -> rusqlite::Result<T>) -> Result<T> {
        let mut guard = self.state.lock().map_err(|_| Error::Poisoned)?;
        let open = guard.as_mut().ok_or(Error::Closed)?;
        work(open).map_err(|e| database_error(&self.path, e))
    }

    pub fn get(&self, keys: &[String], now: i64) -> Result<Vec<Option<Entry>>> {
        self.with(|open| {
            let mut stmt = open.conn.prepare_cached(&self.sql.get)?;
            keys.iter()
                .map(|key| stmt.query_row(params![now, key], entry_from_row).optional())
                .collect()
        })
    }

    pub fn set(&self, writes: &[Write], now: i64) -> Result<()> {
        self.with(|open| {
            let tx = open
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(&self.sql.upsert)?;
                for w in writes {
                    match &w.value {
                        Value::Json(text) => stmt.execute(params![
                            now,
                            w.key,
                            "json",
                            text,
                            w.metadata,
                            w.expires_at
                        ])?,
                        Value::Binary(bytes) => stmt.execute(params![
                            now,
                            w.key,
                            "binary",
                            bytes,
                            w.metadata,
                            w.expires_at
                        ])?,
                    };
                }
            }
            tx.commit()?;
            open.last_sync = Some(now_ms());
            Ok(())
        })
    }

    pub fn delete(&self, keys: &[String], now: i64) -> Result<Vec<bool>> {
        self.with(|open| {
            let tx = open
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existed = {
                let mut stmt = tx.prepare_cached(&self.sql.delete)?;
                keys.iter()
                    .map(|key| {
                        stmt.query_row(params![now, key], |r| r.get::<_, bool>(0))
                            .optional()
                            .map(|live| live.unwrap_or(false))
                    })
                    .collect::<rusqlite::Result<Vec<bool>>>()?
            };
            tx.commit()?;
            open.last_sync = Some(now_ms());
            Ok(existed)
        })
    }

    pub fn find(&self, pattern: &str, now: i64) -> Result<Vec<Entry>> {
        let glob = Glob::parse(pattern)?;
        self.scan(
            &glob,
            now,
            &self.sql.range,
            &self.sql.range_open,
            entry_from_row,
        )
        .map(|rows| {
            rows.into_iter()
                .filter(|e: &Entry| glob.matches(&e.key))
                .collect()
        })
    }

    pub fn keys(&self, pattern: Option<&str>, now: i64) -> Result<Vec<String>> {
        let glob = Glob::parse(pattern.unwrap_or("*"))?;
        self.scan(
            &glob,
            now,
            &self.sql.keys_range,
            &self.sql.keys_range_open,
            |r| r.get::<_, String>(0),
        )
        .map(|keys| keys.into_iter().filter(|k| glob.matches(k)).collect())
    }

    /// Live rows in the key range of the pattern's literal prefix, in key order.
    fn scan<T>(
        &self,
        glob: &Glob,
        now: i64,
        bounded: &str,
        open_ended: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let prefix = glob.literal_prefix();
        let upper = prefix_successor(prefix);
        self.with(|open| match &upper {
            Some(upper) => open
                .conn
                .prepare_cached(bounded)?
                .query_map(params![now, prefix, upper], row)?
                .collect(),
            None => open
                .conn
                .prepare_cached(open_ended)?
                .query_map(params![now, prefix], row)?
                .collect(),
        })
    }

    pub fn clear(&self) -> Result<()> {
        self.with(|open| {
            open.conn.execute(&self.sql.clear, [])?;
            open.last_sync = Some(now_ms());
            Ok(())
        })
    }

    pub fn stats(&self, now: i64) -> Result<Stats> {
        let (total_entries, last_sync) = self.with(|open| {
            let count: i64 = open
                .conn
                .prepare_cached(&self.sql.count)?
                .query_row(params![now], |r| r.get(0))?;
            Ok((count as u64, open.last_sync))
        })?;
        let mut size = 0;
        for suffix in ["", "-wal"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            match std::fs::metadata(&name) {
                Ok(m) => size += m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("stat", Path::new(&name), e)),
            }
        }
        Ok(Stats {
            total_entries,
            size,
            last_sync,
        })
    }

    /// Sweeps expired rows, lets SQLite refresh its statistics, returns
    /// free pages to the file system and checkpoints the WAL into the file.
    pub fn maintain(&self, now: i64) -> Result<()> {
        self.with(|open| {
            open.conn.execute(&self.sql.sweep, params![now])?;
            open.conn.execute_batch("PRAGMA optimize")?;
            open.conn.execute_batch("PRAGMA incremental_vacuum")?;
            open.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            open.last_sync = Some(now_ms());
            Ok(())
        })
    }

    /// Writes a consistent copy of the database to `dest` (which must not
    /// exist) with `VACUUM INTO`, through a connection of its own: in WAL
    /// mode it reads one snapshot while this connection goes on writing.
    /// The copy is fsynced (SQLite does not sync a `VACUUM INTO` target).
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(Error::InvalidArgument {
                name: "dest",
                reason: format!("{} already exists", dest.display()),
            });
        }
        let target = dest.to_str().ok_or_else(|| Error::InvalidArgument {
            name: "dest",
            reason: "must be valid UTF-8".into(),
        })?;
        let db = |e: rusqlite::Error| database_error(&self.path, e);
        // Refuse a closed store, as every other call does.
        self.with(|_| Ok(()))?;
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.execute("VACUUM INTO ?1", params![target])
            .map_err(db)?;
        conn.close().map_err(|(_, e)| db(e))?;
        let file = std::fs::File::open(dest).map_err(|e| Error::io("open", dest, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", dest, e))?;
        Ok(())
    }

    /// Closes the connection (SQLite checkpoints the WAL on the last close).
    pub fn close(&self) -> Result<()> {
        let mut guard = self.state.lock().map_err(|_| Error::Poisoned)?;
        let open = guard.take().ok_or(Error::Closed)?;
        open.conn
            .close()
            .map_err(|(_, e)| database_error(&self.path, e))
    }
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = r.get(1)?;
    let value = match kind.as_str() {
        "json" => Value::Json(r.get(2)?),
        "binary" => Value::Binary(r.get(2)?),
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown value kind {other:?}").into(),
            ))
        }
    };
    Ok(Entry {
        key: r.get(0)?,
        value,
        metadata: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

/// A table made by someone else under our name is refused, not reused.
fn check_columns(conn: &Connection, path: &Path, table: &str) -> Result<()> {
    let expected = [
        "key",
        "kind",
        "value",
        "metadata",
        "created_at",
        "updated_at",
        "expires_at",
    ];
    let columns: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| database_error(path, e))?;
    if columns != expected {
        return Err(Error::Database {
            file: path.display().to_string(),
            reason: format!(
                "table {table:?} exists with columns {columns:?}, not a key-value table ({expected:?})"
            ),
        });
    }
    Ok(())
}

fn database_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Database {
        file: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (in code point order, which is UTF-8 byte order), `None` when there is
/// none: the exclusive upper bound of the prefix's key range.
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_the_prefix_range() {
        assert_eq!(prefix_successor("user:").as_deref(), Some("user;"));
        assert_eq!(prefix_successor("").as_deref(), None);
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
    }

    fn json(text: &str) -> Value {
        Value::Json(text.into())
    }

    fn write(key: &str, value: Value, expires_at: Option<i64>) -> Write {
        Write {
            key: key.into(),
            value,
            metadata: "{}".into(),
            expires_at,
        }
    }

    #[test]
    fn overwrite_keeps_created_at_unless_the_old_entry_expired() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SqliteKv::open(&dir.path().join("a.db"), "app_data", Synchronous::Full).unwrap();
        kv.set(&[write("k", json("1"), None)], 100).unwrap();
        kv.set(&[write("k", json("2"), Some(250))], 200).unwrap();
        let e = kv.get(&["k".into()], 210).unwrap().remove(0).unwrap();
        assert_eq!((e.created_at, e.updated_at, e.value), (100, 200, json("2")));
        assert!(kv.get(&["k".into()], 250).unwrap()[0].is_none());
        kv.set(&[write("k", json("3"), None)], 300).unwrap();
        let e = kv.get(&["k".into()], 300).unwrap().remove(0).unwrap();
        assert_eq!(e.created_at, 300);
    }

    #[test]
    fn find_filters_the_prefix_range_with_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SqliteKv::open(&dir.path().join("a.db"), "t", Synchronous::Normal).unwrap();
        let keys = ["a*1", "a*2", "ab", "a", "b", "user:1", "user;"];
        let writes: Vec<Write> = keys.iter().map(|k| write(k, json("0"), None)).collect();
        kv.set(&writes, 1).unwrap();
        assert_eq!(kv.keys(Some(r"a\*?"), 1).unwrap(), ["a*1", "a*2"]);
        assert_eq!(kv.keys(Some("user:*"), 1).unwrap(), ["user:1"]);
        assert_eq!(kv.keys(Some("[!a]*"), 1).unwrap(), ["b", "user:1", "user;"]);
        assert_eq!(kv.keys(None, 1).unwrap().len(), keys.len());
    }

    #[test]
    fn delete_reports_live_entries_only() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SqliteKv::open(&dir.path().join("a.db"), "t", Synchronous::Full).unwrap();
        kv.set(
            &[write("x", json("1"), Some(10)), write("y", json("1"), None)],
            1,
        )
        .unwrap();
        let existed = kv
            .delete(&["x".into(), "y".into(), "z".into()], 20)
            .unwrap();
        assert_eq!(existed, [false, true, false]);
        assert_eq!(kv.stats(20).unwrap().total_entries, 0);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_database_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = SqliteKv::open(&path, "app_data", Synchronous::Full)
            .err()
            .unwrap();
        assert_eq!(err.code(), 5005);
        assert!(err.to_string().contains("junk.db"), "{err}");
    }

    #[test]
    fn bad_table_names_are_refused() {
        for bad in ["", "1a", "a b", "a\"b", "sqlite_master", &"x".repeat(65)] {
            assert!(validate_table_name(bad).is_err(), "{bad}");
        }
        validate_table_name("app_data").unwrap();
    }

    #[test]
    fn closed_handle_refuses_calls() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SqliteKv::open(&dir.path().join("a.db"), "t", Synchronous::Full).unwrap();
        kv.close().unwrap();
        assert_eq!(kv.get(&["a".into()], 0).err().unwrap().code(), 1012);
        assert_eq!(kv.close().err().unwrap().code(), 1012);
    }

    #[test]
    fn backup_to_writes_a_consistent_copy_and_refuses_an_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SqliteKv::open(&dir.path().join("a.db"), "app_data", Synchronous::Full).unwrap();
        kv.set(&[write("k", json("1"), Some(500))], 100).unwrap();
        let dest = dir.path().join("copy.db");
        kv.backup_to(&dest).unwrap();
        kv.set(&[write("later", json("2"), None)], 200).unwrap();
        assert_eq!(kv.backup_to(&dest).err().unwrap().code(), 1008);
        let copy = SqliteKv::open(&dest, "app_data", Synchronous::Full).unwrap();
        assert_eq!(copy.keys(None, 150).unwrap(), ["k"]);
        let e = copy.get(&["k".into()], 150).unwrap().remove(0).unwrap();
        assert_eq!(
            (e.created_at, e.updated_at, e.expires_at),
            (100, 100, Some(500))
        );
        kv.close().unwrap();
        assert_eq!(
            kv.backup_to(&dir.path().join("x.db")).err().unwrap().code(),
            1012
        );
    }
}
