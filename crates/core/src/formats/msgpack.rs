//! The `msgpack` export: MessagePack values back to back (rmp-serde), no
//! JSON inside.
//!
//! ```text
//! header   map(5) { "format": "annvault-msgpack", "version": 1, "dimension": u32,
//!                   "distance": "Cosine" | "Dot" | "Euclidean", "count": u64 }
//! point    map(3) { "id": int | str, "vector": array(dimension) of float32,
//!                   "payload": map (the JSON object as MessagePack) }
//!          … count times, then the end of the file
//! ```
//!
//! Vectors are float32 values, exact by construction; ids keep their type
//! (a MessagePack integer or string). The writer streams one point at a
//! time, and so does the reader.

use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use crate::collection::Payload;
use crate::formats::{
    check_point, Counting, Header, Point, Points, ReadError, TextHeader, Visit, WireId,
};
use crate::progress::Reporter;

pub const FORMAT: &str = "annvault-msgpack";

#[derive(Serialize)]
struct OutPoint<'a> {
    id: WireId,
    vector: &'a [f32],
    payload: &'a Payload,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InPoint {
    id: WireId,
    vector: Vec<f32>,
    payload: Payload,
}

/// Whether `start` is the header map this module writes.
pub fn looks_like(start: &[u8]) -> bool {
    start.len() >= 8 && start[0] == 0x85 && start[1] == 0xa6 && &start[2..8] == b"format"
}

pub fn write(w: &mut dyn Write, points: &Points<'_>, progress: &mut Reporter) -> io::Result<()> {
    let mut w = w;
    let header = TextHeader::new(FORMAT, 1, &points.header);
    rmp_serde::encode::write_named(&mut w, &header).map_err(io::Error::other)?;
    for (i, (id, vector, payload)) in points.points.iter().enumerate() {
        let point = OutPoint {
            id: WireId::of(id),
            vector,
            payload,
        };
        rmp_serde::encode::write_named(&mut w, &point).map_err(io::Error::other)?;
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
    let mut de = rmp_serde::Deserializer::new(Counting {
        inner: stream,
        count: 0,
    });
    let header = TextHeader::deserialize(&mut de)
        .map_err(|e| ReadError::new(None, 0, format!("bad header: {e}")))?
        .check(FORMAT, 1)
        .map_err(|e| ReadError::new(None, 0, e))?;
    on_header(&header)?;
    for index in 0..header.count {
        let at = de.get_ref().count;
        let wire = InPoint::deserialize(&mut de)
            .map_err(|e| ReadError::new(Some(index), at, format!("not a point: {e}")))?;
        let id = wire
            .id
            .into_id()
            .map_err(|e| ReadError::new(Some(index), at, e))?;
        let point = Point {
            id,
            vector: wire.vector,
            payload: wire.payload,
        };
        check_point(&header, index, at, &point)?;
        visit(index, point)?;
    }
    let mut rest = de.into_inner();
    let mut extra = [0u8; 1];
    let at = rest.count;
    if rest
        .read(&mut extra)
        .map_err(|e| ReadError::new(None, at, e.to_string()))?
        != 0
    {
        return Err(ReadError::new(None, at, "bytes after the last point"));
    }
    Ok(header)
}
