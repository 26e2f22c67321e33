//! The revision history: every change the store made, in revision order, as the historian (a
//! watch on every key from revision 1, resumed across failures) received it.
//!
//! It is the reference the other checkers compare against: what a key held at any revision,
//! which revision applied a given unique value, which events a watcher of a range had to see.
//! Before it is trusted it is checked on its own terms ([`Revisions::integrity`]): revisions
//! without gaps, each key's versions and create revisions consistent, and every event's prev_kv
//! equal to what the history says the key held just before.

use std::collections::{BTreeMap, HashMap};

use crate::history::{in_range, Event, Kv};

pub struct Revisions<'a> {
    events: &'a [Event],
    /// Per key, every change in revision order: (revision, the key's kv after it; None: deleted).
    per_key: HashMap<&'a str, Vec<(i64, Option<&'a Kv>)>>,
    /// Unique value -> (revision, key) of the put that wrote it.
    puts: HashMap<&'a str, (i64, &'a str)>,
    by_rev: BTreeMap<i64, Vec<usize>>,
    pub first: i64,
    pub last: i64,
}

impl<'a> Revisions<'a> {
    pub fn new(events: &'a [Event]) -> Self {
        let mut per_key: HashMap<&str, Vec<(i64, Option<&Kv>)>> = HashMap::new();
        let mut puts = HashMap::new();
        let mut by_rev: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            let rev = e.kv.mod_revision;
            by_rev.entry(rev).or_default().push(i);
            per_key
                .entry(e.kv.key.as_str())
                .or_default()
                .push((rev, (!e.delete).then_some(&e.kv)));
            if !e.delete {
                puts.entry(e.kv.value.as_str())
                    .or_insert((rev, e.kv.key.as_str()));
            }
        }
        for changes in per_key.values_mut() {
            changes.sort_by_key(|(r, _)| *r);
        }
        let first = by_rev.keys().next().copied().unwrap_or(0);
        let last = by_rev.keys().next_back().copied().unwrap_or(0);
        Self {
            events,
            per_key,
            puts,
            by_rev,
            first,
            last,
        }
    }

    pub fn events(&self) -> &'a [Event] {
        self.events
    }

    /// What `key` held at revision `rev` (after every change at or below it).
    pub fn state_at(&self, key: &str, rev: i64) -> Option<&'a Kv> {
        let changes = self.per_key.get(key)?;
        let idx = changes.partition_point(|(r, _)| *r <= rev);
        if idx == 0 {
            return None;
        }
        changes[idx - 1].1
    }

    /// The revision and key of the put that wrote `value`.
    pub fn put_of(&self, value: &str) -> Option<(i64, &'a str)> {
        self.puts.get(value).copied()
    }

    /// The changes of one key, in revision order.
    pub fn changes(&self, key: &str) -> &[(i64, Option<&'a Kv>)] {
        self.per_key.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Events at one revision.
    pub fn at(&self, rev: i64) -> impl Iterator<Item = &'a Event> + '_ {
        self.by_rev
            .get(&rev)
            .into_iter()
            .flatten()
            .map(|i| &self.events[*i])
    }

    /// Events on keys in [start, end) (etcd range rules) with revisions in [from, to].
    pub fn range(&self, start: &str, end: &str, from: i64, to: i64) -> Vec<&'a Event> {
        if from > to {
            return Vec::new();
        }
        self.by_rev
            .range(from..=to)
            .flat_map(|(_, idx)| idx.iter().map(|i| &self.events[*i]))
            .filter(|e| in_range(&e.kv.key, start, end))
            .collect()
    }

    /// Every key under `prefix` and its kv at revision `rev`.
    pub fn snapshot(&self, prefix: &str, rev: i64) -> BTreeMap<&'a str, &'a Kv> {
        self.per_key
            .keys()
            .filter(|k| k.starts_with(prefix))
            .filter_map(|k| self.state_at(k, rev).map(|kv| (*k, kv)))
            .collect()
    }

    /// Problems with the history itself, given that it should hold every change from
    /// revision `from` on (the historian's start; 1 on a new cluster). Values under `unique`
    /// (the run's prefix, where every write carries a new value) must be written once.
    pub fn integrity(&self, from: i64, unique: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut written: HashMap<&str, i64> = HashMap::new();
        for e in self
            .events
            .iter()
            .filter(|e| !e.delete && e.kv.key.starts_with(unique))
        {
            if let Some(r) = written.insert(e.kv.value.as_str(), e.kv.mod_revision) {
                out.push(format!(
                    "value {:?} was written at revision {r} and again at {} (a request applied twice)",
                    e.kv.value, e.kv.mod_revision
                ));
            }
        }
        // A new cluster starts at revision 1 with no keys; every write adds one revision with
        // at least one event, so from the first write on there is no revision without events.
        let expect_first = from.max(2);
        if !self.events.is_empty() && self.first != expect_first {
            out.push(format!(
                "the first change is at revision {} (expected {expect_first})",
                self.first
            ));
        }
        let mut prev = None;
        for rev in self.by_rev.keys() {
            if let Some(p) = prev {
                if *rev != p + 1 {
                    out.push(format!(
                        "revisions {}..{} have no events (a gap in the history)",
                        p + 1,
                        rev - 1
                    ));
                }
            }
            prev = Some(*rev);
        }
        let mut seen: HashMap<(&str, i64), usize> = HashMap::new();
        for e in self.events {
            *seen
                .entry((e.kv.key.as_str(), e.kv.mod_revision))
                .or_default() += 1;
        }
        for ((k, r), n) in &seen {
            if *n > 1 {
                out.push(format!("{k} changed {n} times at revision {r}"));
            }
        }
        for (key, changes) in &self.per_key {
            let mut state: Option<&Kv> = None;
            for (i, (rev, after)) in changes.iter().enumerate() {
                let event = self.events_of(key, *rev);
                if let Some(e) = event {
                    if e.prev.is_some() && e.prev.as_ref() != state {
                        out.push(format!(
                            "{key} at revision {rev}: prev_kv {:?} but the history holds {:?}",
                            e.prev.as_ref().map(|p| &p.value),
                            state.map(|s| &s.value)
                        ));
                    }
                }
                match (state, after) {
                    (None, Some(kv))
                        if kv.version != 1 || kv.create_revision != kv.mod_revision =>
                    {
                        out.push(format!(
                            "{key} created at revision {rev} with version {} and create_revision {}",
                            kv.version, kv.create_revision
                        ));
                    }
                    (Some(old), Some(kv))
                        if kv.version != old.version + 1
                            || kv.create_revision != old.create_revision =>
                    {
                        out.push(format!(
                            "{key} updated at revision {rev} to version {} create_revision {} after version {} create_revision {}",
                            kv.version, kv.create_revision, old.version, old.create_revision
                        ));
                    }
                    (None, None) if i > 0 || from <= 1 => {
                        out.push(format!("{key} deleted at revision {rev} while absent"));
                    }
                    _ => {}
                }
                state = *after;
            }
        }
        out.sort();
        out
    }

    fn events_of(&self, key: &str, rev: i64) -> Option<&'a Event> {
        self.at(rev).find(|e| e.kv.key == key)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn put(key: &str, value: &str, rev: i64, create: i64, version: i64) -> Event {
        Event {
            delete: false,
            kv: Kv {
                key: key.into(),
                value: value.into(),
                create_revision: create,
                mod_revision: rev,
                version,
                lease: 0,
            },
            prev: None,
        }
    }

    pub fn del(key: &str, rev: i64) -> Event {
        Event {
            delete: true,
            kv: Kv {
                key: key.into(),
                value: String::new(),
                create_revision: 0,
                mod_revision: rev,
                version: 0,
                lease: 0,
            },
            prev: None,
        }
    }

    #[test]
    fn states_and_ranges() {
        let h = vec![
            put("a", "1", 2, 2, 1),
            put("b", "2", 3, 3, 1),
            put("a", "3", 4, 2, 2),
            del("a", 5),
        ];
        let r = Revisions::new(&h);
        assert_eq!(r.state_at("a", 1), None);
        assert_eq!(r.state_at("a", 3).map(|k| k.value.as_str()), Some("1"));
        assert_eq!(r.state_at("a", 4).map(|k| k.value.as_str()), Some("3"));
        assert_eq!(r.state_at("a", 9), None);
        assert_eq!(r.put_of("3"), Some((4, "a")));
        assert_eq!(r.range("a", "", 2, 5).len(), 3);
        assert_eq!(r.range("a", "c", 3, 4).len(), 2);
        assert_eq!(r.snapshot("", 4).len(), 2);
        assert!(r.integrity(1, "").is_empty(), "{:?}", r.integrity(1, ""));
    }

    #[test]
    fn integrity_finds_gaps_and_bad_versions() {
        let h = vec![put("a", "1", 2, 2, 1), put("a", "2", 4, 2, 3)];
        let problems = Revisions::new(&h).integrity(1, "");
        assert!(problems.iter().any(|p| p.contains("gap")), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("version 3")),
            "{problems:?}"
        );
        let mut bad_prev = vec![put("a", "1", 2, 2, 1), put("a", "2", 3, 2, 2)];
        bad_prev[1].prev = Some(put("a", "0", 1, 1, 1).kv);
        let problems = Revisions::new(&bad_prev).integrity(1, "");
        assert!(
            problems.iter().any(|p| p.contains("prev_kv")),
            "{problems:?}"
        );
        let twice = vec![put("a", "1", 2, 2, 1), put("b", "1", 3, 3, 1)];
        let problems = Revisions::new(&twice).integrity(1, "");
        assert!(problems.iter().any(|p| p.contains("twice")), "{problems:?}");
    }
}
