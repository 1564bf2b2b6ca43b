//! One ticket's work (full ticket, changes, replies, notes) on postgres.

use super::*;
use crate::storage::WorkStore;

impl WorkStore for PgStore {}
