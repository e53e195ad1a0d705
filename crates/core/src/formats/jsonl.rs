//! The `jsonl` export: JSON Lines, one object per line (UTF-8, `\n`).
//!
//! ```text
//! {"format":"annvault-jsonl","version":2,"dimension":3,"distance":"Cosine","count":2}
//! {"id":1,"values":[0.1,-2.5,3.0],"metadata":{"title":"a"}}
//! {"id":"doc-2","values":[1e-45,0.0,7.0],"metadata":{}}
//! ```
//!
//! The first line is the header; every later non-empty line is one point.
//! Since version 2 a point's fields carry the names of Pinecone's import
//! columns (`id`, `values`, `metadata`, as in the `parquet` export), which
//! Qdrant, Chroma and Pinecone scripts map one to one: such a script skips
//! the first line (the one with a `format` key) and reads each later line
//! as a record. Version 1 files (`vector`, `payload`) still import. The
//! exactness rules are those of [`super::json`]: ids keep their type (a JSON
//! number for an integer id, a string otherwise); each f32 is the shortest
//! decimal that reads back bit for bit. A line longer than [`MAX_LINE`] is
//! refused rather than buffered.

use std::io::{self, BufRead, Read, Write};

use crate::formats::json::{write_point, FieldNames, WirePoint};
use crate::formats::{check_point, Header, Points, ReadError, TextHeader, Visit};
use crate::progress::Reporter;

pub const FORMAT: &str = "annvault-jsonl";

/// The version this module writes; it reads 1 and 2.
const VERSION: u32 = 2;

const PINECONE_FIELDS: FieldNames = FieldNames {
    vector: "values",
    payload: "metadata",
};

/// Longest line a reader accepts: a 65,536-dimension vector in its longest
/// decimal form is about 1 MiB; payloads rarely pass a few KiB.
pub const MAX_LINE: u64 = 64 << 20;

pub fn write(w: &mut dyn Write, points: &Points<'_>, progress: &mut Reporter) -> io::Result<()> {
    let header = TextHeader::new(FORMAT, VERSION, &points.header);
    serde_json::to_writer(&mut *w, &header).map_err(io::Error::other)?;
    w.write_all(b"\n")?;
    for (i, (id, vector, payload)) in points.points.iter().enumerate() {
        write_point(w, id, vector, payload, &PINECONE_FIELDS)?;
        w.write_all(b"\n")?;
        if i % 1024 == 1023 {
            progress.tick(i as u64 + 1);
        }
    }
    Ok(())
}

pub fn read(
    stream: &mut dyn BufRead,
    on_header: &mut dyn FnMut(&Header) -> Result<(), ReadError>,
    visit: &mut Visit<'_>,
) -> Result<Header, ReadError> {
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut header: Option<Header> = None;
    let mut index = 0u64;
    loop {
        line.clear();
        let at = offset;
        let n = (&mut *stream)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| ReadError::new(None, at, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        let record = header.map(|_| index);
        if line.last() != Some(&b'\n') {
            let reason = if n as u64 > MAX_LINE {
                format!("line is longer than {MAX_LINE} bytes")
            } else {
                "file ends inside a line (every line ends with a newline)".into()
            };
            return Err(ReadError::new(record, at, reason));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match header {
            None => {
                let h: TextHeader = serde_json::from_slice(&line)
                    .map_err(|e| ReadError::new(None, at, format!("bad header line: {e}")))?;
                let h = h
                    .check(FORMAT, VERSION)
                    .map_err(|e| ReadError::new(None, at, e))?;
                on_header(&h)?;
                header = Some(h);
            }
            Some(h) => {
                let point = serde_json::from_slice::<WirePoint>(&line)
                    .map_err(|e| e.to_string())
                    .and_then(WirePoint::into_point)
                    .map_err(|e| ReadError::new(Some(index), at, e))?;
                check_point(&h, index, at, &point)?;
                visit(index, point)?;
                index += 1;
            }
        }
    }
    header.ok_or_else(|| ReadError::new(None, 0, "no header line"))
}
