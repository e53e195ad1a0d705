//! The `json` export: one JSON document, for people and for tools that read JSON.
//!
//! ```text
//! {"format":"annvault-json","version":1,"dimension":3,"distance":"Cosine","count":2,
//!  "points":[
//!   {"id":1,"vector":[0.1,-2.5,3.0],"payload":{"title":"a"}},
//!   {"id":"doc-2","vector":[1e-45,0.0,7.0],"payload":{}}
//!  ]}
//! ```
//!
//! - `format` comes first (import detects the format by it), and every header
//!   key comes before `points`, so a reader knows the dimension before the
//!   first point and can check points one at a time.
//! - `id` keeps its type: a JSON number for numeric ids (safe integers), a
//!   JSON string for string ids.
//! - `vector`: each f32 written as the shortest decimal that reads back as
//!   the same f32 (Rust's `ryu`), so values round-trip bit for bit, subnormals
//!   included.
//! - `payload`: the point's JSON object.
//!
//! The writer streams point by point; the reader parses the `points` array
//! element by element (serde's `SeqAccess`), holding one point at a time.

use std::fmt;
use std::io::{self, BufRead, Write};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::ser::Formatter;

use crate::collection::Payload;
use crate::formats::{
    check_point, id_from_json, Counting, Header, Point, Points, ReadError, TextHeader, Visit,
};
use crate::id::PointId;
use crate::progress::Reporter;

pub const FORMAT: &str = "annvault-json";

/// The names a text format gives a point's vector and payload: annvault's
/// own (`vector`, `payload`), or Pinecone's (`values`, `metadata`), which
/// the `jsonl` format uses so that other tools' scripts read its lines.
pub(crate) struct FieldNames {
    pub vector: &'static str,
    pub payload: &'static str,
}

pub(crate) const ANNVAULT_FIELDS: FieldNames = FieldNames {
    vector: "vector",
    payload: "payload",
};

/// Writes `{"id":…,"vector":[…],"payload":{…}}` (with `names`' field names).
pub(crate) fn write_point(
    w: &mut dyn Write,
    id: &PointId,
    vector: &[f32],
    payload: &Payload,
    names: &FieldNames,
) -> io::Result<()> {
    let mut f = serde_json::ser::CompactFormatter;
    w.write_all(b"{\"id\":")?;
    match id {
        PointId::Int(n) => f.write_i64(w, *n)?,
        PointId::Str(s) => serde_json::to_writer(&mut *w, &**s).map_err(io::Error::other)?,
    }
    write!(w, ",\"{}\":[", names.vector)?;
    for (i, x) in vector.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        f.write_f32(w, *x)?;
    }
    write!(w, "],\"{}\":", names.payload)?;
    serde_json::to_writer(&mut *w, payload).map_err(io::Error::other)?;
    w.write_all(b"}")
}

pub fn write(w: &mut dyn Write, points: &Points<'_>, progress: &mut Reporter) -> io::Result<()> {
    let header = TextHeader::new(FORMAT, 1, &points.header);
    let head = serde_json::to_string(&header).map_err(io::Error::other)?;
    // The header object without its closing brace, then the points array.
    w.write_all(&head.as_bytes()[..head.len() - 1])?;
    w.write_all(b",\"points\":[")?;
    for (i, (id, vector, payload)) in points.points.iter().enumerate() {
        w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        write_point(w, id, vector, payload, &ANNVAULT_FIELDS)?;
        if i % 1024 == 1023 {
            progress.tick(i as u64 + 1);
        }
    }
    w.write_all(b"\n]}\n")
}

/// One point as the text formats hold it, under either set of
/// [`FieldNames`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WirePoint {
    pub id: serde_json::Value,
    #[serde(alias = "values")]
    pub vector: Vec<f32>,
    #[serde(alias = "metadata")]
    pub payload: Payload,
}

impl WirePoint {
    pub(crate) fn into_point(self) -> Result<Point, String> {
        Ok(Point {
            id: id_from_json(self.id)?,
            vector: self.vector,
            payload: self.payload,
        })
    }
}

/// The state the streaming visitor shares with the caller: the first
/// error a callback returned (serde carries only its own error type).
struct Ctx<'a, 'b> {
    on_header: &'a mut dyn FnMut(&Header) -> Result<(), ReadError>,
    visit: &'a mut Visit<'b>,
    header: Option<Header>,
    stopped: Option<ReadError>,
    offset: &'a dyn Fn() -> u64,
}

struct Document<'c, 'a, 'b>(&'c mut Ctx<'a, 'b>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an annvault-json object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut fields = serde_json::Map::new();
        let mut saw_points = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "points" {
                let header: TextHeader =
                    serde_json::from_value(serde_json::Value::Object(std::mem::take(&mut fields)))
                        .map_err(|e| de::Error::custom(format!("bad header before points: {e}")))?;
                let header = header.check(FORMAT, 1).map_err(de::Error::custom)?;
                if let Err(e) = (ctx.on_header)(&header) {
                    ctx.stopped = Some(e);
                    return Err(de::Error::custom("stopped"));
                }
                ctx.header = Some(header);
                map.next_value_seed(PointsSeed(&mut *ctx))?;
                saw_points = true;
            } else if saw_points {
                return Err(de::Error::custom(format!(
                    "unexpected key {key:?} after points"
                )));
            } else {
                let value: serde_json::Value = map.next_value()?;
                fields.insert(key, value);
            }
        }
        if !saw_points {
            return Err(de::Error::custom("no points array"));
        }
        Ok(())
    }
}

struct PointsSeed<'c, 'a, 'b>(&'c mut Ctx<'a, 'b>);

impl<'de> DeserializeSeed<'de> for PointsSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PointsSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of points")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let Some(header) = ctx.header else {
            return Err(de::Error::custom("points before the header"));
        };
        let mut index = 0u64;
        loop {
            let offset = (ctx.offset)();
            let wire = match seq.next_element::<WirePoint>() {
                Ok(Some(wire)) => wire,
                Ok(None) => break,
                Err(e) => {
                    ctx.stopped = Some(ReadError::new(Some(index), offset, e.to_string()));
                    return Err(e);
                }
            };
            let outcome = wire
                .into_point()
                .map_err(|reason| ReadError::new(Some(index), offset, reason))
                .and_then(|point| {
                    check_point(&header, index, offset, &point)?;
                    (ctx.visit)(index, point)
                });
            if let Err(e) = outcome {
                ctx.stopped = Some(e);
                return Err(de::Error::custom("stopped"));
            }
            index += 1;
        }
        Ok(())
    }
}

pub fn read(
    stream: &mut dyn BufRead,
    on_header: &mut dyn FnMut(&Header) -> Result<(), ReadError>,
    visit: &mut Visit<'_>,
) -> Result<Header, ReadError> {
    let counter = std::cell::Cell::new(0u64);
    let reader = CountingCell {
        inner: Counting {
            inner: stream,
            count: 0,
        },
        shared: &counter,
    };
    let offset = || counter.get();
    let mut ctx = Ctx {
        on_header,
        visit,
        header: None,
        stopped: None,
        offset: &offset,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let outcome = Document(&mut ctx)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Some(stopped) = ctx.stopped.take() {
        return Err(stopped);
    }
    outcome.map_err(|e| {
        ReadError::new(
            None,
            counter.get(),
            format!(
                "not valid annvault-json (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    ctx.header
        .ok_or_else(|| ReadError::new(None, 0, "no header"))
}

/// A [`Counting`] reader that publishes its count for error messages.
struct CountingCell<'a, R> {
    inner: Counting<R>,
    shared: &'a std::cell::Cell<u64>,
}

impl<R: io::Read> io::Read for CountingCell<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.shared.set(self.inner.count);
        Ok(n)
    }
}
