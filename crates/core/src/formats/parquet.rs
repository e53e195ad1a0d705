//! The `parquet` export: an Apache Parquet file with the columns Pinecone's
//! bulk import reads (LanceDB, DuckDB, pandas and pyarrow read them too):
//!
//! ```text
//! message schema {
//!   REQUIRED BYTE_ARRAY id (STRING);          -- the id as text: 12 → "12"
//!   REQUIRED group values (LIST) {            -- the vector, dimension × float32
//!     REPEATED group list { REQUIRED FLOAT element; }
//!   }
//!   OPTIONAL BYTE_ARRAY metadata (STRING);    -- the payload, a JSON object as text
//! }
//! ```
//!
//! Row groups of [`ROW_GROUP`] points (what the writer holds in memory at
//! once). The file's key-value metadata carries annvault's header under the
//! key `annvault`: `{"format":"annvault-parquet","version":1,"dimension",
//! "distance","count","intIds","compression"}`, where `intIds` is `"all"`, `"none"`, or,
//! for a collection that mixes the two kinds, a hex bitmap (bit `i % 8` of
//! byte `i / 8` set: row `i`'s id is an integer). Pinecone wants string ids;
//! the bitmap is how an import into annvault gives integer ids back their
//! type. Vectors are exact (float32 as stored); `compression` is the codec of
//! the data pages (`gzip` → GZIP, `brotli` → BROTLI), since Parquet readers
//! expect the container itself uncompressed.
//!
//! An import reads files annvault wrote (it needs the header for the
//! distance); a Parquet file from another tool is refused with `CORRUPT`
//! naming what is missing.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression as Codec, GzipLevel};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::formats::{
    check_point, distance_of, Compression, Header, Point, Points, ReadError, Sink, Visit, WireId,
};
use crate::id::PointId;
use crate::progress::Reporter;
use crate::storage::fs::Storage;

pub const FORMAT: &str = "annvault-parquet";
pub const MAGIC: &[u8; 4] = b"PAR1";
/// Points per row group.
pub const ROW_GROUP: usize = 8192;
const META_KEY: &str = "annvault";

const SCHEMA: &str = "
message schema {
  REQUIRED BYTE_ARRAY id (STRING);
  REQUIRED group values (LIST) {
    REPEATED group list {
      REQUIRED FLOAT element;
    }
  }
  OPTIONAL BYTE_ARRAY metadata (STRING);
}";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileHeader {
    format: String,
    version: u32,
    dimension: usize,
    distance: String,
    count: u64,
    int_ids: String,
    /// The data pages' codec, as the export option named it.
    #[serde(default)]
    compression: String,
}

fn pq_error<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl Fn(parquet::errors::ParquetError) -> Error + 'a {
    move |e| Error::io(operation, path, std::io::Error::other(e))
}

/// Which ids are integers: "all", "none" or the hex bitmap.
fn int_ids(points: &Points<'_>) -> String {
    let ints = points
        .points
        .iter()
        .filter(|(id, _, _)| matches!(id, PointId::Int(_)))
        .count();
    if ints == points.points.len() {
        return "all".into();
    }
    if ints == 0 {
        return "none".into();
    }
    let mut bits = vec![0u8; points.points.len().div_ceil(8)];
    for (i, (id, _, _)) in points.points.iter().enumerate() {
        if matches!(id, PointId::Int(_)) {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    bits.iter().map(|b| format!("{b:02x}")).collect()
}

fn id_text(id: &PointId) -> String {
    match id {
        PointId::Int(i) => i.to_string(),
        PointId::Str(s) => s.to_string(),
    }
}

/// Writes the file at `tmp` (created here) and makes it durable; its size.
pub(crate) fn export_file(
    storage: &dyn Storage,
    tmp: &Path,
    points: &Points<'_>,
    compression: Compression,
    progress: &mut Reporter,
) -> Result<u64> {
    let file = storage
        .create(tmp)
        .map_err(|e| Error::io("create", tmp, e))?;
    let mut sink = Sink::new(file, tmp.to_path_buf());
    write(&mut sink, tmp, points, compression, progress)?;
    sink.finish()
}

fn write(
    sink: &mut Sink,
    path: &Path,
    points: &Points<'_>,
    compression: Compression,
    progress: &mut Reporter,
) -> Result<()> {
    let err = pq_error(path, "write parquet");
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(&err)?);
    let h = &points.header;
    let header = FileHeader {
        format: FORMAT.into(),
        version: 1,
        dimension: h.dimension,
        distance: h.distance.name().into(),
        count: h.count,
        int_ids: int_ids(points),
        compression: compression.name().into(),
    };
    let codec = match compression {
        Compression::None => Codec::UNCOMPRESSED,
        Compression::Gzip => Codec::GZIP(GzipLevel::default()),
        Compression::Brotli => Codec::BROTLI(Default::default()),
    };
    let props = WriterProperties::builder()
        .set_compression(codec)
        .set_dictionary_enabled(false)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            META_KEY.into(),
            serde_json::to_string(&header).unwrap_or_default(),
        )]))
        .build();
    let mut writer = SerializedFileWriter::new(sink, schema, Arc::new(props)).map_err(&err)?;
    let mut done = 0u64;
    for group in points.points.chunks(ROW_GROUP) {
        let mut row_group = writer.next_row_group().map_err(&err)?;
        let mut column = 0;
        while let Some(mut col) = row_group.next_column().map_err(&err)? {
            match (column, col.untyped()) {
                (0, ColumnWriter::ByteArrayColumnWriter(w)) => {
                    let ids: Vec<ByteArray> = group
                        .iter()
                        .map(|(id, _, _)| ByteArray::from(id_text(id).into_bytes()))
                        .collect();
                    w.write_batch(&ids, None, None).map_err(&err)?;
                }
                (1, ColumnWriter::FloatColumnWriter(w)) => {
                    let values: Vec<f32> = group
                        .iter()
                        .flat_map(|(_, v, _)| v.iter().copied())
                        .collect();
                    let def = vec![1i16; values.len()];
                    let rep: Vec<i16> = (0..values.len())
                        .map(|i| i16::from(i % h.dimension != 0))
                        .collect();
                    w.write_batch(&values, Some(&def), Some(&rep))
                        .map_err(&err)?;
                }
                (2, ColumnWriter::ByteArrayColumnWriter(w)) => {
                    let payloads: Vec<ByteArray> = group
                        .iter()
                        .map(|(_, _, p)| {
                            ByteArray::from(
                                serde_json::to_vec(p).unwrap_or_else(|_| b"{}".to_vec()),
                            )
                        })
                        .collect();
                    let def = vec![1i16; payloads.len()];
                    w.write_batch(&payloads, Some(&def), None).map_err(&err)?;
                }
                _ => {
                    return Err(Error::io(
                        "write parquet",
                        path,
                        std::io::Error::other("unexpected column layout"),
                    ))
                }
            }
            col.close().map_err(&err)?;
            column += 1;
        }
        row_group.close().map_err(&err)?;
        done += group.len() as u64;
        progress.tick(done);
    }
    writer.close().map_err(&err)?;
    Ok(())
}

fn bad(record: Option<u64>, reason: impl Into<String>) -> ReadError {
    ReadError::new(record, 0, reason)
}

/// The page codec the header names, as an export option.
pub fn compression_of(path: &Path) -> Compression {
    File::open(path)
        .ok()
        .and_then(|f| SerializedFileReader::new(f).ok())
        .and_then(|r| header_text(&r))
        .and_then(|text| serde_json::from_str::<FileHeader>(&text).ok())
        .and_then(|h| Compression::parse(&h.compression).ok())
        .unwrap_or_default()
}

fn header_text(reader: &SerializedFileReader<File>) -> Option<String> {
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == META_KEY))
        .and_then(|e| e.value.clone())
}

pub fn read(
    path: &Path,
    on_header: &mut dyn FnMut(&Header) -> std::result::Result<(), ReadError>,
    visit: &mut Visit<'_>,
) -> std::result::Result<Header, ReadError> {
    let file = File::open(path).map_err(|e| bad(None, format!("cannot open: {e}")))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| bad(None, format!("not a readable Parquet file: {e}")))?;
    let meta = reader.metadata().file_metadata();
    let text = header_text(&reader).ok_or_else(|| {
        bad(
            None,
            "a Parquet file without annvault's header (key 'annvault' in its metadata): \
                 only files annvault exported can be imported",
        )
    })?;
    let fh: FileHeader =
        serde_json::from_str(&text).map_err(|e| bad(None, format!("bad annvault header: {e}")))?;
    if fh.format != FORMAT || fh.version != 1 {
        return Err(bad(
            None,
            format!("header says {:?} version {}", fh.format, fh.version),
        ));
    }
    if fh.dimension == 0 || fh.dimension > crate::collection::MAX_DIMENSION {
        return Err(bad(
            None,
            format!("dimension {} is out of range", fh.dimension),
        ));
    }
    let header = Header {
        dimension: fh.dimension,
        distance: distance_of(&fh.distance).map_err(|e| bad(None, e))?,
        count: fh.count,
    };
    if meta.num_rows() as u64 != header.count {
        return Err(bad(
            None,
            format!("{} rows, the header says {}", meta.num_rows(), header.count),
        ));
    }
    let bitmap: Option<Vec<u8>> = match fh.int_ids.as_str() {
        "all" | "none" => None,
        hex => {
            let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            match bytes {
                Some(b) if hex.len() % 2 == 0 && b.len() as u64 * 8 >= header.count => Some(b),
                _ => return Err(bad(None, "bad intIds bitmap in the header")),
            }
        }
    };
    let is_int = |i: u64| match (&bitmap, fh.int_ids.as_str()) {
        (Some(b), _) => b[(i / 8) as usize] & (1 << (i % 8)) != 0,
        (None, kind) => kind == "all",
    };
    on_header(&header)?;
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| bad(None, format!("cannot read rows: {e}")))?;
    let mut index = 0u64;
    for row in rows {
        let row = row.map_err(|e| bad(Some(index), e.to_string()))?;
        let (mut id, mut vector, mut payload) = (None, None, None);
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("id", Field::Str(s)) => id = Some(s.clone()),
                ("values", Field::ListInternal(list)) => {
                    let v: Option<Vec<f32>> = list
                        .elements()
                        .iter()
                        .map(|f| match f {
                            Field::Float(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    vector = Some(v.ok_or_else(|| bad(Some(index), "values holds a non-float"))?);
                }
                ("metadata", Field::Str(s)) => payload = Some(s.clone()),
                ("metadata", Field::Null) => payload = Some("{}".into()),
                (other, _) => {
                    return Err(bad(Some(index), format!("unexpected column {other:?}")));
                }
            }
        }
        let id = id.ok_or_else(|| bad(Some(index), "no id"))?;
        let wire = if is_int(index) {
            WireId::Int(
                id.parse()
                    .map_err(|_| bad(Some(index), format!("id {id:?} is not an integer")))?,
            )
        } else {
            WireId::Str(id)
        };
        let id = wire.into_id().map_err(|e| bad(Some(index), e))?;
        let payload = serde_json::from_str(payload.as_deref().unwrap_or("{}"))
            .map_err(|e| bad(Some(index), format!("metadata is not a JSON object: {e}")))?;
        let point = Point {
            id,
            vector: vector.ok_or_else(|| bad(Some(index), "no values"))?,
            payload,
        };
        check_point(&header, index, 0, &point)?;
        visit(index, point)?;
        index += 1;
    }
    if index != header.count {
        return Err(bad(
            None,
            format!("{index} rows read, the header says {}", header.count),
        ));
    }
    Ok(header)
}
