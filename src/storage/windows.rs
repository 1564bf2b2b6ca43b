//! The hourly autoresponse cap's windows, per address, in memory.
//!
//! The SQLite backend has exactly one writer, so the writer thread can
//! keep the windows itself and be exact while it runs; at start they are
//! rebuilt from the outbox's autoresponses of the last hour. Keeping the
//! counter on the user's row instead dirtied one random `users` page per
//! ticket, which was the largest cost of notifications. (PostgreSQL, with
//! several instances, keeps the counter in the row.)
//!
//! Windows are hour-long and per address: one opens at the first
//! autoresponse after the previous one closed. A write transaction may be
//! rolled back, so every change is undoable until [`Windows::commit`].

use std::collections::HashMap;

/// Length of a window, in seconds.
pub const WINDOW_SECS: i64 = 3600;

/// Prune closed windows once the map holds this many addresses.
const PRUNE_AT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: i64,
    count: i64,
}

/// Autoresponse windows keyed by lower-cased address.
#[derive(Debug, Default)]
pub struct Windows {
    map: HashMap<String, Window>,
    undo: Vec<(String, Option<Window>)>,
    pruned_at: i64,
}

impl Windows {
    /// Counts one autoresponse to `address` at `now`; returns how many
    /// the address has had in its current window, this one included.
    pub fn record(&mut self, address: &str, now: i64) -> i64 {
        let key = address.to_ascii_lowercase();
        let old = self.map.get(&key).copied();
        let new = match old {
            Some(w) if w.start > now - WINDOW_SECS => Window {
                start: w.start,
                count: w.count + 1,
            },
            _ => Window {
                start: now,
                count: 1,
            },
        };
        self.map.insert(key.clone(), new);
        self.undo.push((key, old));
        new.count
    }

    /// Undoes every [`Self::record`] since the last commit.
    pub fn rollback(&mut self) {
        while let Some((key, old)) = self.undo.pop() {
            match old {
                Some(w) => self.map.insert(key, w),
                None => self.map.remove(&key),
            };
        }
    }

    /// Keeps what was recorded; now and then forgets closed windows.
    pub fn commit(&mut self, now: i64) {
        self.undo.clear();
        if self.map.len() >= PRUNE_AT && now - self.pruned_at >= 60 {
            self.map.retain(|_, w| w.start > now - WINDOW_SECS);
            self.pruned_at = now;
        }
    }

    /// Addresses with a window, open or not yet pruned.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_an_hour_and_reopens_after() {
        let mut w = Windows::default();
        assert_eq!(w.record("A@x.org", 1000), 1);
        assert_eq!(w.record("a@X.org", 1000 + 3599), 2);
        // The window opened at 1000 has closed: a new one opens.
        assert_eq!(w.record("a@x.org", 1000 + 3600), 1);
        assert_eq!(w.record("b@x.org", 5000), 1);
    }

    #[test]
    fn rollback_restores_the_committed_state() {
        let mut w = Windows::default();
        w.record("a@x.org", 10);
        w.commit(10);
        w.record("a@x.org", 11);
        w.record("b@x.org", 11);
        w.rollback();
        assert_eq!(w.len(), 1);
        assert_eq!(w.record("a@x.org", 12), 2);
    }

    #[test]
    fn commit_prunes_closed_windows_only() {
        let mut w = Windows::default();
        for i in 0..PRUNE_AT {
            w.record(&format!("old{i}@x.org"), 0);
        }
        w.record("fresh@x.org", 5000);
        w.commit(5000);
        assert_eq!(w.len(), 1);
        assert_eq!(w.record("fresh@x.org", 5001), 2);
    }
}
