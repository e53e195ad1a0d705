//! Which points match the filters that searches use again and again.
//!
//! Evaluating a filter means reading a point's payload (a JSON map lookup
//! and a comparison), and a filtered search evaluates it many times: for
//! every point of an exact scan, or for every point a graph walk visits.
//! RAG and agent-memory workloads repeat the same few filters (a user, a
//! source, a tag), so a collection keeps, for the last [`MAX_FILTERS`]
//! filters seen at least twice, the set of slots that match as a bitmap.
//! Every write updates the bitmaps of the point it touches (a filter
//! evaluation per cached filter), so they are always exact; a search then
//! tests a bit instead of a payload, counts the matches instead of
//! estimating them, and scans only the matching slots when they are few.
//! A filter seen only once costs nothing more than before: one-off filters
//! never pay for a bitmap.

use std::sync::{Arc, Mutex, PoisonError};

use crate::filter::Filter;

/// Filters with a bitmap, at most; the least recently used goes first.
pub const MAX_FILTERS: usize = 16;
/// Filters remembered as seen once (candidates for a bitmap).
const MAX_SEEN: usize = 64;

/// The slots matching one filter.
#[derive(Debug, Clone, Default)]
pub struct Matches {
    words: Vec<u64>,
    count: usize,
}

impl Matches {
    /// Whether `slot` matches.
    #[inline]
    pub fn contains(&self, slot: u32) -> bool {
        let slot = slot as usize;
        self.words
            .get(slot / 64)
            .is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// How many slots match.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The matching slots, ascending.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some((i * 64) as u32 + bit)
            })
        })
    }

    fn set(&mut self, slot: u32, matches: bool) {
        let slot = slot as usize;
        let (index, bit) = (slot / 64, 1u64 << (slot % 64));
        if index >= self.words.len() {
            if !matches {
                return;
            }
            self.words.resize(index + 1, 0);
        }
        let word = &mut self.words[index];
        if (*word & bit != 0) != matches {
            *word ^= bit;
            if matches {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }
}

struct Entry {
    filter: Filter,
    matches: Arc<Matches>,
}

#[derive(Default)]
struct Inner {
    /// Most recently used last.
    entries: Vec<Entry>,
    /// Filters seen once, oldest first.
    seen: Vec<Filter>,
}

/// The bitmaps of a collection's recent filters. A copy of the collection
/// (a checkpoint's) starts without any: they are rebuilt on use.
#[derive(Default)]
pub struct MatchCache {
    inner: Mutex<Inner>,
}

impl Clone for MatchCache {
    fn clone(&self) -> Self {
        MatchCache::default()
    }
}

impl std::fmt::Debug for MatchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let filters = self
            .inner
            .lock()
            .map(|inner| inner.entries.len())
            .unwrap_or_default();
        f.debug_struct("MatchCache")
            .field("filters", &filters)
            .finish()
    }
}

impl MatchCache {
    /// The bitmap of `filter`, if it has one; built now (by `build`, which
    /// returns the matching slots) if the filter was seen before. `None`
    /// for the empty filter and for a filter seen for the first time.
    pub fn get_or_build(
        &self,
        filter: &Filter,
        build: impl FnOnce() -> Vec<u32>,
    ) -> Option<Arc<Matches>> {
        if filter.is_empty() {
            return None;
        }
        {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = inner.entries.iter().position(|e| &e.filter == filter) {
                let entry = inner.entries.remove(at);
                let matches = Arc::clone(&entry.matches);
                inner.entries.push(entry);
                return Some(matches);
            }
            match inner.seen.iter().position(|f| f == filter) {
                Some(at) => {
                    inner.seen.remove(at);
                }
                None => {
                    if inner.seen.len() >= MAX_SEEN {
                        inner.seen.remove(0);
                    }
                    inner.seen.push(filter.clone());
                    return None;
                }
            }
        }
        // Built outside the lock: other searches go on meanwhile. The caller
        // holds the collection shared, so no write can slip in between.
        let mut matches = Matches::default();
        for slot in build() {
            matches.set(slot, true);
        }
        let matches = Arc::new(matches);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if !inner.entries.iter().any(|e| &e.filter == filter) {
            if inner.entries.len() >= MAX_FILTERS {
                inner.entries.remove(0);
            }
            inner.entries.push(Entry {
                filter: filter.clone(),
                matches: Arc::clone(&matches),
            });
        }
        Some(matches)
    }

    /// Records what `slot` holds now: `matches(filter)` for each cached
    /// filter, or nothing (`None`: the slot was emptied).
    pub fn update(&mut self, slot: u32, matches: Option<&dyn Fn(&Filter) -> bool>) {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        for entry in &mut inner.entries {
            let now = matches.is_some_and(|m| m(&entry.filter));
            Arc::make_mut(&mut entry.matches).set(slot, now);
        }
    }

    /// Forgets every bitmap (the collection was emptied or replaced).
    pub fn clear(&mut self) {
        *self.inner.get_mut().unwrap_or_else(PoisonError::into_inner) = Inner::default();
    }

    /// How many filters have a bitmap.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|inner| inner.entries.len())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> Filter {
        Filter::parse(text).unwrap()
    }

    #[test]
    fn a_bitmap_counts_and_lists_its_slots() {
        let mut m = Matches::default();
        for slot in [3, 64, 65, 200, 3] {
            m.set(slot, true);
        }
        m.set(1000, false);
        assert_eq!(m.count(), 4);
        assert_eq!(m.slots().collect::<Vec<_>>(), [3, 64, 65, 200]);
        m.set(64, false);
        m.set(64, false);
        assert_eq!(m.count(), 3);
        assert!(m.contains(200) && !m.contains(64) && !m.contains(5000));
    }

    #[test]
    fn a_filter_gets_a_bitmap_on_its_second_use_and_writes_keep_it_exact() {
        let mut cache = MatchCache::default();
        let red = filter(r#"{"colour":"red"}"#);
        assert!(cache.get_or_build(&red, || unreachable!()).is_none());
        assert!(cache
            .get_or_build(&Filter::default(), || unreachable!())
            .is_none());
        let built = cache.get_or_build(&red, || vec![1, 4]).unwrap();
        assert_eq!(built.slots().collect::<Vec<_>>(), [1, 4]);
        cache.update(7, Some(&|f: &Filter| f == &red));
        cache.update(1, None);
        cache.update(4, Some(&|_: &Filter| false));
        let now = cache.get_or_build(&red, || unreachable!()).unwrap();
        assert_eq!(now.slots().collect::<Vec<_>>(), [7]);
        // The bitmap handed out before the writes is unchanged.
        assert_eq!(built.slots().collect::<Vec<_>>(), [1, 4]);
        assert!(cache.clone().is_empty());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn the_least_recently_used_bitmap_goes_first() {
        let cache = MatchCache::default();
        let filters: Vec<Filter> = (0..=MAX_FILTERS)
            .map(|i| filter(&format!(r#"{{"n":{i}}}"#)))
            .collect();
        for f in &filters[..MAX_FILTERS] {
            cache.get_or_build(f, Vec::new);
            cache.get_or_build(f, Vec::new);
        }
        cache.get_or_build(&filters[0], || unreachable!());
        cache.get_or_build(&filters[MAX_FILTERS], Vec::new);
        cache.get_or_build(&filters[MAX_FILTERS], Vec::new);
        assert_eq!(cache.len(), MAX_FILTERS);
        assert!(cache.get_or_build(&filters[0], || unreachable!()).is_some());
        // filters[1] was evicted: seen again, it counts as seen once.
        assert!(cache.get_or_build(&filters[1], Vec::new).is_none());
    }
}
