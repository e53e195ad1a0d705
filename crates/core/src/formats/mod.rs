//! Export and import of a whole collection, in six formats, each in its
//! own module with its layout in the module's doc comment:
//! [`annvault`] (binary bundle, the fastest), [`json`], [`jsonl`],
//! [`msgpack`], [`sqlite`] and [`parquet`] (the migration format).
//!
//! Every format can be stored raw, gzip- or brotli-compressed (Parquet
//! compresses its data pages instead of the whole file). On import
//! both are detected from the bytes: gzip by its magic (`1f 8b`); brotli has
//! none, so a file whose first bytes are neither gzip nor a known format is
//! decoded as brotli and accepted when its start is a known format.
//!
//! An export writes a copy of the collection taken under the store's read
//! lock (a point in the write order) to a temporary file in the target's
//! directory, through one bounded buffer (nothing builds the whole file in
//! memory), fsyncs it, renames it over the target and fsyncs the directory:
//! a failure leaves no file under the target name. An import `merge` reads
//! the file twice: first to validate every record (bounded memory; the
//! store is not touched), then to apply it in batches through the normal
//! write path. An import `replace` on a persistent store reads it once,
//! checking each record as it builds the file's collection aside, which a
//! checkpoint then installs.

pub mod annvault;
pub mod delta;
pub mod json;
pub mod jsonl;
pub mod msgpack;
pub mod parquet;
pub mod sqlite;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::collection::{check_vector, Collection, CollectionConfig, Payload};
use crate::distance::Distance;
use crate::error::{BatchIndex, Error, Result};
use crate::filter::Filter;
use crate::id::{PointId, MAX_SAFE_INTEGER};
use crate::progress::Reporter;
use crate::storage::fs::{Storage, StorageFile};

/// Bytes buffered before each write to the file: the most an export holds
/// of its output at once.
pub const WRITE_BUFFER: usize = 1 << 20;

/// Points per batch applied by an import (one WAL record each).
pub const IMPORT_BATCH: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Annvault,
    Json,
    Jsonl,
    Msgpack,
    Sqlite,
    Parquet,
}

impl Format {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "annvault" => Ok(Format::Annvault),
            "json" => Ok(Format::Json),
            "jsonl" => Ok(Format::Jsonl),
            "msgpack" => Ok(Format::Msgpack),
            "sqlite" => Ok(Format::Sqlite),
            "parquet" => Ok(Format::Parquet),
            other => Err(Error::InvalidArgument {
                name: "format",
                reason: format!(
                    "expected 'annvault', 'json', 'jsonl', 'msgpack', 'sqlite' or 'parquet', got {other:?}"
                ),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Annvault => "annvault",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Msgpack => "msgpack",
            Format::Sqlite => "sqlite",
            Format::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Brotli,
}

impl Compression {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "brotli" => Ok(Compression::Brotli),
            other => Err(Error::InvalidArgument {
                name: "compression",
                reason: format!("expected 'none', 'gzip' or 'brotli', got {other:?}"),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Brotli => "brotli",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Upsert every point of the file; other points stay.
    #[default]
    Merge,
    /// The collection becomes exactly the file's points.
    Replace,
}

impl ImportMode {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "merge" => Ok(ImportMode::Merge),
            "replace" => Ok(ImportMode::Replace),
            other => Err(Error::InvalidArgument {
                name: "mode",
                reason: format!("expected 'merge' or 'replace', got {other:?}"),
            }),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub format: Option<Format>,
    pub compression: Compression,
    pub filter: Filter,
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub path: String,
    pub format: &'static str,
    pub compression: &'static str,
    pub count: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub count: u64,
    pub format: &'static str,
    pub compression: &'static str,
}

/// What every format's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub dimension: usize,
    pub distance: Distance,
    pub count: u64,
}

/// One point read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: PointId,
    pub vector: Vec<f32>,
    pub payload: Payload,
}

/// Why a file cannot be read: where (record index, when within a record;
/// byte offset into the decompressed stream) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadError {
    pub record: Option<u64>,
    pub offset: u64,
    pub reason: String,
}

impl ReadError {
    pub fn new(record: Option<u64>, offset: u64, reason: impl Into<String>) -> Self {
        ReadError {
            record,
            offset,
            reason: reason.into(),
        }
    }

    fn into_error(self, file: &Path) -> Error {
        let reason = match self.record {
            Some(record) => format!("record {record}: {}", self.reason),
            None => self.reason,
        };
        Error::corrupt(file, self.offset, reason)
    }
}

/// What a reader hands each record to; an `Err` stops the read.
pub type Visit<'a> = dyn FnMut(u64, Point) -> std::result::Result<(), ReadError> + 'a;

/// Ids on the wire keep their type: a number or a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum WireId {
    Int(i64),
    Str(String),
}

impl WireId {
    pub(crate) fn of(id: &PointId) -> WireId {
        match id {
            PointId::Int(n) => WireId::Int(*n),
            PointId::Str(s) => WireId::Str(s.to_string()),
        }
    }

    pub(crate) fn into_id(self) -> std::result::Result<PointId, String> {
        match self {
            WireId::Int(n) if n.abs() <= MAX_SAFE_INTEGER => Ok(PointId::Int(n)),
            WireId::Int(n) => Err(format!("numeric id {n} is not a safe integer")),
            WireId::Str(s) => PointId::from_string(s, BatchIndex(None)).map_err(|e| e.to_string()),
        }
    }
}

/// A JSON id (number or string) as a point id.
pub(crate) fn id_from_json(value: serde_json::Value) -> std::result::Result<PointId, String> {
    match value {
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if i.abs() <= MAX_SAFE_INTEGER => Ok(PointId::Int(i)),
            (_, Some(f)) => PointId::from_number(f, BatchIndex(None)).map_err(|e| e.to_string()),
            _ => Err(format!("numeric id {n} is out of range")),
        },
        serde_json::Value::String(s) => {
            PointId::from_string(s, BatchIndex(None)).map_err(|e| e.to_string())
        }
        other => Err(format!("id must be a number or a string, got {other}")),
    }
}

pub(crate) fn distance_of(name: &str) -> std::result::Result<Distance, String> {
    Distance::parse(name).map_err(|_| format!("unknown distance {name:?}"))
}

pub(crate) fn distance_code(distance: Distance) -> u8 {
    match distance {
        Distance::Cosine => 0,
        Distance::Dot => 1,
        Distance::Euclidean => 2,
    }
}

pub(crate) fn distance_from_code(code: u8) -> Option<Distance> {
    match code {
        0 => Some(Distance::Cosine),
        1 => Some(Distance::Dot),
        2 => Some(Distance::Euclidean),
        _ => None,
    }
}

/// The header fields the text formats share (JSON header object, JSONL
/// first line, MessagePack header map).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TextHeader {
    pub format: String,
    pub version: u32,
    pub dimension: usize,
    pub distance: String,
    pub count: u64,
}

impl TextHeader {
    pub(crate) fn new(format: &str, version: u32, header: &Header) -> Self {
        TextHeader {
            format: format.into(),
            version,
            dimension: header.dimension,
            distance: header.distance.name().into(),
            count: header.count,
        }
    }

    /// The header, when it names `format` at a version from 1 to `newest`.
    pub(crate) fn check(self, format: &str, newest: u32) -> std::result::Result<Header, String> {
        if self.format != format {
            return Err(format!("format is {:?}, expected {format:?}", self.format));
        }
        if !(1..=newest).contains(&self.version) {
            return Err(format!("unknown {format} version {}", self.version));
        }
        if self.dimension == 0 || self.dimension > crate::collection::MAX_DIMENSION {
            return Err(format!("dimension {} is out of range", self.dimension));
        }
        Ok(Header {
            dimension: self.dimension,
            distance: distance_of(&self.distance)?,
            count: self.count,
        })
    }
}

/// Checks one point read from a file against the header.
pub(crate) fn check_point(
    header: &Header,
    index: u64,
    offset: u64,
    point: &Point,
) -> std::result::Result<(), ReadError> {
    check_vector(&point.vector, header.dimension, BatchIndex(None))
        .map_err(|e| ReadError::new(Some(index), offset, e.to_string()))
}

/// Counts the bytes read through it, for error offsets.
pub(crate) struct Counting<R> {
    pub inner: R,
    pub count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.count += amount as u64;
        self.inner.consume(amount)
    }
}

// ------------------------------------------------------------------ export

/// The file an export writes: buffered appends to a [`StorageFile`],
/// remembering the first error so that a compressor that swallows errors
/// (brotli's `into_inner`) cannot hide one.
pub(crate) struct Sink {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    buffer: Vec<u8>,
    written: u64,
    error: Option<io::Error>,
}

impl Sink {
    pub(crate) fn new(file: Arc<dyn StorageFile>, path: PathBuf) -> Self {
        Sink {
            file,
            path,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            written: 0,
            error: None,
        }
    }

    fn drain(&mut self) -> io::Result<()> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        match self.file.append(&self.buffer) {
            Ok(()) => {
                self.written += self.buffer.len() as u64;
                self.buffer.clear();
                Ok(())
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }

    /// Writes what is buffered and fsyncs; the file's size.
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.drain()
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.file
            .sync()
            .map_err(|e| Error::io("fsync", &self.path, e))?;
        Ok(self.written)
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + buf.len() > WRITE_BUFFER {
            self.drain()?;
        }
        if buf.len() >= WRITE_BUFFER {
            // Large writes go through in pieces of the buffer's size.
            for piece in buf.chunks(WRITE_BUFFER) {
                self.buffer.extend_from_slice(piece);
                self.drain()?;
            }
            return Ok(buf.len());
        }
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()
    }
}

/// A compressor over a [`Sink`].
enum Encoder {
    Raw(Sink),
    Gzip(flate2::write::GzEncoder<Sink>),
    Brotli(Box<brotli::CompressorWriter<Sink>>),
}

impl Encoder {
    fn new(sink: Sink, compression: Compression) -> Self {
        match compression {
            Compression::None => Encoder::Raw(sink),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                sink,
                flate2::Compression::fast(),
            )),
            // Quality 5, 4 MiB window: most of brotli's gain at a few times gzip's cost.
            Compression::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                sink,
                1 << 16,
                5,
                22,
            ))),
        }
    }

    fn into_sink(self) -> io::Result<Sink> {
        match self {
            Encoder::Raw(sink) => Ok(sink),
            Encoder::Gzip(gz) => gz.finish(),
            Encoder::Brotli(br) => Ok(br.into_inner()),
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Raw(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Brotli(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Raw(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Brotli(w) => w.flush(),
        }
    }
}

/// The points an export writes: references into a copy of the collection.
pub struct Points<'a> {
    pub header: Header,
    pub points: Vec<(&'a PointId, &'a [f32], &'a Payload)>,
}

impl<'a> Points<'a> {
    pub fn of(collection: &'a Collection, filter: &Filter) -> Self {
        let points: Vec<_> = collection
            .points()
            .filter(|(_, _, payload)| filter.is_empty() || filter.matches(payload))
            .map(|(id, vector, payload)| (id, vector, payload.as_ref()))
            .collect();
        let config = collection.config();
        Points {
            header: Header {
                dimension: config.dimension,
                distance: config.distance,
                count: points.len() as u64,
            },
            points,
        }
    }
}

fn temp_path(target: &Path, tag: &str) -> Result<(PathBuf, PathBuf)> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::InvalidArgument {
            name: "path",
            reason: format!("{} does not name a file", target.display()),
        })?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let salt = crate::storage::codec::random_salt();
    Ok((dir.clone(), dir.join(format!(".{name}.{salt:016x}.{tag}"))))
}

/// Writes `collection` (a copy: the caller took it under the read lock) to
/// `target` atomically. `storage` is where non-SQLite formats are written
/// (the real file system, or a simulated disk in tests).
pub fn export(
    storage: &dyn Storage,
    collection: &Collection,
    target: &Path,
    options: &ExportOptions,
    progress: &mut Reporter,
) -> Result<ExportSummary> {
    let format = options.format.unwrap_or(Format::Annvault);
    // SQLite writes through its own file I/O: the real file system.
    let os = crate::storage::fs::OsStorage;
    let storage: &dyn Storage = if format == Format::Sqlite {
        &os
    } else {
        storage
    };
    if storage.exists(target) && !options.overwrite {
        return Err(Error::InvalidArgument {
            name: "path",
            reason: format!(
                "{} exists; pass {{ overwrite: true }} to replace it",
                target.display()
            ),
        });
    }
    let (dir, tmp) = temp_path(target, "tmp")?;
    let points = Points::of(collection, &options.filter);
    progress.start(
        "write",
        points.header.count,
        format!("writing {}", target.display()),
    );
    let written = match format {
        Format::Sqlite => {
            sqlite::export_file(storage, &dir, &tmp, &points, options.compression, progress)
        }
        Format::Parquet => {
            parquet::export_file(storage, &tmp, &points, options.compression, progress)
        }
        _ => write_stream(storage, &tmp, options.compression, |w| match format {
            Format::Annvault => annvault::write(w, &points, progress),
            Format::Json => json::write(w, &points, progress),
            Format::Jsonl => jsonl::write(w, &points, progress),
            Format::Msgpack => msgpack::write(w, &points, progress),
            Format::Sqlite | Format::Parquet => unreachable!("written above"),
        }),
    };
    let publish = written.and_then(|bytes| {
        storage
            .rename(&tmp, target)
            .map_err(|e| Error::io("rename", &tmp, e))?;
        storage
            .sync_dir(&dir)
            .map_err(|e| Error::io("fsync directory", &dir, e))?;
        Ok(bytes)
    });
    let bytes = match publish {
        Ok(bytes) => bytes,
        Err(error) => {
            // The temporary file is garbage now; the error that made it so is what the caller needs.
            if storage.exists(&tmp) {
                let _ = storage.remove(&tmp);
            }
            return Err(error);
        }
    };
    progress.finish(format!("wrote {bytes} bytes"));
    Ok(ExportSummary {
        path: target.display().to_string(),
        format: format.name(),
        compression: options.compression.name(),
        count: points.header.count,
        bytes,
    })
}

/// Creates `tmp`, lets `body` write the format through the compressor, and
/// makes the file durable; its size.
pub(crate) fn write_stream(
    storage: &dyn Storage,
    tmp: &Path,
    compression: Compression,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<u64> {
    let file = storage
        .create(tmp)
        .map_err(|e| Error::io("create", tmp, e))?;
    let mut encoder = Encoder::new(Sink::new(file, tmp.to_path_buf()), compression);
    body(&mut encoder).map_err(|e| Error::io("write", tmp, e))?;
    let sink = encoder
        .into_sink()
        .map_err(|e| Error::io("write", tmp, e))?;
    sink.finish()
}

// ------------------------------------------------------------------ import

/// Opens `path`, detecting its compression; the decompressed stream.
fn open_decompressed(path: &Path) -> Result<(Compression, Box<dyn BufRead>)> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut raw = BufReader::with_capacity(1 << 16, file);
    let start = raw
        .fill_buf()
        .map_err(|e| Error::io("read", path, e))?
        .to_vec();
    if start.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::GzDecoder::new(raw);
        return Ok((
            Compression::Gzip,
            Box::new(BufReader::with_capacity(1 << 16, gz)),
        ));
    }
    if detect_format(&start).is_some() {
        return Ok((Compression::None, Box::new(raw)));
    }
    // Brotli has no magic: accept it when its start decodes to a known format.
    let mut probe = brotli::Decompressor::new(&start[..], 4096);
    let mut head = Vec::new();
    let _ = (&mut probe).take(256).read_to_end(&mut head);
    if detect_format(&head).is_some() {
        let br = brotli::Decompressor::new(raw, 1 << 16);
        return Ok((
            Compression::Brotli,
            Box::new(BufReader::with_capacity(1 << 16, br)),
        ));
    }
    Err(Error::corrupt(
        path,
        0,
        "not an annvault export: neither a known format nor gzip or brotli of one",
    ))
}

/// The format a file starts with, if any.
pub fn detect_format(start: &[u8]) -> Option<Format> {
    if start.starts_with(annvault::MAGIC) {
        return Some(Format::Annvault);
    }
    if start.starts_with(sqlite::MAGIC) {
        return Some(Format::Sqlite);
    }
    if start.starts_with(parquet::MAGIC) {
        return Some(Format::Parquet);
    }
    if msgpack::looks_like(start) {
        return Some(Format::Msgpack);
    }
    let text = start
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &start[i..])?;
    if text.first() == Some(&b'{') {
        let head = String::from_utf8_lossy(&text[..text.len().min(200)]);
        let squeezed: String = head.chars().filter(|c| !c.is_whitespace()).collect();
        if squeezed.starts_with(&format!("{{\"format\":\"{}\"", jsonl::FORMAT)) {
            return Some(Format::Jsonl);
        }
        if squeezed.starts_with(&format!("{{\"format\":\"{}\"", json::FORMAT)) {
            return Some(Format::Json);
        }
    }
    None
}

/// Reads every record of the file at `path`, in order; the format, the
/// compression and the header.
pub fn read_file(
    path: &Path,
    on_header: &mut dyn FnMut(&Header) -> Result<()>,
    visit: &mut Visit<'_>,
) -> Result<(Format, Compression, Header)> {
    let (compression, mut stream) = open_decompressed(path)?;
    let start = stream
        .fill_buf()
        .map_err(|e| Error::corrupt(path, 0, format!("cannot decompress the start: {e}")))?
        .to_vec();
    let format = detect_format(&start)
        .ok_or_else(|| Error::corrupt(path, 0, "the decompressed file is not a known format"))?;
    let mut header_error = None;
    let mut on_header_checked = |h: &Header| -> std::result::Result<(), ReadError> {
        on_header(h).map_err(|e| {
            header_error = Some(e);
            ReadError::new(None, 0, "header refused")
        })
    };
    let outcome = match format {
        Format::Annvault => annvault::read(&mut stream, &mut on_header_checked, visit),
        Format::Json => json::read(&mut stream, &mut on_header_checked, visit),
        Format::Jsonl => jsonl::read(&mut stream, &mut on_header_checked, visit),
        Format::Msgpack => msgpack::read(&mut stream, &mut on_header_checked, visit),
        Format::Sqlite => {
            drop(stream);
            sqlite::read(path, compression, &mut on_header_checked, visit)
        }
        Format::Parquet if compression != Compression::None => Err(ReadError::new(
            None,
            0,
            "a compressed Parquet file: Parquet compresses its pages itself; decompress it first",
        )),
        Format::Parquet => {
            drop(stream);
            parquet::read(path, &mut on_header_checked, visit)
        }
    };
    let compression = match (format, &outcome) {
        (Format::Parquet, Ok(_)) => parquet::compression_of(path),
        _ => compression,
    };
    match (outcome, header_error) {
        (_, Some(error)) => Err(error),
        (Ok(header), None) => Ok((format, compression, header)),
        (Err(e), None) => Err(e.into_error(path)),
    }
}

/// Checks that `header` fits a collection configured as `config`.
fn check_header(path: &Path, header: &Header, config: &CollectionConfig) -> Result<()> {
    if header.dimension != config.dimension {
        return Err(Error::ConfigMismatch {
            reason: format!(
                "{} holds vectors of dimension {}, the collection has dimension {}",
                path.display(),
                header.dimension,
                config.dimension
            ),
        });
    }
    if header.distance != config.distance {
        return Err(Error::ConfigMismatch {
            reason: format!(
                "{} was exported from a {} collection, this one is {}",
                path.display(),
                header.distance.name(),
                config.distance.name()
            ),
        });
    }
    Ok(())
}

/// What the validation pass learned.
pub struct Validated {
    pub format: Format,
    pub compression: Compression,
    pub header: Header,
    /// Every id of the file (to count new points against `maxVectors`).
    pub ids: HashSet<PointId>,
}

/// Reads the whole file and checks every record (dimension, finite values,
/// ids, payloads, no id twice, the count the header promised) without
/// keeping the records.
pub fn validate(
    path: &Path,
    config: &CollectionConfig,
    progress: &mut Reporter,
) -> Result<Validated> {
    let mut ids = HashSet::new();
    let shared = std::cell::RefCell::new(&mut *progress);
    let (format, compression, header) = read_file(
        path,
        &mut |h| {
            check_header(path, h, config)?;
            shared
                .borrow_mut()
                .start("validate", h.count, format!("checking {}", path.display()));
            Ok(())
        },
        &mut |index, point| {
            let Point { id, .. } = point;
            let shown = id.to_string();
            if !ids.insert(id) {
                return Err(ReadError::new(
                    Some(index),
                    0,
                    format!("id {shown} appears twice in the file"),
                ));
            }
            shared.borrow_mut().tick(index + 1);
            Ok(())
        },
    )?;
    if ids.len() as u64 != header.count {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "the header promises {} points, the file holds {}",
                header.count,
                ids.len()
            ),
        ));
    }
    progress.finish(format!("{} points are valid", ids.len()));
    Ok(Validated {
        format,
        compression,
        header,
        ids,
    })
}

/// Reads the file again and hands its points to `apply` in batches of
/// [`IMPORT_BATCH`].
pub fn read_batches(
    path: &Path,
    config: &CollectionConfig,
    progress: &mut Reporter,
    apply: &mut dyn FnMut(crate::collection::PointBatch) -> Result<()>,
) -> Result<u64> {
    read_batches_checking(path, config, progress, None, apply).map(|(done, ..)| done)
}

/// [`read_batches`], also refusing an id the file holds twice when `seen`
/// is given (it collects the ids); with the file's format and compression.
fn read_batches_checking(
    path: &Path,
    config: &CollectionConfig,
    progress: &mut Reporter,
    mut seen: Option<&mut HashSet<PointId>>,
    apply: &mut dyn FnMut(crate::collection::PointBatch) -> Result<()>,
) -> Result<(u64, Format, Compression, Header)> {
    let dimension = config.dimension;
    let mut ids = Vec::with_capacity(IMPORT_BATCH);
    let mut vectors = Vec::with_capacity(IMPORT_BATCH * dimension);
    let mut payloads = Vec::with_capacity(IMPORT_BATCH);
    let mut apply_error = None;
    let mut done = 0u64;
    let shared = std::cell::RefCell::new(&mut *progress);
    let mut flush = |ids: &mut Vec<PointId>,
                     vectors: &mut Vec<f32>,
                     payloads: &mut Vec<Payload>|
     -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let lengths = vec![dimension as u32; ids.len()];
        let batch = crate::collection::PointBatch::new(
            dimension,
            std::mem::take(ids),
            std::mem::take(vectors),
            &lengths,
            std::mem::take(payloads),
        )?;
        apply(batch)
    };
    let (format, compression, header) = read_file(
        path,
        &mut |h| {
            check_header(path, h, config)?;
            shared
                .borrow_mut()
                .start("apply", h.count, format!("importing {}", path.display()));
            Ok(())
        },
        &mut |index, point| {
            if let Some(seen) = seen.as_deref_mut() {
                if !seen.insert(point.id.clone()) {
                    return Err(ReadError::new(
                        Some(index),
                        0,
                        format!("id {} appears twice in the file", point.id),
                    ));
                }
            }
            ids.push(point.id);
            vectors.extend_from_slice(&point.vector);
            payloads.push(point.payload);
            done += 1;
            if ids.len() >= IMPORT_BATCH {
                if let Err(e) = flush(&mut ids, &mut vectors, &mut payloads) {
                    apply_error = Some(e);
                    return Err(ReadError::new(None, 0, "apply failed"));
                }
                shared.borrow_mut().tick(done);
            }
            Ok(())
        },
    )
    .map_err(|e| apply_error.take().unwrap_or(e))?;
    flush(&mut ids, &mut vectors, &mut payloads)?;
    if seen.is_some() && done != header.count {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "the header promises {} points, the file holds {done}",
                header.count
            ),
        ));
    }
    let progress = shared.into_inner();
    progress.finish(format!("imported {done} points"));
    Ok((done, format, compression, header))
}

/// What `mode: 'replace'` on a persistent store installs: the file's
/// points as a collection of their own, read in one pass that checks every
/// record as [`validate`] does (phase `apply`). Nothing else changes, so a
/// bad record costs only the work done so far.
fn read_collection(
    path: &Path,
    config: &CollectionConfig,
    progress: &mut Reporter,
) -> Result<(Collection, Format, Compression)> {
    let mut imported = Collection::new(*config);
    let mut seen = HashSet::new();
    let (_, format, compression, _) =
        read_batches_checking(path, config, progress, Some(&mut seen), &mut |batch| {
            if let Some(max) = config.max_vectors {
                let adding = imported.len() + batch.len();
                if adding > max {
                    return Err(Error::CapacityExceeded {
                        max,
                        current: 0,
                        adding,
                    });
                }
            }
            imported.insert(batch)
        })?;
    Ok((imported, format, compression))
}

// ------------------------------------------------------------------ the store

impl crate::store::Store {
    /// Exports the collection as of this call (later writes are not in the
    /// file) to `path`; see the module documentation.
    pub fn export(
        &self,
        path: &Path,
        options: &ExportOptions,
        progress: &mut Reporter,
    ) -> Result<ExportSummary> {
        let copy = self.collection_copy()?;
        let (storage, _) = self.files();
        export(storage.as_ref(), &copy, path, options, progress)
    }

    /// Imports the file at `path`; nothing changes if any record is bad.
    /// `Merge` validates all of it first, then goes through the write path
    /// in batches of [`IMPORT_BATCH`] points, each a durable WAL record.
    /// `Replace` on a persistent store reads the file once, checking each
    /// record as it builds the file's collection aside, and installs it as
    /// a checkpoint at the end (atomic: old state or new after a crash;
    /// writes made during the import are replaced too); on a memory-only
    /// store it validates, clears, then inserts.
    pub fn import(
        &self,
        path: &Path,
        mode: ImportMode,
        progress: &mut Reporter,
    ) -> Result<ImportSummary> {
        let config = *self.config();
        if mode == ImportMode::Replace && self.is_persistent() {
            // The file's points become a collection of their own, read and
            // checked in one pass, then written as one checkpoint whose
            // manifest switches the store to it: a bad record changes
            // nothing, a crash leaves the old state or the imported one, and
            // no point goes through the WAL.
            let (imported, format, compression) = read_collection(path, &config, progress)?;
            let count = imported.len() as u64;
            progress.start(
                "write",
                1,
                format!("writing the {count} imported points as a checkpoint"),
            );
            self.restore_state(self.ticket(), imported)?;
            progress.finish("imported state is durable");
            return Ok(ImportSummary {
                count,
                format: format.name(),
                compression: compression.name(),
            });
        }
        let before = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
        let validated = validate(path, &config, progress)?;
        if let Some(max) = config.max_vectors {
            let (current, adding) = match mode {
                ImportMode::Replace => (0, validated.ids.len()),
                ImportMode::Merge => {
                    let mut adding = 0;
                    for id in &validated.ids {
                        if self.get(id)?.is_none() {
                            adding += 1;
                        }
                    }
                    (self.len()?, adding)
                }
            };
            if current + adding > max {
                return Err(Error::CapacityExceeded {
                    max,
                    current,
                    adding,
                });
            }
        }
        drop(validated.ids);
        // The second read must see the bytes the first one checked.
        let after = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
        if after.len() != before.len() || after.modified().ok() != before.modified().ok() {
            return Err(Error::InvalidArgument {
                name: "path",
                reason: format!("{} changed while it was being imported", path.display()),
            });
        }
        // A memory-only store: `Replace` clears, then inserts.
        if mode == ImportMode::Replace {
            self.clear(self.ticket())?;
        }
        let count = read_batches(path, &config, progress, &mut |batch| {
            self.insert(self.ticket(), batch)
        })?;
        Ok(ImportSummary {
            count,
            format: validated.format.name(),
            compression: validated.compression.name(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
