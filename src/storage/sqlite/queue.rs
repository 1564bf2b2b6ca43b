//! The queue and full-text search on sqlite.

use super::*;
use crate::storage::QueueStore;

impl QueueStore for SqliteStore {}
