//! One ticket's work (full ticket, changes, replies, notes) on sqlite.

use super::*;
use crate::storage::WorkStore;

impl WorkStore for SqliteStore {}
