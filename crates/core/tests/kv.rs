//! The key-value engine on the simulated disk and the real one: a model
//! test against a `BTreeMap`, a crash at every I/O operation, injected
//! faults, torn tails, corrupt checkpoints, and the committed format fixture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annvault_core::kv::{KvOptions, KvStore, KvValue, KvWrite};
use annvault_core::storage::directory::{DirOptions, Durability};
use annvault_core::storage::fs::{OsStorage, Storage};
use annvault_core::storage::sim::{Fault, SimStorage};
use annvault_core::storage::{snapshot, wal};
use proptest::prelude::*;

const ROOT: &str = "/kv";

fn options(storage: Arc<dyn Storage>, path: &Path, checkpoint_wal_bytes: u64) -> KvOptions {
    KvOptions {
        storage,
        path: path.to_path_buf(),
        dir: DirOptions {
            durability: Durability::Fsync,
            checkpoint_wal_bytes,
            ..DirOptions::default()
        },
    }
}

/// The log's bytes up to the end of its last record (without the zeros
/// reserved after it), to damage as a crash would.
fn records_only(mut bytes: Vec<u8>) -> Vec<u8> {
    let valid = wal::scan(&bytes).expect("a WAL").valid_len as usize;
    assert!(bytes[valid..].iter().all(|&b| b == 0));
    bytes.truncate(valid);
    bytes
}

fn open_sim(sim: &SimStorage) -> annvault_core::Result<KvStore> {
    KvStore::open(options(Arc::new(sim.clone()), Path::new(ROOT), u64::MAX))
}

fn write(key: &str, value: &str, expires_at: Option<i64>) -> KvWrite {
    KvWrite {
        key: key.into(),
        value: KvValue::Json(value.into()),
        metadata: format!("{{\"v\":{value:?}}}"),
        expires_at,
    }
}

/// What the model keeps per key: value, metadata, createdAt, updatedAt, expiresAt.
type Entry = (KvValue, String, i64, i64, Option<i64>);

#[derive(Debug, Clone, Default, PartialEq)]
struct Model(BTreeMap<String, Entry>);

impl Model {
    fn live(&self, key: &str, now: i64) -> Option<&Entry> {
        self.0.get(key).filter(|e| e.4.is_none_or(|at| at > now))
    }

    fn set(&mut self, writes: &[KvWrite], now: i64) {
        for w in writes {
            let created = self.live(&w.key, now).map_or(now, |e| e.2);
            self.0.insert(
                w.key.clone(),
                (
                    w.value.clone(),
                    w.metadata.clone(),
                    created,
                    now,
                    w.expires_at,
                ),
            );
        }
    }

    fn delete(&mut self, keys: &[String], now: i64) -> Vec<bool> {
        keys.iter()
            .map(|k| {
                let live = self.live(k, now).is_some();
                self.0.remove(k);
                live
            })
            .collect()
    }

    fn sweep(&mut self, now: i64) {
        self.0.retain(|_, e| e.4.is_none_or(|at| at > now));
    }

    /// Live entries at `now`, as the store reports them.
    fn visible(&self, now: i64) -> Vec<(String, Entry)> {
        self.0
            .iter()
            .filter(|(k, _)| self.live(k, now).is_some())
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }
}

fn contents(store: &KvStore, now: i64) -> Vec<(String, Entry)> {
    store
        .find("*", now)
        .unwrap()
        .into_iter()
        .map(|(k, e)| {
            let entry = (
                e.value.clone(),
                e.metadata.clone(),
                e.created_at,
                e.updated_at,
                e.expires_at,
            );
            (k, entry)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Action {
    Set(Vec<(u8, u8, Option<u8>)>),
    Delete(Vec<u8>),
    Clear,
    Maintain,
    Checkpoint,
    Reopen,
    /// Drop without close, then a power cut: everything acknowledged stays.
    Crash,
}

fn action() -> impl Strategy<Value = Action> {
    let key = 0u8..12;
    prop_oneof![
        6 => prop::collection::vec((key.clone(), any::<u8>(), prop::option::of(0u8..20)), 1..4)
            .prop_map(Action::Set),
        3 => prop::collection::vec(key, 1..3).prop_map(Action::Delete),
        1 => Just(Action::Clear),
        1 => Just(Action::Maintain),
        1 => Just(Action::Checkpoint),
        1 => Just(Action::Reopen),
        1 => Just(Action::Crash),
    ]
}

fn key_name(k: u8) -> String {
    // Two prefixes, so patterns have something to tell apart.
    if k.is_multiple_of(2) {
        format!("user:{k}")
    } else {
        format!("item/{k}")
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_store_behaves_like_a_btreemap_across_reopens_and_crashes(
        actions in prop::collection::vec(action(), 1..30),
        seed in any::<u64>(),
    ) {
        let sim = SimStorage::new(seed);
        let mut store = open_sim(&sim).unwrap();
        let mut model = Model::default();
        let mut now = 1_000i64;
        for action in actions {
            now += 3;
            match action {
                Action::Set(writes) => {
                    let writes: Vec<KvWrite> = writes
                        .iter()
                        .map(|&(k, v, ttl)| {
                            write(&key_name(k), &v.to_string(), ttl.map(|t| now + t as i64))
                        })
                        .collect();
                    store.set(store.ticket(), writes.clone(), now).unwrap();
                    model.set(&writes, now);
                }
                Action::Delete(keys) => {
                    let keys: Vec<String> = keys.into_iter().map(key_name).collect();
                    let found = store.delete(store.ticket(), keys.clone(), now).unwrap();
                    prop_assert_eq!(found, model.delete(&keys, now));
                }
                Action::Clear => {
                    store.clear(store.ticket()).unwrap();
                    model.0.clear();
                }
                Action::Maintain => {
                    store.maintain(store.ticket(), now).unwrap();
                    model.sweep(now);
                }
                Action::Checkpoint => store.checkpoint(store.ticket()).unwrap(),
                Action::Reopen => {
                    store.close(store.ticket()).unwrap();
                    store = open_sim(&sim).unwrap();
                }
                Action::Crash => {
                    drop(store);
                    sim.crash();
                    store = open_sim(&sim).unwrap();
                }
            }
            prop_assert_eq!(contents(&store, now), model.visible(now));
            let users: Vec<String> = model
                .visible(now)
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| k.starts_with("user:"))
                .collect();
            prop_assert_eq!(store.keys(Some("user:*"), now).unwrap(), users);
            prop_assert_eq!(store.stats(now).unwrap().total_entries, model.visible(now).len());
            for k in 0..12u8 {
                let got = store.get(&[key_name(k)], now).unwrap().pop().flatten();
                prop_assert_eq!(got.is_some(), model.live(&key_name(k), now).is_some());
            }
        }
    }
}

/// One step of the crash workload, and the clock it runs at.
#[derive(Debug, Clone)]
enum Step {
    Set(Vec<KvWrite>),
    Delete(Vec<&'static str>),
    Clear,
    Maintain,
    Checkpoint,
}

fn workload() -> Vec<Step> {
    let big = format!("\"{}\"", "z".repeat(70_000));
    vec![
        Step::Set(vec![write("a", "1", None), write("b", "2", Some(40))]),
        Step::Set(vec![write("c", "3", None)]),
        Step::Set(vec![write("a", "11", None), write("big", &big, None)]),
        Step::Checkpoint,
        Step::Delete(vec!["c", "zz"]),
        Step::Set(vec![write("d", "4", Some(10_000))]),
        Step::Maintain,
        Step::Set(vec![write("e", "5", None), write("f", "6", None)]),
        Step::Clear,
        Step::Set(vec![write("g", "7", None)]),
        Step::Delete(vec!["g"]),
        Step::Set(vec![write("h", "8", None)]),
    ]
}

fn step_time(i: usize) -> i64 {
    10 * (i as i64 + 1)
}

fn run_step(store: &KvStore, step: &Step, now: i64) -> annvault_core::Result<()> {
    match step {
        Step::Set(writes) => store.set(store.ticket(), writes.clone(), now),
        Step::Delete(keys) => store
            .delete(
                store.ticket(),
                keys.iter().map(|k| k.to_string()).collect(),
                now,
            )
            .map(|_| ()),
        Step::Clear => store.clear(store.ticket()),
        Step::Maintain => store.maintain(store.ticket(), now).map(|_| ()),
        Step::Checkpoint => store.checkpoint(store.ticket()),
    }
}

/// The model's state after each prefix of the workload (index 0: empty).
fn prefix_states(steps: &[Step]) -> Vec<Model> {
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    for (i, step) in steps.iter().enumerate() {
        let now = step_time(i);
        match step {
            Step::Set(writes) => model.set(writes, now),
            Step::Delete(keys) => {
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                model.delete(&keys, now);
            }
            Step::Clear => model.0.clear(),
            Step::Maintain => model.sweep(now),
            Step::Checkpoint => {}
        }
        states.push(model.clone());
    }
    states
}

fn run_until_failure(sim: &SimStorage, steps: &[Step]) -> usize {
    let Ok(store) = open_sim(sim) else {
        return 0;
    };
    for (i, step) in steps.iter().enumerate() {
        if run_step(&store, step, step_time(i)).is_err() {
            return i;
        }
    }
    let _ = store.close(store.ticket());
    steps.len()
}

/// The reopened store holds the state after the acknowledged steps, or
/// after one more (whose record reached the disk before the failure).
fn check_prefix(sim: &SimStorage, states: &[Model], acknowledged: usize, context: &str) {
    let store = open_sim(sim).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
    // Read at time 0: every entry the workload wrote is visible then.
    let actual = contents(&store, 0);
    let candidates = &states[acknowledged..(acknowledged + 2).min(states.len())];
    assert!(
        candidates.iter().any(|m| m.visible(0) == actual),
        "{context}: {acknowledged} steps acknowledged, store holds {:?}",
        actual.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    store.close(store.ticket()).unwrap();
}

fn total_ops(steps: &[Step]) -> u64 {
    let sim = SimStorage::new(1);
    assert_eq!(run_until_failure(&sim, steps), steps.len());
    sim.ops()
}

#[test]
fn crash_at_every_io_operation_keeps_exactly_an_acknowledged_prefix() {
    let steps = workload();
    let states = prefix_states(&steps);
    let total = total_ops(&steps);
    assert!(total > 40, "workload too small: {total} operations");
    let mut seen = std::collections::BTreeSet::new();
    for at in 0..=total {
        let sim = SimStorage::new(at + 1);
        sim.crash_at(at);
        let acknowledged = run_until_failure(&sim, &steps);
        seen.insert(acknowledged);
        sim.crash();
        check_prefix(
            &sim,
            &states,
            acknowledged,
            &format!("crash at operation {at}"),
        );
    }
    assert_eq!(
        seen.len(),
        steps.len() + 1,
        "acknowledged counts seen: {seen:?}"
    );
}

#[test]
fn injected_faults_at_every_operation_lose_nothing_acknowledged() {
    let steps = workload();
    let states = prefix_states(&steps);
    let total = total_ops(&steps);
    for fault in [Fault::Io, Fault::NoSpace, Fault::ShortWrite, Fault::Sync] {
        for always in [false, true] {
            for at in 0..=total {
                let context = format!("{fault:?} (always: {always}) at operation {at}");
                let sim = SimStorage::new(at + 7);
                sim.fail_at(at, fault, always);
                let acknowledged = run_until_failure(&sim, &steps);
                sim.crash();
                check_prefix(&sim, &states, acknowledged, &context);
            }
        }
    }
}

#[test]
fn after_a_failed_fsync_writes_are_refused_until_reopened() {
    let sim = SimStorage::new(3);
    let store = open_sim(&sim).unwrap();
    store
        .set(store.ticket(), vec![write("a", "1", None)], 1)
        .unwrap();
    sim.fail_at(1, Fault::Sync, false); // 0: the append, 1: its fsync
    let err = store
        .set(store.ticket(), vec![write("b", "2", None)], 2)
        .unwrap_err();
    assert_eq!(err.code(), 5002, "{err}");
    // The fault was once, but the log's tail is unknown: no more writes.
    let err = store
        .set(store.ticket(), vec![write("c", "3", None)], 3)
        .unwrap_err();
    assert_eq!(err.code(), 5007, "{err}");
    assert!(store.stats(3).unwrap().writes_disabled.is_some());
    drop(store);
    sim.crash();
    let store = open_sim(&sim).unwrap();
    assert!(store.get(&["a".into()], 3).unwrap()[0].is_some());
    assert!(store.get(&["c".into()], 3).unwrap()[0].is_none());
    store
        .set(store.ticket(), vec![write("c", "3", None)], 4)
        .unwrap();
}

#[test]
fn a_torn_tail_is_cut_and_reported_and_what_precedes_it_stays() {
    for cut in 1..20 {
        let sim = SimStorage::new(cut);
        let store = open_sim(&sim).unwrap();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            store
                .set(store.ticket(), vec![write(k, "1", None)], i as i64)
                .unwrap();
        }
        drop(store);
        let wal_path = Path::new(ROOT).join(wal::file_name(1));
        let mut bytes = records_only(sim.contents(&wal_path).unwrap());
        bytes.truncate(bytes.len() - cut as usize);
        sim.put(&wal_path, &bytes);
        let store = open_sim(&sim).unwrap();
        assert_eq!(store.keys(None, 0).unwrap(), ["a", "b"], "cut {cut}");
        let stats = store.stats(0).unwrap();
        assert!(stats.recovery.torn_bytes > 0);
        assert!(stats.recovery.torn_tail.is_some());
    }
}

#[test]
fn a_batch_is_one_record_all_there_or_not_at_all() {
    let sim = SimStorage::new(5);
    let store = open_sim(&sim).unwrap();
    let batch: Vec<KvWrite> = (0..50)
        .map(|i| write(&format!("k{i:02}"), "1", None))
        .collect();
    store.set(store.ticket(), batch, 1).unwrap();
    drop(store);
    let wal_path = Path::new(ROOT).join(wal::file_name(1));
    let full = records_only(sim.contents(&wal_path).unwrap());
    let scan = wal::scan(&full).unwrap();
    assert_eq!(scan.records.len(), 1);
    // Any cut inside the record loses the whole batch, never part of it.
    for cut in [1, 100, full.len() - scan.records[0].offset as usize - 1] {
        sim.put(&wal_path, &full[..full.len() - cut]);
        let store = open_sim(&sim).unwrap();
        assert!(store.keys(None, 0).unwrap().is_empty(), "cut {cut}");
        drop(store);
    }
    // A refused batch writes nothing: bad key in the middle.
    sim.put(&wal_path, &full);
    let store = open_sim(&sim).unwrap();
    let before = sim.contents(&wal_path).unwrap();
    let mut bad = vec![
        write("x1", "1", None),
        write("", "1", None),
        write("x3", "1", None),
    ];
    let err = store.set(store.ticket(), bad.clone(), 2).unwrap_err();
    assert_eq!(err.code(), 5003);
    assert_eq!(err.details()["index"], 1);
    bad[1] = write("x2", "{not json", None);
    bad[1].value = KvValue::Json("{not json".into());
    assert_eq!(store.set(store.ticket(), bad, 2).unwrap_err().code(), 5004);
    assert_eq!(sim.contents(&wal_path).unwrap(), before);
    assert_eq!(store.keys(Some("x*"), 0).unwrap(), Vec::<String>::new());
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_it_never_an_empty_table() {
    let sim = SimStorage::new(9);
    let store = open_sim(&sim).unwrap();
    store
        .set(store.ticket(), vec![write("a", "1", None)], 1)
        .unwrap();
    store.close(store.ticket()).unwrap();
    let path = Path::new(ROOT).join(snapshot::file_name(1));
    let mut bytes = sim.contents(&path).expect("close wrote a checkpoint");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    sim.put(&path, &bytes);
    let err = open_sim(&sim).unwrap_err();
    assert_eq!(err.code(), 5006, "{err}");
    assert_eq!(err.details()["file"], path.display().to_string());
}

#[test]
fn a_second_opener_gets_in_use_and_a_closed_store_refuses_calls() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(Arc::new(OsStorage), dir.path(), u64::MAX);
    let store = KvStore::open(opts.clone()).unwrap();
    assert_eq!(KvStore::open(opts.clone()).unwrap_err().code(), 5001);
    store.close(store.ticket()).unwrap();
    assert_eq!(store.get(&["a".into()], 0).unwrap_err().code(), 1012);
    let err = store
        .set(store.ticket(), vec![write("a", "1", None)], 0)
        .unwrap_err();
    assert_eq!(err.code(), 1012);
    // Closing again is a no-op; the lock is free.
    store.close(store.ticket()).unwrap();
    KvStore::open(opts).unwrap();
}

#[test]
fn a_vector_collection_directory_is_refused() {
    let fixture = fixtures().join("v1/c");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let err = KvStore::open(options(Arc::new(OsStorage), dir.path(), u64::MAX)).unwrap_err();
    assert_eq!(err.code(), 5008, "{err}");
}

#[test]
fn background_checkpoints_keep_everything_while_writes_go_on() {
    let sim = SimStorage::new(11);
    let store = KvStore::open(options(Arc::new(sim.clone()), Path::new(ROOT), 2048)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let key = format!("t{t}:{i:03}");
                    store
                        .set(store.ticket(), vec![write(&key, "1", None)], i)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.keys(None, 0).unwrap().len(), 800);
    // A power cut stops every thread; the simulated one stops none, so a
    // background checkpoint still running would go on writing (and
    // deleting the WAL files it replaced) on the disk after the crash.
    while store.checkpoint_running() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(store);
    sim.crash();
    let store = open_sim(&sim).unwrap();
    assert_eq!(store.keys(None, 0).unwrap().len(), 800);
    assert!(store.stats(0).unwrap().recovery.snapshot_points > 0);
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// What `examples/write_kv_fixture.rs` wrote: format version 1.
#[test]
fn the_v1_fixture_opens_with_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("kv-v1"), dir.path());
    let store = KvStore::open(options(Arc::new(OsStorage), dir.path(), u64::MAX)).unwrap();
    let t = 1_700_000_000_000_i64;
    let now = t + 2000;
    assert_eq!(
        store.keys(None, now).unwrap(),
        ["after", "big", "blob:é", "session:9", "user:1", "user:3"]
    );
    let stats = store.stats(now).unwrap();
    assert_eq!(stats.recovery.replayed_records, 3);
    assert_eq!(stats.recovery.torn_bytes, 0);
    let get = |k: &str| {
        store.get(&[k.to_string()], now).unwrap()[0]
            .clone()
            .unwrap()
    };
    let user = get("user:1");
    assert_eq!(user.value, KvValue::Json("{\"name\":\"Ada L.\"}".into()));
    assert_eq!(user.metadata, "{\"role\":\"admin\"}");
    assert_eq!((user.created_at, user.updated_at), (t, t + 3));
    assert_eq!(
        get("blob:é").value,
        KvValue::Binary(vec![0, 1, 2, 254, 255])
    );
    assert_eq!(
        get("big").value,
        KvValue::Json(format!("\"{}\"", "annvault ".repeat(10_000)))
    );
    let session = get("session:9");
    assert_eq!(session.expires_at, Some(t + 1_000_000));
    assert_eq!(session.metadata, "{\"ip\":\"10.0.0.1\"}");
    assert_eq!(get("after").value, KvValue::Json("1.5".into()));
    assert!(
        store.get(&["cache:x".into()], t).unwrap()[0].is_none(),
        "swept"
    );
    assert!(
        store.get(&["user:2".into()], now).unwrap()[0].is_none(),
        "deleted"
    );
    // The session expires.
    assert_eq!(
        store.keys(Some("session:*"), t + 1_000_000).unwrap().len(),
        0
    );
}

/// Writes queued while a commit runs go into the next one together: one
/// append and one fsync for all of them, where the same writes one at a
/// time cost one each; a bad write among them is refused alone; every
/// acknowledged one survives a power cut.
#[test]
fn writes_queued_during_a_commit_share_one_append_and_one_fsync() {
    use std::sync::mpsc;
    const N: usize = 100;
    let sim = SimStorage::new(11);
    let store = open_sim(&sim).unwrap();

    // The same writes one at a time: a commit each.
    let before = sim.ops();
    for i in 0..N {
        store
            .set(store.ticket(), vec![write(&format!("s{i}"), "1", None)], 1)
            .unwrap();
    }
    // The first write also reserves log space ahead (one write of zeros
    // that the next hundred small records fit in).
    let serial_ops = sim.ops() - before - 1;

    // Hold the commit thread inside the first write's callback (callbacks
    // run on it), queue the rest meanwhile, then let it go.
    let (entered, in_callback) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    store.set_async(vec![write("first", "0", None)], 2, move |outcome| {
        entered.send(outcome).unwrap();
        released.recv().unwrap();
    });
    in_callback.recv().unwrap().unwrap();
    let before = sim.ops();
    let (done, outcomes) = mpsc::channel();
    for i in 0..N {
        let sender = done.clone();
        store.set_async(
            vec![write(&format!("k{i:03}"), &i.to_string(), None)],
            2,
            move |outcome| sender.send((i, outcome)).unwrap(),
        );
        if i == N / 2 {
            let done = done.clone();
            let bad = KvWrite {
                metadata: "[]".into(),
                ..write("bad", "1", None)
            };
            store.set_async(vec![bad], 2, move |outcome| {
                done.send((usize::MAX, outcome)).unwrap()
            });
        }
    }
    release.send(()).unwrap();
    let mut refused = 0;
    for _ in 0..=N {
        let (i, outcome) = outcomes.recv().unwrap();
        if i == usize::MAX {
            assert_eq!(outcome.unwrap_err().code(), 5004);
            refused += 1;
        } else {
            outcome.unwrap_or_else(|e| panic!("write {i}: {e}"));
        }
    }
    assert_eq!(refused, 1);
    let grouped_ops = sim.ops() - before;
    assert!(grouped_ops > 0);
    assert_eq!(
        serial_ops,
        N as u64 * grouped_ops,
        "{N} writes one at a time took {serial_ops} I/O operations, queued together {grouped_ops}"
    );

    drop(store);
    sim.crash();
    let store = open_sim(&sim).unwrap();
    let keys = store.keys(Some("k*"), 3).unwrap();
    assert_eq!(keys.len(), N);
    assert!(store.get(&["bad".into()], 3).unwrap()[0].is_none());
    assert!(store.get(&["first".into()], 3).unwrap()[0].is_some());
    store.close(store.ticket()).unwrap();
}

/// `backup_to` while four threads write: the copy holds, for every writer,
/// a prefix of its writes (each writer's keys are written in order), with
/// the times as they were, and opens as an ordinary table.
#[test]
fn backup_to_copies_a_prefix_of_concurrent_writes_with_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = KvStore::open(options(
        Arc::new(OsStorage),
        &dir.path().join("live"),
        u64::MAX,
    ))
    .unwrap();
    store
        .set(
            store.ticket(),
            vec![write("before", "0", Some(9_000_000))],
            5,
        )
        .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..300_i64 {
                    let key = format!("t{t}:{i:03}");
                    store
                        .set(store.ticket(), vec![write(&key, "1", None)], 100 + i)
                        .unwrap();
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let dest = dir.path().join("copy");
    let copied = store.backup_to(&dest).unwrap();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(store.backup_to(&dest).unwrap_err().code(), 1008);
    let copy = KvStore::open(options(Arc::new(OsStorage), &dest, u64::MAX)).unwrap();
    let keys = copy.keys(None, 0).unwrap();
    assert_eq!(keys.len(), copied);
    for t in 0..4 {
        let mine: Vec<_> = keys
            .iter()
            .filter(|k| k.starts_with(&format!("t{t}:")))
            .cloned()
            .collect();
        let expected: Vec<_> = (0..mine.len()).map(|i| format!("t{t}:{i:03}")).collect();
        assert_eq!(mine, expected, "writer {t} is not a prefix");
    }
    let before = copy.get(&["before".into()], 6).unwrap()[0].clone().unwrap();
    assert_eq!(
        (before.created_at, before.updated_at, before.expires_at),
        (5, 5, Some(9_000_000))
    );
    // The copy is a table of its own: writing to it leaves the live one alone.
    copy.set(copy.ticket(), vec![write("only-in-copy", "1", None)], 1)
        .unwrap();
    assert!(store.get(&["only-in-copy".into()], 1).unwrap()[0].is_none());
    assert_eq!(store.keys(None, 0).unwrap().len(), 1201);
}

/// On the real disk, small records are written into space reserved ahead of
/// them (zeros), so that their fsync changes no file metadata. A store
/// dropped without a checkpoint (as a killed process leaves it) reopens
/// with every record, reports no torn tail, and appends after the last
/// record; a checkpoint leaves the sealed log exactly its records.
#[test]
fn reserved_log_space_is_neither_lost_data_nor_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || options(Arc::new(OsStorage), dir.path(), u64::MAX);
    let wal_path = dir.path().join(wal::file_name(1));
    let store = KvStore::open(opts()).unwrap();
    for i in 0..20 {
        store
            .set(
                store.ticket(),
                vec![write(&format!("k{i:02}"), "1", None)],
                1,
            )
            .unwrap();
    }
    drop(store);
    let bytes = std::fs::read(&wal_path).unwrap();
    let scan = wal::scan(&bytes).unwrap();
    assert_eq!(scan.records.len(), 20);
    assert_eq!(scan.end, wal::End::Clean);
    assert!(
        bytes.len() as u64 > scan.valid_len + 60_000,
        "{} bytes, records end at {}",
        bytes.len(),
        scan.valid_len
    );

    let store = KvStore::open(opts()).unwrap();
    let stats = store.stats(1).unwrap();
    assert_eq!(stats.total_entries, 20);
    assert_eq!(stats.recovery.torn_bytes, 0);
    assert!(stats.recovery.torn_tail.is_none());
    store
        .set(store.ticket(), vec![write("after", "2", None)], 2)
        .unwrap();
    drop(store);
    let bytes = std::fs::read(&wal_path).unwrap();
    let scan = wal::scan(&bytes).unwrap();
    assert_eq!(scan.records.len(), 21, "the next record follows the last");

    let store = KvStore::open(opts()).unwrap();
    assert_eq!(store.keys(None, 2).unwrap().len(), 21);
    store.checkpoint(store.ticket()).unwrap();
    store
        .set(store.ticket(), vec![write("later", "3", None)], 3)
        .unwrap();
    drop(store);
    let store = KvStore::open(opts()).unwrap();
    assert_eq!(store.keys(None, 3).unwrap().len(), 22);
    for name in std::fs::read_dir(dir.path()).unwrap() {
        let name = name.unwrap().file_name().into_string().unwrap();
        if wal::parse_file_name(&name).is_some() {
            let bytes = std::fs::read(dir.path().join(&name)).unwrap();
            let scan = wal::scan(&bytes).unwrap();
            assert_eq!(scan.end, wal::End::Clean, "{name}");
        }
    }
}
