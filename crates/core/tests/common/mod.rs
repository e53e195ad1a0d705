//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use annvault_core::storage::directory::{DirOptions, Durability};
use annvault_core::storage::fs::Storage;
use annvault_core::store::Persistence;
use annvault_core::{
    AnnConfig, CollectionConfig, Distance, Filter, Payload, PointBatch, PointId, Store,
    StoreOptions,
};
use serde_json::{json, Value};

pub const DIM: usize = 4;

pub type Contents = BTreeMap<PointId, (Vec<f32>, Value)>;

pub fn options(storage: Arc<dyn Storage>, root: &Path, dir_options: DirOptions) -> StoreOptions {
    StoreOptions {
        name: "c".into(),
        config: CollectionConfig::new(DIM, Distance::Cosine, None).unwrap(),
        persistence: Some(Persistence {
            root: root.to_path_buf(),
            storage,
            options: dir_options,
        }),
        ann: AnnConfig::default(),
    }
}

pub fn durable() -> DirOptions {
    DirOptions {
        durability: Durability::Fsync,
        checkpoint_wal_bytes: u64::MAX,
        ..DirOptions::default()
    }
}

pub fn payload(value: Value) -> Payload {
    match value {
        Value::Object(o) => o,
        _ => panic!("payloads are objects"),
    }
}

pub fn vector(seed: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| ((seed.wrapping_mul(2654435761).wrapping_add(d * 97)) % 1000) as f32 / 100.0 - 5.0)
        .collect()
}

pub fn batch(ids: &[i64], seed: u64) -> PointBatch {
    let vectors: Vec<f32> = ids.iter().flat_map(|&i| vector(seed + i as u64)).collect();
    PointBatch::new(
        DIM,
        ids.iter().map(|&i| PointId::Int(i)).collect(),
        vectors,
        &vec![DIM as u32; ids.len()],
        ids.iter()
            .map(|&i| payload(json!({ "i": i, "seed": seed })))
            .collect(),
    )
    .unwrap()
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
