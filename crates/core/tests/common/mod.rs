//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use annvault_core::storage::directory::{DirOptions, Durability};
use annvault_core::storage::fs::{Storage, StorageFile, StorageLock};
pub use annvault_core::testing::{self, payload};
use annvault_core::{
    AnnConfig, CollectionConfig, Distance, Filter, PointBatch, PointId, Store, StoreOptions,
};
use serde_json::{json, Value};

pub const DIM: usize = 4;

pub type Contents = BTreeMap<PointId, (Vec<f32>, Value)>;

pub fn options(storage: Arc<dyn Storage>, root: &Path, dir_options: DirOptions) -> StoreOptions {
    testing::store_options(
        "c",
        CollectionConfig::new(DIM, Distance::Cosine, None).unwrap(),
        AnnConfig::default(),
        Some(testing::persistence(storage, root, dir_options)),
    )
}

/// Fsync durability, no background checkpoint.
pub fn durable() -> DirOptions {
    testing::no_auto_checkpoint(Durability::Fsync)
}

pub fn vector(seed: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| ((seed.wrapping_mul(2654435761).wrapping_add(d * 97)) % 1000) as f32 / 100.0 - 5.0)
        .collect()
}

pub fn batch(ids: &[i64], seed: u64) -> PointBatch {
    testing::batch(
        DIM,
        ids.iter().map(|&i| PointId::Int(i)).collect(),
        ids.iter().flat_map(|&i| vector(seed + i as u64)).collect(),
        ids.iter()
            .map(|&i| payload(json!({ "i": i, "seed": seed })))
            .collect(),
    )
}

pub fn contents(store: &Store) -> Contents {
    let page = store.list(&Filter::default(), usize::MAX).unwrap();
    page.records
        .into_iter()
        .map(|r| {
            let full = store.get(&r.id).unwrap().unwrap();
            (
                r.id,
                (
                    full.vector.unwrap(),
                    Value::Object(full.payload.as_ref().clone()),
                ),
            )
        })
        .collect()
}

/// One mutation of a workload, with its effect on a model.
#[derive(Debug, Clone)]
pub enum Step {
    Insert(Vec<i64>, u64),
    Update(i64, u64),
    Delete(i64),
    Clear,
    Checkpoint,
}

impl Step {
    pub fn run(&self, store: &Store) -> annvault_core::Result<()> {
        match self {
            Step::Insert(ids, seed) => store.insert(store.ticket(), batch(ids, *seed)),
            Step::Update(id, seed) => {
                match store.update(
                    store.ticket(),
                    &PointId::Int(*id),
                    &vector(*seed),
                    payload(json!({ "updated": seed })),
                ) {
                    Err(annvault_core::Error::NotFound { .. }) => Ok(()),
                    other => other,
                }
            }
            Step::Delete(id) => store.delete(store.ticket(), &PointId::Int(*id)).map(|_| ()),
            Step::Clear => store.clear(store.ticket()),
            Step::Checkpoint => store.checkpoint(store.ticket()),
        }
    }

    pub fn model(&self, model: &mut Contents) {
        match self {
            Step::Insert(ids, seed) => {
                for &i in ids {
                    model.insert(
                        PointId::Int(i),
                        (vector(seed + i as u64), json!({ "i": i, "seed": seed })),
                    );
                }
            }
            Step::Update(id, seed) => {
                if let Some(entry) = model.get_mut(&PointId::Int(*id)) {
                    *entry = (vector(*seed), json!({ "updated": seed }));
                }
            }
            Step::Delete(id) => {
                model.remove(&PointId::Int(*id));
            }
            Step::Clear => model.clear(),
            Step::Checkpoint => {}
        }
    }
}

/// Model states after each prefix of `steps`: `states[k]` after the first k.
pub fn prefix_states(steps: &[Step]) -> Vec<Contents> {
    let mut states = vec![Contents::new()];
    let mut model = Contents::new();
    for step in steps {
        step.model(&mut model);
        states.push(model.clone());
    }
    states
}

/// What a [`Hooked`] storage does besides passing calls on.
#[derive(Default)]
struct Hooks {
    /// `create` of a file whose name starts with this fails with `EIO`.
    fail_create: Option<String>,
    /// How long each file `sync` takes.
    sync_delay: Duration,
}

/// A storage that passes every call to `inner`, and on demand fails the
/// creation of some files (as a broken disk fails that one write) or makes
/// each fsync take a while (so that concurrent writers queue behind a
/// commit, as they do behind a real fsync, and commit as a group).
#[derive(Clone)]
pub struct Hooked {
    inner: Arc<dyn Storage>,
    hooks: Arc<Mutex<Hooks>>,
}

impl Hooked {
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Hooked {
            inner,
            hooks: Arc::default(),
        }
    }

    /// From now on, creating a file whose name starts with `prefix` fails
    /// (`None`: nothing fails).
    pub fn fail_creating(&self, prefix: Option<&str>) {
        self.hooks.lock().unwrap().fail_create = prefix.map(str::to_owned);
    }

    pub fn slow_sync(&self, delay: Duration) {
        self.hooks.lock().unwrap().sync_delay = delay;
    }

    fn wrap(&self, file: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
        Arc::new(HookedFile {
            inner: file,
            hooks: Arc::clone(&self.hooks),
        })
    }
}

struct HookedFile {
    inner: Arc<dyn StorageFile>,
    hooks: Arc<Mutex<Hooks>>,
}

impl StorageFile for HookedFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        self.inner.append(buf)
    }

    fn sync(&self) -> io::Result<()> {
        let delay = self.hooks.lock().unwrap().sync_delay;
        std::thread::sleep(delay);
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

impl Storage for Hooked {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let fails = self.hooks.lock().unwrap().fail_create.clone();
        if fails.is_some_and(|prefix| name.starts_with(&prefix)) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.create(path).map(|file| self.wrap(file))
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.inner.open_append(path).map(|file| self.wrap(file))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn read_into(&self, path: &Path, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_into(path, buf)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn size(&self, path: &Path) -> io::Result<u64> {
        self.inner.size(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        self.inner.lock(path)
    }

    fn is_native(&self) -> bool {
        self.inner.is_native()
    }
}
