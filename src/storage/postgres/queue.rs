//! The queue and full-text search on postgres.

use super::*;
use crate::storage::QueueStore;

impl QueueStore for PgStore {}
