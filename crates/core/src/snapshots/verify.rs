//! `verify()`: reads every file of a collection's directory and checks it,
//! changing nothing.
//!
//! Per file: the manifest's checksum; the snapshot's header and body
//! checksums and that it holds the sequence number the manifest says; each
//! WAL file's header, every record's checksum and sequence number, that
//! each file starts where the previous one ended (and the first right after
//! the snapshot), and that every record decodes; the saved graph's map
//! checksum, its graph file's size and checksum. Across files: replaying
//! the WAL on the snapshot gives the point count, and every point the saved
//! graph indexes exists with the vector it was indexed for (its vector
//! checksum), unless a later WAL record changed that point.
//!
//! An incomplete record at the very end of the newest WAL file is an append
//! in flight (verify runs while the store is in use) and is not a problem;
//! a complete record there that fails its checksum is.
//!
//! Named snapshots (`snapshots/<id>/`) are checked as a restore would
//! check them: every file against the SHA-256 its snapshot recorded, and
//! the list against the snapshot's checksum; one report per snapshot.
//!
//! The store's publication lock is held meanwhile, so no checkpoint
//! removes a file mid-read (and the named-snapshot lock while the
//! snapshots are read); writes go on.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use crate::ann::{self, AnnConfig};
use crate::collection::{Collection, CollectionConfig};
use crate::error::{Error, Result};
use crate::id::PointId;
use crate::op::{decode_record, Op};
use crate::progress::Reporter;
use crate::storage::fs::Storage;
use crate::storage::manifest::{self, Manifest};
use crate::storage::{snapshot, wal};
use crate::store::Store;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileReport {
    pub file: String,
    pub bytes: u64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    pub ok: bool,
    pub files: Vec<FileReport>,
    /// Points the files hold (snapshot plus the WAL replayed).
    pub count: u64,
    pub problems: Vec<String>,
}

struct Check {
    files: Vec<FileReport>,
    problems: Vec<String>,
}

impl Check {
    fn file(&mut self, name: &str, bytes: u64, outcome: std::result::Result<(), String>) {
        let (ok, error) = match outcome {
            Ok(()) => (true, None),
            Err(e) => {
                self.problems.push(format!("{name}: {e}"));
                (false, Some(e))
            }
        };
        self.files.push(FileReport {
            file: name.to_string(),
            bytes,
            ok,
            error,
        });
    }
}

/// Whether the invalid bytes at `offset` are a record cut short (rather
/// than a complete record that fails its checks).
fn incomplete(bytes: &[u8], offset: u64) -> bool {
    let rest = bytes.get(offset as usize..).unwrap_or_default();
    if rest.len() < wal::RECORD_PREFIX_LEN {
        return true;
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    len > rest.len() - wal::RECORD_PREFIX_LEN
}

/// Verifies the collection directory `dir`.
pub fn verify_dir(
    storage: &dyn Storage,
    dir: &Path,
    config: &CollectionConfig,
    ann_config: &AnnConfig,
    progress: &mut Reporter,
) -> Result<VerifyReport> {
    let names = storage.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut check = Check {
        files: Vec::new(),
        problems: Vec::new(),
    };
    progress.start(
        "read",
        names.len() as u64,
        format!("verifying {}", dir.display()),
    );
    let size = |name: &str| storage.size(&dir.join(name)).unwrap_or(0);
    let read = |name: &str| {
        storage
            .read(&dir.join(name))
            .map_err(|e| format!("cannot read: {e}"))
    };
    let mut done = 0u64;

    // The manifest first: it says which snapshot and WAL files count.
    let manifest: Option<Manifest> = if names.iter().any(|n| n == manifest::FILE_NAME) {
        let outcome = read(manifest::FILE_NAME).and_then(|bytes| {
            Manifest::decode(&bytes)
                .map_err(|(offset, reason)| format!("at byte {offset}: {reason}"))
        });
        let manifest = outcome.as_ref().ok().cloned();
        check.file(
            manifest::FILE_NAME,
            size(manifest::FILE_NAME),
            outcome.map(|_| ()),
        );
        manifest
    } else {
        check.problems.push("MANIFEST is missing".into());
        None
    };
    if let Some(m) = &manifest {
        if m.dimension != config.dimension || m.distance != config.distance.name() {
            check.problems.push(format!(
                "MANIFEST describes a {}-dimension {} collection, the store is {}-dimension {}",
                m.dimension,
                m.distance,
                config.dimension,
                config.distance.name()
            ));
        }
    }

    // The snapshot the manifest names (others are checked on their own).
    let mut collection = Collection::new(*config);
    let mut state_known = manifest.is_some();
    for name in &names {
        let Some(generation) = snapshot::parse_file_name(name) else {
            continue;
        };
        let named = manifest.as_ref().is_some_and(|m| m.snapshot == generation);
        let outcome = read(name).and_then(|bytes| {
            let decoded = snapshot::decode(&bytes)
                .map_err(|(offset, reason)| format!("at byte {offset}: {reason}"))?;
            if let (true, Some(m)) = (named, &manifest) {
                if decoded.seq != m.snapshot_seq {
                    return Err(format!(
                        "holds sequence {}, the manifest says {}",
                        decoded.seq, m.snapshot_seq
                    ));
                }
            }
            Ok(decoded)
        });
        match outcome {
            Ok(decoded) => {
                check.file(name, size(name), Ok(()));
                if named {
                    match decoded.into_collection(config.max_vectors) {
                        Ok(c) => collection = c,
                        Err(e) => {
                            state_known = false;
                            check.problems.push(format!("{name}: {e}"));
                        }
                    }
                }
            }
            Err(e) => {
                if named {
                    state_known = false;
                }
                check.file(name, size(name), Err(e));
            }
        }
        done += 1;
        progress.tick(done);
    }
    if let Some(m) = &manifest {
        if m.snapshot != 0 && !names.contains(&snapshot::file_name(m.snapshot)) {
            state_known = false;
            check.problems.push(format!(
                "the manifest names {}, which is missing",
                snapshot::file_name(m.snapshot)
            ));
        }
    }

    // The WAL, in order, replayed on the snapshot.
    let mut generations: Vec<u64> = names
        .iter()
        .filter_map(|n| wal::parse_file_name(n))
        .collect();
    generations.sort_unstable();
    let wal_start = manifest.as_ref().map_or(0, |m| m.wal_start);
    let live: Vec<u64> = generations
        .iter()
        .copied()
        .filter(|&g| g >= wal_start)
        .collect();
    if manifest.is_some() && live.first().is_some_and(|&g| g != wal_start) {
        check.problems.push(format!(
            "the manifest starts the log at {}, which is missing",
            wal::file_name(wal_start)
        ));
    }
    let mut next_seq = manifest.as_ref().map(|m| m.snapshot_seq + 1);
    let mut previous: Option<u64> = None;
    let mut changed: HashSet<PointId> = HashSet::new();
    let mut cleared = false;
    for &generation in &generations {
        let name = wal::file_name(generation);
        let is_last = Some(&generation) == generations.last();
        let counts = generation >= wal_start;
        let outcome = read(&name).and_then(|bytes| {
            let scan = wal::scan(&bytes)
                .map_err(|(offset, reason)| format!("at byte {offset}: {reason}"))?;
            if let Some(p) = previous {
                if counts && generation != p + 1 {
                    return Err(format!("{} is missing before it", wal::file_name(p + 1)));
                }
            }
            if let (true, Some(expected)) = (counts, next_seq) {
                if scan.header.first_seq != expected {
                    return Err(format!(
                        "starts at sequence {}, expected {expected}",
                        scan.header.first_seq
                    ));
                }
            }
            for record in &scan.records {
                let ops = decode_record(record.op, &bytes[record.body.clone()])
                    .map_err(|reason| format!("record at byte {}: {reason}", record.offset))?;
                if counts {
                    for op in ops {
                        match &op {
                            Op::Insert(batch) => changed.extend(batch.ids.iter().cloned()),
                            Op::Update { id, .. } | Op::Delete(id) => {
                                changed.insert(id.clone());
                            }
                            Op::Clear => cleared = true,
                        }
                        // Refused when first applied too, as in recovery.
                        let _ = collection.apply(op);
                    }
                    next_seq = Some(record.seq + 1);
                }
            }
            match scan.end {
                wal::End::Clean => Ok(()),
                wal::End::Torn { offset, .. } if is_last && incomplete(&bytes, offset) => Ok(()),
                wal::End::Torn { offset, reason } | wal::End::Corrupt { offset, reason } => {
                    Err(format!("at byte {offset}: {reason}"))
                }
            }
        });
        if outcome.is_err() && counts {
            state_known = false;
        }
        check.file(&name, size(&name), outcome);
        if counts {
            previous = Some(generation);
        }
        done += 1;
        progress.tick(done);
    }

    // Saved graphs: each map with its graph file.
    let mut graph_files: Vec<&String> = Vec::new();
    for name in &names {
        let Some(generation) = ann::parse_index_file_name(name) else {
            continue;
        };
        if *name != ann::map_file_name(generation) {
            graph_files.push(name);
            continue;
        }
        match ann::read_saved(storage, dir, generation, config, ann_config) {
            Ok(Some(saved)) => {
                check.file(name, size(name), Ok(()));
                let current = manifest.as_ref().is_some_and(|m| m.snapshot == generation);
                if current && state_known && !cleared {
                    for line in saved.disagreements(&collection, &|id| changed.contains(id)) {
                        check.problems.push(format!("{name}: {line}"));
                    }
                }
            }
            Ok(None) => check.file(name, size(name), Err("disappeared while being read".into())),
            Err(Error::Corrupt {
                file,
                offset,
                reason,
            }) if !file.ends_with(name.as_str()) => {
                // The map is sound; the graph file it names is not.
                check.file(name, size(name), Ok(()));
                let graph = Path::new(&file)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(&file)
                    .to_string();
                check.file(
                    &graph,
                    size(&graph),
                    Err(format!("at byte {offset}: {reason}")),
                );
            }
            Err(e) => check.file(name, size(name), Err(e.full_message())),
        }
        done += 1;
        progress.tick(done);
    }
    for name in graph_files {
        if !check.files.iter().any(|f| &f.file == name) {
            check.file(name, size(name), Ok(()));
        }
        done += 1;
        progress.tick(done);
    }
    for name in &names {
        if !check.files.iter().any(|f| &f.file == name) {
            // LOCK, leftovers of an interrupted write (`*.tmp`), `recovered-*`.
            check.file(name, size(name), Ok(()));
        }
    }
    progress.finish(if check.problems.is_empty() {
        "no problems".to_string()
    } else {
        format!("{} problems", check.problems.len())
    });
    Ok(VerifyReport {
        ok: check.problems.is_empty(),
        files: check.files,
        count: collection.len() as u64,
        problems: check.problems,
    })
}

impl Store {
    /// Verifies the store's files (see the module documentation). A store
    /// without persistence has no files: its report lists none.
    pub fn verify(&self, progress: &mut Reporter) -> Result<VerifyReport> {
        if !self.is_open() {
            return Err(Error::Closed);
        }
        let (storage, dir) = self.files();
        let Some(dir) = dir else {
            progress.start("read", 0, "memory-only store: no files");
            progress.finish("no problems");
            return Ok(VerifyReport {
                ok: true,
                files: Vec::new(),
                count: self.len()? as u64,
                problems: Vec::new(),
            });
        };
        let config = *self.config();
        let ann_config = self.ann_config().clone();
        let mut report = self.with_publication_held(|| {
            verify_dir(storage.as_ref(), &dir, &config, &ann_config, progress)
        })?;
        // `snapshots/` is listed as one entry by the directory pass: its
        // content is checked here, one report per named snapshot.
        report
            .files
            .retain(|f| f.file != crate::snapshots::named::DIR_NAME);
        let mut silent = Reporter::silent("verify");
        for check in self.verify_snapshots(&mut silent)? {
            if let Err(e) = &check.outcome {
                report.problems.push(format!("{}: {e}", check.file));
            }
            report.files.push(FileReport {
                file: check.file,
                bytes: check.bytes,
                ok: check.outcome.is_ok(),
                error: check.outcome.err(),
            });
        }
        report.ok = report.problems.is_empty();
        Ok(report)
    }
}
