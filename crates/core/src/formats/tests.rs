//! Round trips, damage and failure for every export format.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::progress::{Progress, Reporter};
use crate::storage::fs::{OsStorage, StorageLock};
use crate::storage::sim::{Fault, SimStorage};
use crate::testing::{batch, payload, Rng};

const FORMATS: [Format; 6] = [
    Format::Annvault,
    Format::Json,
    Format::Jsonl,
    Format::Msgpack,
    Format::Sqlite,
    Format::Parquet,
];
const COMPRESSIONS: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Brotli];

/// A finite f32 from random bits, subnormals and extremes included.
fn random_f32(rng: &mut Rng) -> f32 {
    loop {
        let x = f32::from_bits(rng.next_u64() as u32);
        if x.is_finite() {
            return x;
        }
    }
}

/// `count` points of `dim` dimensions: integer and string ids, empty and
/// nested payloads, vectors of arbitrary finite bit patterns.
fn random_collection(rng: &mut Rng, count: usize, dim: usize, distance: Distance) -> Collection {
    let config = CollectionConfig::new(dim, distance, None).unwrap();
    let mut c = Collection::new(config);
    if count == 0 {
        return c;
    }
    let mut ids = Vec::new();
    let mut vectors = Vec::new();
    let mut payloads = Vec::new();
    for i in 0..count {
        ids.push(match i % 3 {
            0 => PointId::Int(i as i64 - 7),
            1 => PointId::Int(if i % 2 == 0 { 1 } else { -1 } * (MAX_SAFE_INTEGER - i as i64)),
            _ => PointId::Str(format!("doc-{i}-é\"\\").into()),
        });
        for _ in 0..dim {
            vectors.push(random_f32(rng));
        }
        payloads.push(match i % 4 {
            0 => payload(json!({})),
            1 => {
                payload(json!({"title": format!("t{i}"), "n": i, "x": 0.1, "tags": ["a", 1, null]}))
            }
            2 => payload(json!({"deep": {"a": [{"b": true}]}, "big": 1e300, "neg": -5})),
            _ => payload(json!({"unicode": "日本\u{1F600}", "empty": ""})),
        });
    }
    c.insert(batch(dim, ids, vectors, payloads)).unwrap();
    c
}

fn points_of(c: &Collection) -> Vec<(PointId, Vec<u32>, Payload)> {
    let mut out: Vec<_> = c
        .points()
        .map(|(id, v, p)| {
            (
                id.clone(),
                v.iter().map(|x| x.to_bits()).collect(),
                (**p).clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn read_all(path: &Path) -> Result<(Format, Compression, Header, Vec<Point>)> {
    let mut points = Vec::new();
    let (format, compression, header) = read_file(path, &mut |_| Ok(()), &mut |_, p| {
        points.push(p);
        Ok(())
    })?;
    Ok((format, compression, header, points))
}

fn export_to(
    c: &Collection,
    path: &Path,
    format: Format,
    compression: Compression,
) -> ExportSummary {
    let options = ExportOptions {
        format: Some(format),
        compression,
        ..ExportOptions::default()
    };
    export(
        &OsStorage,
        c,
        path,
        &options,
        &mut Reporter::silent("export"),
    )
    .unwrap()
}

#[test]
fn every_format_and_compression_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    for (count, dim, distance) in [
        (0, 3, Distance::Cosine),
        (1, 1, Distance::Dot),
        (37, 1, Distance::Euclidean),
        (250, 17, Distance::Cosine),
    ] {
        let c = random_collection(&mut rng, count, dim, distance);
        let expected = points_of(&c);
        for format in FORMATS {
            for compression in COMPRESSIONS {
                let path = dir.path().join(format!(
                    "{count}-{dim}-{}.{}",
                    format.name(),
                    compression.name()
                ));
                let summary = export_to(&c, &path, format, compression);
                assert_eq!(summary.count, count as u64);
                assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
                let (f, z, header, points) = read_all(&path).unwrap();
                assert_eq!((f, z), (format, compression), "{path:?}");
                assert_eq!(
                    header,
                    Header {
                        dimension: dim,
                        distance,
                        count: count as u64
                    }
                );
                let config = CollectionConfig::new(dim, distance, None).unwrap();
                let mut back = Collection::new(config);
                if !points.is_empty() {
                    let ids = points.iter().map(|p| p.id.clone()).collect();
                    let vectors = points.iter().flat_map(|p| p.vector.clone()).collect();
                    let payloads = points.iter().map(|p| p.payload.clone()).collect();
                    back.insert(batch(dim, ids, vectors, payloads)).unwrap();
                }
                assert_eq!(points_of(&back), expected, "{path:?}");
                let validated = validate(&path, &config, &mut Reporter::silent("import")).unwrap();
                assert_eq!(validated.ids.len(), count);
            }
        }
    }
}

#[test]
fn json_floats_round_trip_for_random_bit_patterns_and_subnormals() {
    let mut rng = Rng(99);
    let mut values: Vec<f32> = (0..200_000).map(|_| random_f32(&mut rng)).collect();
    values.extend([
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::MAX,
        f32::MIN,
        -0.0,
        0.0,
        0.1,
        16_777_217.0,
    ]);
    // Every subnormal exponent's neighbourhood, densely.
    for bits in (1u32..0x0080_0000).step_by(4099) {
        values.push(f32::from_bits(bits));
    }
    let dim = 1000;
    while !values.len().is_multiple_of(dim) {
        values.push(1.0);
    }
    let count = values.len() / dim;
    let ids = (0..count as i64).map(PointId::Int).collect();
    let config = CollectionConfig::new(dim, Distance::Dot, None).unwrap();
    let mut c = Collection::new(config);
    c.insert(batch(dim, ids, values.clone(), vec![Payload::new(); count]))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Json, Format::Jsonl] {
        let path = dir.path().join(format.name());
        export_to(&c, &path, format, Compression::None);
        let (_, _, _, points) = read_all(&path).unwrap();
        let back: Vec<u32> = points
            .iter()
            .flat_map(|p| p.vector.iter().map(|x| x.to_bits()))
            .collect();
        let want: Vec<u32> = values.iter().map(|x| x.to_bits()).collect();
        assert_eq!(back.len(), want.len());
        for (i, (a, b)) in back.iter().zip(&want).enumerate() {
            assert_eq!(
                a,
                b,
                "{}: value {i} ({}) came back as {}",
                format.name(),
                f32::from_bits(*b),
                f32::from_bits(*a)
            );
        }
    }
}

#[test]
fn ids_keep_their_type_in_the_text_formats() {
    let config = CollectionConfig::new(1, Distance::Dot, None).unwrap();
    let mut c = Collection::new(config);
    let ids = vec![PointId::Int(1), PointId::Str("1".into())];
    c.insert(batch(
        1,
        ids,
        vec![1.0, 2.0],
        vec![Payload::new(), Payload::new()],
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    export_to(&c, &path, Format::Jsonl, Compression::None);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("{\"id\":1,\"values\":[1.0],\"metadata\":{}}"),
        "{text}"
    );
    assert!(text.contains("{\"id\":\"1\",\"values\":[2.0]"), "{text}");
    let (_, _, _, points) = read_all(&path).unwrap();
    assert_eq!(points.len(), 2);
}

#[test]
fn jsonl_lines_carry_pinecone_field_names_and_version_1_files_still_import() {
    let c = small_collection();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.jsonl");
    export_to(&c, &path, Format::Jsonl, Compression::None);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    let (_, _, _, exported) = read_all(&path).unwrap();
    for (line, point) in lines.zip(&exported) {
        let record: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap();
        let mut keys: Vec<&str> = record.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["id", "metadata", "values"], "{line}");
        let values: Vec<f32> = serde_json::from_value(record["values"].clone()).unwrap();
        assert_eq!(values, point.vector);
    }

    // The same points as version 1 wrote them: `vector` and `payload`.
    let v1: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = if i == 0 {
                line.replace("\"version\":2", "\"version\":1")
            } else {
                line.replace("\"values\":", "\"vector\":")
                    .replace("\"metadata\":", "\"payload\":")
            };
            line + "\n"
        })
        .collect();
    assert!(v1.contains("\"vector\":") && !v1.contains("\"values\":"));
    let old = dir.path().join("v1.jsonl");
    std::fs::write(&old, v1).unwrap();
    let (_, _, _, points) = read_all(&old).unwrap();
    assert_eq!(points, exported);

    // A version this reader does not know is refused, not guessed at.
    let v3 = text.replacen("\"version\":2", "\"version\":3", 1);
    let future = dir.path().join("v3.jsonl");
    std::fs::write(&future, v3).unwrap();
    let message = read_all(&future).err().unwrap().to_string();
    assert!(message.contains("version 3"), "{message}");
}

fn small_collection() -> Collection {
    random_collection(&mut Rng(3), 6, 2, Distance::Cosine)
}

#[test]
fn a_truncated_file_is_refused_at_every_length() {
    let c = small_collection();
    let config = *c.config();
    let dir = tempfile::tempdir().unwrap();
    for format in FORMATS {
        for compression in COMPRESSIONS {
            let path = dir
                .path()
                .join(format!("full-{}-{}", format.name(), compression.name()));
            export_to(&c, &path, format, compression);
            let bytes = std::fs::read(&path).unwrap();
            let cut_path = dir.path().join("cut");
            // SQLite files are 4 KiB pages: every 97th length, and the page edges.
            let lengths: Vec<usize> = match (format, compression) {
                (Format::Sqlite, _) => (0..bytes.len())
                    .filter(|n| n.is_multiple_of(97) || n.is_multiple_of(4096))
                    .collect(),
                // Cutting only the final newline leaves a complete document.
                (Format::Json, Compression::None) => (0..bytes.len() - 1).collect(),
                _ => (0..bytes.len()).collect(),
            };
            for len in lengths {
                std::fs::write(&cut_path, &bytes[..len]).unwrap();
                let outcome = validate(&cut_path, &config, &mut Reporter::silent("import"));
                match outcome {
                    Err(Error::Corrupt { file, .. }) => assert!(file.ends_with("cut")),
                    Err(Error::Io { .. }) if len == 0 => {}
                    other => panic!(
                        "{} {} cut to {len} of {}: {:?}",
                        format.name(),
                        compression.name(),
                        bytes.len(),
                        other.map(|v| v.ids.len())
                    ),
                }
            }
        }
    }
}

#[test]
fn a_flipped_byte_in_a_bundle_is_refused_wherever_it_is() {
    let c = small_collection();
    let config = *c.config();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.avb");
    export_to(&c, &path, Format::Annvault, Compression::None);
    let bytes = std::fs::read(&path).unwrap();
    let bad_path = dir.path().join("bad.avb");
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        std::fs::write(&bad_path, &bad).unwrap();
        assert!(
            validate(&bad_path, &config, &mut Reporter::silent("import")).is_err(),
            "flip at {at} of {} went unnoticed",
            bytes.len()
        );
    }
}

#[test]
fn a_bad_record_is_named_by_its_index() {
    let c = small_collection();
    let config = *c.config();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.jsonl");
    export_to(&c, &path, Format::Jsonl, Compression::None);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[4] = r#"{"id":9,"values":[1.0,2.0,3.0],"metadata":{}}"#.into();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let error = validate(&path, &config, &mut Reporter::silent("import"))
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(matches!(error, Error::Corrupt { .. }), "{message}");
    assert!(
        message.contains("p.jsonl") && message.contains("record 3"),
        "{message}"
    );
    assert!(message.contains("dimension 3, expected 2"), "{message}");

    // Another collection's dimension or distance: refused from the header.
    let other = CollectionConfig::new(5, Distance::Cosine, None).unwrap();
    let path = dir.path().join("q.avb");
    export_to(&c, &path, Format::Annvault, Compression::Gzip);
    let e = validate(&path, &other, &mut Reporter::silent("import"))
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::ConfigMismatch { .. }) && e.to_string().contains("q.avb"),
        "{e}"
    );
    let other = CollectionConfig::new(2, Distance::Dot, None).unwrap();
    let e = validate(&path, &other, &mut Reporter::silent("import"))
        .err()
        .unwrap();
    assert!(matches!(e, Error::ConfigMismatch { .. }), "{e}");
}

#[test]
fn an_existing_target_is_refused_unless_overwrite_is_asked() {
    let c = small_collection();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    std::fs::write(&path, b"precious").unwrap();
    let mut options = ExportOptions {
        format: Some(Format::Json),
        ..ExportOptions::default()
    };
    let e = export(
        &OsStorage,
        &c,
        &path,
        &options,
        &mut Reporter::silent("export"),
    )
    .err()
    .unwrap();
    assert!(
        matches!(e, Error::InvalidArgument { name: "path", .. }),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    options.overwrite = true;
    export(
        &OsStorage,
        &c,
        &path,
        &options,
        &mut Reporter::silent("export"),
    )
    .unwrap();
    assert_eq!(read_all(&path).unwrap().3.len(), 6);
    // Nothing but the target is left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_failing_disk_leaves_no_file_under_the_target_name() {
    let c = random_collection(&mut Rng(5), 3000, 64, Distance::Cosine);
    let dir = PathBuf::from("/exports");
    let target = dir.join("c.avb");
    let options = ExportOptions {
        format: Some(Format::Annvault),
        compression: Compression::Gzip,
        ..ExportOptions::default()
    };
    // How many storage operations a successful export takes.
    let sim = SimStorage::new(1);
    sim.create_dir_all(&dir).unwrap();
    let before = sim.ops();
    export(&sim, &c, &target, &options, &mut Reporter::silent("export")).unwrap();
    let total = sim.ops() - before;
    assert!(total > 4, "{total} operations");
    for n in 0..total {
        for fault in [Fault::NoSpace, Fault::ShortWrite, Fault::Io, Fault::Sync] {
            for always in [false, true] {
                let sim = SimStorage::new(n);
                sim.create_dir_all(&dir).unwrap();
                sim.fail_at(n, fault, always);
                let outcome = export(&sim, &c, &target, &options, &mut Reporter::silent("export"));
                sim.clear_faults();
                // A failure before the rename leaves no target; one after it
                // (fsync of the directory) leaves the whole file, not durably.
                if let Some(bytes) = sim.contents(&target) {
                    let scratch = tempfile::tempdir().unwrap();
                    let copy = scratch.path().join("c.avb");
                    std::fs::write(&copy, bytes).unwrap();
                    let v = validate(&copy, c.config(), &mut Reporter::silent("import"))
                        .unwrap_or_else(|e| panic!("{fault:?} at op {n} left a bad target: {e}"));
                    assert_eq!(v.ids.len(), 3000);
                } else {
                    assert!(outcome.is_err(), "{fault:?} at op {n}");
                }
                // A disk that keeps failing may refuse to remove the temporary
                // file too; one that fails once leaves nothing behind.
                let leftovers = sim.list(&dir).unwrap();
                assert!(
                    always || leftovers.iter().all(|n| n == "c.avb"),
                    "{fault:?} at op {n} left {leftovers:?}"
                );
            }
        }
        // A power cut at operation n: the target is absent or whole.
        let sim = SimStorage::new(n);
        sim.create_dir_all(&dir).unwrap();
        sim.crash_at(n);
        let _ = export(&sim, &c, &target, &options, &mut Reporter::silent("export"));
        sim.crash();
        if let Some(bytes) = sim.contents(&target) {
            let scratch = tempfile::tempdir().unwrap();
            let copy = scratch.path().join("c.avb");
            std::fs::write(&copy, bytes).unwrap();
            let v = validate(&copy, c.config(), &mut Reporter::silent("import"))
                .unwrap_or_else(|e| panic!("crash at op {n} left a bad target: {e}"));
            assert_eq!(v.ids.len(), 3000);
        }
    }
}

/// The real file system, remembering the largest single write.
#[derive(Default)]
struct Recording {
    largest: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
}

struct RecordingFile {
    inner: Arc<dyn StorageFile>,
    largest: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
}

impl StorageFile for RecordingFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        self.largest.fetch_max(buf.len(), Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.append(buf)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn reserve(&self, len: u64) -> io::Result<()> {
        self.inner.reserve(len)
    }
    fn append_from(&self, end: u64) -> io::Result<()> {
        self.inner.append_from(end)
    }
}

impl Storage for Recording {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        OsStorage.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(RecordingFile {
            inner: OsStorage.create(path)?,
            largest: Arc::clone(&self.largest),
            writes: Arc::clone(&self.writes),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        OsStorage.open_append(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        OsStorage.read(path)
    }
    fn read_into(&self, path: &Path, buf: &mut [u8]) -> io::Result<()> {
        OsStorage.read_into(path, buf)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsStorage.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        OsStorage.remove(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        OsStorage.sync_dir(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        OsStorage.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        OsStorage.exists(path)
    }
    fn size(&self, path: &Path) -> io::Result<u64> {
        OsStorage.size(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        OsStorage.lock(path)
    }
}

/// The mechanism that lets a collection whose JSON passes any one-string
/// limit (Node's is 512 MiB) export: the file reaches the disk in writes of
/// at most [`WRITE_BUFFER`] bytes, here with a 1 MiB limit and a 40 MiB file.
#[test]
fn exports_stream_in_bounded_writes() {
    let mut rng = Rng(11);
    let c = random_collection(&mut rng, 20_000, 96, Distance::Cosine);
    let dir = tempfile::tempdir().unwrap();
    for format in [
        Format::Json,
        Format::Jsonl,
        Format::Msgpack,
        Format::Annvault,
    ] {
        let storage = Recording::default();
        let path = dir.path().join(format.name());
        let options = ExportOptions {
            format: Some(format),
            ..ExportOptions::default()
        };
        let summary = export(
            &storage,
            &c,
            &path,
            &options,
            &mut Reporter::silent("export"),
        )
        .unwrap();
        let largest = storage.largest.load(Ordering::Relaxed);
        assert!(summary.bytes > 8 * WRITE_BUFFER as u64, "{}", summary.bytes);
        assert!(
            largest <= WRITE_BUFFER,
            "{}: a write of {largest} bytes",
            format.name()
        );
        assert!(
            storage.writes.load(Ordering::Relaxed) as u64 >= summary.bytes / WRITE_BUFFER as u64
        );
    }
}

#[test]
fn progress_is_reported_at_a_bounded_rate() {
    let c = random_collection(&mut Rng(2), 50_000, 8, Distance::Cosine);
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let seen = Arc::clone(&events);
    let mut reporter = Reporter::new(
        "export",
        Some(Arc::new(move |p: &Progress| {
            seen.lock().unwrap().push(p.clone())
        })),
    );
    let options = ExportOptions {
        format: Some(Format::Jsonl),
        ..ExportOptions::default()
    };
    export(
        &OsStorage,
        &c,
        &dir.path().join("p"),
        &options,
        &mut reporter,
    )
    .unwrap();
    let events = events.lock().unwrap();
    assert!(
        events.len() >= 2 && events.len() <= 102,
        "{} events",
        events.len()
    );
    assert_eq!(events.first().unwrap().phase, "write");
    assert_eq!(events.last().unwrap().current, 50_000);
    assert_eq!(events.last().unwrap().percentage, 100.0);
}

#[test]
fn an_unknown_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    std::fs::write(&path, b"hello world, not an export").unwrap();
    let config = CollectionConfig::new(2, Distance::Cosine, None).unwrap();
    let e = validate(&path, &config, &mut Reporter::silent("import"))
        .err()
        .unwrap();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
}
