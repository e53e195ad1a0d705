//! The `sqlite` export: a real SQLite 3 database (bundled SQLite through
//! rusqlite) that `sqlite3`, Python's `sqlite3` or any SQLite client can query.
//!
//! ```sql
//! CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
//! -- rows: format = 'annvault-sqlite', format_version = '1', dimension = '384',
//! --       distance = 'Cosine' | 'Dot' | 'Euclidean', count = '100000'
//! CREATE TABLE points (
//!   seq     INTEGER PRIMARY KEY,      -- 0, 1, 2 …: the export order
//!   id      NOT NULL,                 -- INTEGER for numeric ids, TEXT for string ids
//!   id_type TEXT NOT NULL CHECK (id_type IN ('integer', 'string')),
//!   vector  BLOB NOT NULL,            -- dimension × f32, little-endian
//!   payload TEXT NOT NULL             -- the payload, a JSON object
//! );
//! CREATE UNIQUE INDEX points_id ON points (id_type, id);
//! ```
//!
//! `id` has no declared type (so no affinity: `ANY` would mean NUMERIC and
//! turn the string id `'12'` into the integer 12), so SQLite keeps each value's own (an integer
//! stays an integer, a string a string); `id_type` says which, for clients
//! that flatten types. In Python:
//! `struct.unpack('<%df' % dim, row['vector'])` gives the vector back.
//!
//! SQLite needs a file to work on: the database is built in a temporary
//! file beside the target (and, when compressed, streamed through the
//! compressor into another); a compressed import is decompressed into a
//! temporary file first. Import runs `PRAGMA quick_check` before reading.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::formats::{
    check_point, write_stream, Compression, Header, Point, Points, ReadError, Visit,
};
use crate::id::PointId;
use crate::progress::Reporter;
use crate::storage::fs::Storage;

pub const FORMAT: &str = "annvault-sqlite";
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn sql_error<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl Fn(rusqlite::Error) -> Error + 'a {
    move |e| Error::io(operation, path, io::Error::other(e))
}

const SCHEMA: &str = "
    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
    CREATE TABLE points (
      seq     INTEGER PRIMARY KEY,
      id      NOT NULL,
      id_type TEXT NOT NULL CHECK (id_type IN ('integer', 'string')),
      vector  BLOB NOT NULL,
      payload TEXT NOT NULL
    );
    CREATE UNIQUE INDEX points_id ON points (id_type, id);";

/// Builds the database at `path` (which must not exist).
fn build(path: &Path, points: &Points<'_>, progress: &mut Reporter) -> Result<()> {
    let err = sql_error(path, "write sqlite");
    let mut db = Connection::open(path).map_err(&err)?;
    // The file is fsynced once, whole, before it is published: SQLite's own
    // journal and syncs would only slow the build.
    db.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(&err)?;
    db.execute_batch(SCHEMA).map_err(&err)?;
    let tx = db.transaction().map_err(&err)?;
    {
        let h = &points.header;
        let mut meta = tx
            .prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
            .map_err(&err)?;
        for (key, value) in [
            ("format", FORMAT.to_string()),
            ("format_version", "1".to_string()),
            ("dimension", h.dimension.to_string()),
            ("distance", h.distance.name().to_string()),
            ("count", h.count.to_string()),
        ] {
            meta.execute(params![key, value]).map_err(&err)?;
        }
        let mut insert = tx
            .prepare("INSERT INTO points (seq, id, id_type, vector, payload) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(&err)?;
        let mut blob = Vec::new();
        for (seq, (id, vector, payload)) in points.points.iter().enumerate() {
            blob.clear();
            crate::storage::codec::put_f32s(&mut blob, vector);
            let json = serde_json::to_string(payload).map_err(|e| Error::Internal {
                reason: format!("payload does not serialise: {e}"),
            })?;
            let outcome = match id {
                PointId::Int(n) => insert.execute(params![seq as i64, n, "integer", blob, json]),
                PointId::Str(s) => insert.execute(params![seq as i64, &**s, "string", blob, json]),
            };
            outcome.map_err(&err)?;
            if seq % 1024 == 1023 {
                progress.tick(seq as u64 + 1);
            }
        }
    }
    tx.commit().map_err(&err)?;
    db.close().map_err(|(_, e)| err(e))?;
    Ok(())
}

/// Writes the export to `tmp` (the caller renames it into place).
pub(crate) fn export_file(
    storage: &dyn Storage,
    dir: &Path,
    tmp: &Path,
    points: &Points<'_>,
    compression: Compression,
    progress: &mut Reporter,
) -> Result<u64> {
    let _ = dir;
    if compression == Compression::None {
        build(tmp, points, progress)?;
        let file = File::open(tmp).map_err(|e| Error::io("open", tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", tmp, e))?;
        return file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("stat", tmp, e));
    }
    let mut db_path = tmp.as_os_str().to_owned();
    db_path.push(".db");
    let db_path = PathBuf::from(db_path);
    let outcome = build(&db_path, points, progress).and_then(|()| {
        let mut db = File::open(&db_path).map_err(|e| Error::io("open", &db_path, e))?;
        write_stream(storage, tmp, compression, |w| {
            io::copy(&mut db, w).map(|_| ())
        })
    });
    // The uncompressed build is scratch either way.
    let _ = std::fs::remove_file(&db_path);
    outcome
}

/// Reads the database at `path` (decompressing it to a scratch file first).
pub fn read(
    path: &Path,
    compression: Compression,
    on_header: &mut dyn FnMut(&Header) -> std::result::Result<(), ReadError>,
    visit: &mut Visit<'_>,
) -> std::result::Result<Header, ReadError> {
    if compression == Compression::None {
        return read_db(path, on_header, visit);
    }
    let scratch = std::env::temp_dir().join(format!(
        "annvault-import-{}-{:016x}.sqlite",
        std::process::id(),
        crate::storage::codec::random_salt()
    ));
    let copied = (|| -> io::Result<()> {
        let file = File::open(path)?;
        let mut stream: Box<dyn io::Read> = match compression {
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file))),
            _ => Box::new(brotli::Decompressor::new(file, 1 << 16)),
        };
        let mut out = File::create(&scratch)?;
        io::copy(&mut stream, &mut out)?;
        Ok(())
    })();
    let outcome = copied
        .map_err(|e| ReadError::new(None, 0, format!("cannot decompress: {e}")))
        .and_then(|()| read_db(&scratch, on_header, visit));
    let _ = std::fs::remove_file(&scratch);
    outcome
}

fn read_db(
    path: &Path,
    on_header: &mut dyn FnMut(&Header) -> std::result::Result<(), ReadError>,
    visit: &mut Visit<'_>,
) -> std::result::Result<Header, ReadError> {
    let bad =
        |record: Option<u64>| move |e: rusqlite::Error| ReadError::new(record, 0, e.to_string());
    let db =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(bad(None))?;
    let check: String = db
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(bad(None))?;
    if check != "ok" {
        return Err(ReadError::new(
            None,
            0,
            format!("SQLite quick_check: {check}"),
        ));
    }
    let meta = |key: &str| -> std::result::Result<String, ReadError> {
        db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .map_err(|e| ReadError::new(None, 0, format!("meta {key:?}: {e}")))
    };
    if meta("format")? != FORMAT {
        return Err(ReadError::new(None, 0, "not an annvault-sqlite database"));
    }
    if meta("format_version")? != "1" {
        return Err(ReadError::new(None, 0, "unknown annvault-sqlite version"));
    }
    let number = |key: &str| -> std::result::Result<u64, ReadError> {
        meta(key)?
            .parse()
            .map_err(|e| ReadError::new(None, 0, format!("meta {key:?}: {e}")))
    };
    let dimension = number("dimension")? as usize;
    if dimension == 0 || dimension > crate::collection::MAX_DIMENSION {
        return Err(ReadError::new(
            None,
            0,
            format!("dimension {dimension} is out of range"),
        ));
    }
    let distance = crate::distance::Distance::parse(&meta("distance")?)
        .map_err(|e| ReadError::new(None, 0, e.to_string()))?;
    let header = Header {
        dimension,
        distance,
        count: number("count")?,
    };
    on_header(&header)?;
    let mut select = db
        .prepare("SELECT id, id_type, vector, payload FROM points ORDER BY seq")
        .map_err(bad(None))?;
    let mut rows = select.query([]).map_err(bad(None))?;
    let mut index = 0u64;
    while let Some(row) = rows.next().map_err(bad(Some(index)))? {
        let fail = |reason: String| ReadError::new(Some(index), 0, reason);
        let id_type: String = row.get(1).map_err(|e| fail(e.to_string()))?;
        let id = match id_type.as_str() {
            "integer" => {
                let n: i64 = row.get(0).map_err(|e| fail(e.to_string()))?;
                super::WireId::Int(n).into_id().map_err(fail)?
            }
            "string" => {
                let s: String = row.get(0).map_err(|e| fail(e.to_string()))?;
                super::WireId::Str(s).into_id().map_err(fail)?
            }
            other => return Err(fail(format!("unknown id_type {other:?}"))),
        };
        let blob: Vec<u8> = row.get(2).map_err(|e| fail(e.to_string()))?;
        if blob.len() != dimension * 4 {
            return Err(fail(format!(
                "vector is {} bytes, expected {} ({dimension} f32)",
                blob.len(),
                dimension * 4
            )));
        }
        let vector = blob
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let text: String = row.get(3).map_err(|e| fail(e.to_string()))?;
        let payload = serde_json::from_str(&text)
            .map_err(|e| fail(format!("payload is not a JSON object: {e}")))?;
        let point = Point {
            id,
            vector,
            payload,
        };
        check_point(&header, index, 0, &point)?;
        visit(index, point)?;
        index += 1;
    }
    Ok(header)
}
