//! The hourly autoresponse cap's windows, per user (one user per
//! address, case-insensitively), in memory.
//!
//! The SQLite backend has exactly one writer per process, so the writer
//! thread can keep the windows itself; at start, and at a group after
//! another process (`oxidesk pipe`, a CLI command) wrote, they are
//! rebuilt from the autoresponses the thread's entries queued in the
//! last hour (`writer::follow_other_writers`; a rebuild replays only
//! that hour, so a window may realign by one mail). Keeping the
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

/// Autoresponse windows keyed by user id.
#[derive(Debug, Default)]
pub struct Windows {
    map: HashMap<i64, Window>,
    undo: Vec<(i64, Option<Window>)>,
    pruned_at: i64,
}

impl Windows {
    /// Counts one autoresponse to user `user` at `now`; returns how many
    /// the user has had in its current window, this one included.
    pub fn record(&mut self, user: i64, now: i64) -> i64 {
        let old = self.map.get(&user).copied();
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
        self.map.insert(user, new);
        self.undo.push((user, old));
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
        assert_eq!(w.record(1, 1000), 1);
        assert_eq!(w.record(1, 1000 + 3599), 2);
        // The window opened at 1000 has closed: a new one opens.
        assert_eq!(w.record(1, 1000 + 3600), 1);
        assert_eq!(w.record(2, 5000), 1);
    }

    #[test]
    fn rollback_restores_the_committed_state() {
        let mut w = Windows::default();
        w.record(1, 10);
        w.commit(10);
        w.record(1, 11);
        w.record(2, 11);
        w.rollback();
        assert_eq!(w.len(), 1);
        assert_eq!(w.record(1, 12), 2);
    }

    #[test]
    fn commit_prunes_closed_windows_only() {
        let mut w = Windows::default();
        for i in 0..PRUNE_AT {
            w.record(i as i64 + 100, 0);
        }
        w.record(1, 5000);
        w.commit(5000);
        assert_eq!(w.len(), 1);
        assert_eq!(w.record(1, 5001), 2);
    }
}
