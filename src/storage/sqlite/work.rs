//! One ticket's work (changes, replies, notes, files) on SQLite: writes
//! run in the writer's group transaction, reads on the reader pool.

use super::*;
use crate::domain::staff::{Agent, AgentId};
use crate::domain::views::TicketHead;
use crate::domain::work::{StaffEntry, TicketChange};
use crate::storage::{AddedEntry, StoredFile, WorkStore};

impl WorkStore for SqliteStore {
    fn change_ticket(&self, change: TicketChange) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, w| {
            run_ready(common::change_ticket(&mut SqliteRows(conn), &change))?;
            if change.scope_changed {
                // The index knows who may see the ticket.
                super::search::index_entry(conn, &mut w.search, change.ticket_id)?;
            }
            Ok(())
        })
    }

    fn add_staff_entry(&self, e: StaffEntry) -> BoxFuture<'_, Result<AddedEntry, StoreError>> {
        self.write(move |conn, w| {
            let (user_id, user_email): (i64, String) = conn
                .prepare_cached(
                    "SELECT t.user_id, u.email FROM tickets t JOIN users u ON u.id = t.user_id
                     WHERE t.id = ?1",
                )?
                .query_row([e.ticket_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or(StoreError::NotFound)?;
            let mail = record_mail(conn, w, e.ticket_id, user_id, &user_email, &e.mail, e.now)?;
            let (id, files) = insert_entry(conn, e.ticket_id, &e.entry, &format_time(e.now), mail)?;
            super::search::index_entry(conn, &mut w.search, e.ticket_id)?;
            let version = run_ready(common::entry_added(
                &mut SqliteRows(conn),
                e.ticket_id,
                &e.entry,
                e.status.as_ref(),
                e.now,
            ))?;
            Ok(AddedEntry { id, files, version })
        })
    }

    fn ticket_head(
        &self,
        number: TicketNumber,
    ) -> BoxFuture<'_, Result<Option<TicketHead>, StoreError>> {
        self.read_point(move |conn| run_ready(common::ticket_head(&mut SqliteRows(conn), &number)))
    }

    fn agent_name(&self, id: AgentId) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        self.read_point(move |conn| run_ready(common::agent_name(&mut SqliteRows(conn), id)))
    }

    fn agent_for_mail(&self, email: String) -> BoxFuture<'_, Result<Option<Agent>, StoreError>> {
        self.read_point(move |conn| {
            run_ready(common::agent_for_mail(&mut SqliteRows(conn), &email))
        })
    }

    fn attachment(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredFile>, StoreError>> {
        self.read(move |conn| run_ready(common::attachment(&mut SqliteRows(conn), id)))
    }
}
