//! Filtered searches with the `exists`, `contains`, `or`, `and` and `not`
//! clauses return exactly the top-k among the points that match, computed
//! here by brute force from the points' own attributes (not through
//! `Filter::matches`): on the first use of a filter (evaluated per point,
//! with a sampled estimate of how many match), on its second and later uses
//! (through its bitmap), after writes that change which points match, and
//! through a graph: its selective filters (under 5 % of the points, judged
//! by the sampled estimate or the bitmap's count) fall back to the exact
//! scan, the others run the filtered walk, which on this small set finds
//! the true top-k too.

use std::collections::BTreeMap;
use std::time::Duration;

use annvault_core::testing::{self, payload, Rng};
use annvault_core::{Algorithm, AnnConfig, CollectionConfig, Distance, Filter, PointId, Store};
use serde_json::{json, Value};

const DIM: usize = 8;

/// What a point's payload is made of, kept to compute the truth.
#[derive(Clone, Debug)]
struct Point {
    vector: Vec<f32>,
    /// `None`: no `tag` key; `Some(None)`: `tag: null`.
    tag: Option<Option<&'static str>>,
    title: String,
    labels: Vec<&'static str>,
    n: i64,
}

impl Point {
    fn payload(&self) -> Value {
        let mut p = json!({ "title": self.title, "labels": self.labels, "n": self.n });
        if let Some(tag) = self.tag {
            p["tag"] = json!(tag);
        }
        p
    }
}

const TAGS: [&str; 3] = ["red", "green", "blue"];
const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "omega", "sigma"];

fn point(rng: &mut Rng) -> Point {
    let tag = match rng.below(5) {
        0 => None,
        1 => Some(None),
        t => Some(Some(TAGS[t - 2])),
    };
    let title = format!("{} {}", WORDS[rng.below(6)], WORDS[rng.below(6)]);
    let labels = (0..rng.below(3)).map(|_| WORDS[rng.below(6)]).collect();
    Point {
        vector: rng.unit_vector(DIM),
        tag,
        title,
        labels,
        n: rng.below(100) as i64,
    }
}

type Truth = fn(&Point) -> bool;

/// Each filter with the predicate it stands for, written independently.
fn cases() -> Vec<(Value, Truth)> {
    vec![
        (json!({ "tag": { "exists": true } }), |p| p.tag.is_some()),
        (json!({ "tag": { "exists": false } }), |p| p.tag.is_none()),
        (json!({ "title": { "contains": "mega" } }), |p| {
            p.title.contains("mega")
        }),
        (json!({ "labels": { "contains": "lph" } }), |p| {
            p.labels.iter().any(|l| l.contains("lph"))
        }),
        (
            json!({ "or": [{ "tag": "red" }, { "n": { "lt": 10 } }] }),
            |p| p.tag == Some(Some("red")) || p.n < 10,
        ),
        (json!({ "not": { "tag": "red" } }), |p| {
            p.tag != Some(Some("red"))
        }),
        (json!({ "or": [] }), |_| false),
        (
            json!({
                "n": { "gte": 20 },
                "not": { "or": [{ "tag": { "exists": false } }, { "title": { "contains": "beta" } }] }
            }),
            |p| p.n >= 20 && p.tag.is_some() && !p.title.contains("beta"),
        ),
        (
            json!({ "and": [{ "n": { "gt": 40 } }, { "n": { "ne": 50 } }], "or": [{ "tag": "blue" }, { "labels": "sigma" }] }),
            |p| {
                p.n > 40
                    && p.n != 50
                    && (p.tag == Some(Some("blue")) || p.labels.contains(&"sigma"))
            },
        ),
        // Selective (under 5 %): a graph search scans the matches exactly.
        (
            json!({ "or": [{ "n": 3 }, { "and": [{ "n": 77 }, { "not": { "tag": { "exists": true } } }] }] }),
            |p| p.n == 3 || (p.n == 77 && p.tag.is_none()),
        ),
        (
            json!({ "not": { "or": [{ "n": { "gt": 1 } }, { "title": { "contains": "alpha" } }] } }),
            |p| !(p.n > 1 || p.title.contains("alpha")),
        ),
    ]
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn brute_force(points: &BTreeMap<i64, Point>, query: &[f32], k: usize, keep: Truth) -> Vec<i64> {
    let mut scored: Vec<(f32, i64)> = points
        .iter()
        .filter(|(_, p)| keep(p))
        .map(|(&id, p)| (cosine(query, &p.vector), id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

fn write(store: &Store, points: &BTreeMap<i64, Point>, ids: &[i64]) {
    for chunk in ids.chunks(500) {
        let batch = testing::batch(
            DIM,
            chunk.iter().map(|&i| PointId::Int(i)).collect(),
            chunk
                .iter()
                .flat_map(|i| points[i].vector.clone())
                .collect(),
            chunk.iter().map(|i| payload(points[i].payload())).collect(),
        );
        store.insert(store.ticket(), batch).unwrap();
    }
}

fn assert_exact(store: &Store, points: &BTreeMap<i64, Point>, rng: &mut Rng, round: &str) {
    for (filter_json, keep) in cases() {
        let filter = Filter::from_json(&filter_json).unwrap();
        // Three uses: no bitmap yet, the bitmap built, the bitmap reused.
        for use_ in 0..3 {
            let query = rng.unit_vector(DIM);
            let k = 10;
            let got: Vec<i64> = store
                .search(&query, k, &filter)
                .unwrap()
                .into_iter()
                .map(|hit| match hit.id {
                    PointId::Int(i) => i,
                    other => panic!("unexpected id {other:?}"),
                })
                .collect();
            let want = brute_force(points, &query, k, keep);
            assert_eq!(got, want, "{round}, use {use_}: {filter_json}");
        }
        let matching = points.values().filter(|p| keep(p)).count();
        // Every case but `or: []` selects some points and leaves others out.
        let empty = filter_json == json!({ "or": [] });
        assert!(
            empty || (matching > 0 && matching < points.len()),
            "{filter_json}: {matching}"
        );
        let page = store.list(&filter, 0).unwrap();
        assert_eq!(page.total, matching, "{round}: list count of {filter_json}");
    }
}

fn run(store: &Store, count: i64) {
    let mut rng = Rng(0xF11_7E85);
    let mut points: BTreeMap<i64, Point> = (0..count).map(|i| (i, point(&mut rng))).collect();
    write(store, &points, &points.keys().copied().collect::<Vec<_>>());
    if builds_graph(store) {
        assert!(store.wait_for_index(Duration::from_secs(300)).unwrap());
    }
    assert_exact(store, &points, &mut rng, "loaded");
    // Rewrites change which points match the cached filters: a fifth of
    // the points get new payloads (and vectors), a tenth are deleted.
    let changed: Vec<i64> = (0..count).filter(|i| i % 5 == 2).collect();
    for id in &changed {
        let p = point(&mut rng);
        let new = payload(p.payload());
        store
            .update(store.ticket(), &PointId::Int(*id), &p.vector, new)
            .unwrap();
        points.insert(*id, p);
    }
    for id in (0..count).filter(|i| i % 10 == 7) {
        store.delete(store.ticket(), &PointId::Int(id)).unwrap();
        points.remove(&id);
    }
    if builds_graph(store) {
        assert!(store.wait_for_index(Duration::from_secs(300)).unwrap());
    }
    assert_exact(store, &points, &mut rng, "after writes");
}

/// Configured for a graph: the test waits for it before it searches.
fn builds_graph(store: &Store) -> bool {
    store.stats().unwrap().index.configured != "flat"
}

/// The graph serves searches now.
fn store_has_graph(store: &Store) -> bool {
    store.stats().unwrap().index.algorithm == "hnsw"
}

fn open(ann: AnnConfig) -> Store {
    let config = CollectionConfig::new(DIM, Distance::Cosine, None).unwrap();
    Store::open(testing::store_options("filters", config, ann, None)).unwrap()
}

#[test]
fn exact_store_returns_the_brute_force_top_k_for_every_new_clause() {
    let store = open(AnnConfig {
        algorithm: Algorithm::Flat,
        ..AnnConfig::default()
    });
    run(&store, 1500);
    assert!(!store_has_graph(&store));
}

#[test]
fn graph_store_returns_the_brute_force_top_k_for_every_new_clause() {
    let store = open(AnnConfig {
        algorithm: Algorithm::Hnsw,
        ..AnnConfig::default()
    });
    run(&store, 3000);
    assert!(
        store_has_graph(&store),
        "the searches went through the graph"
    );
}
