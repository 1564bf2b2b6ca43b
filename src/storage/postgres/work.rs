//! One ticket's work (changes, replies, notes, files) on PostgreSQL: each
//! write one transaction; a change's version check is its UPDATE's
//! condition, so of two changes made on one version exactly one lands.

use super::*;
use crate::domain::staff::{Agent, AgentId};
use crate::domain::views::TicketHead;
use crate::domain::work::{StaffEntry, TicketChange};
use crate::storage::{AddedEntry, StoredFile, WorkStore};

impl WorkStore for PgStore {
    fn change_ticket(&self, change: TicketChange) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            common::change_ticket(&mut PgRows(&mut tx), &change).await?;
            if change.scope_changed {
                // The index knows who may see the ticket.
                let f = &change.fields;
                super::search::index_scope(
                    &mut tx,
                    change.ticket_id,
                    f.department.as_ref().map(|d| d.id),
                    f.assignee.as_ref().map(|a| AgentId(a.id)),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn add_staff_entry(&self, e: StaffEntry) -> BoxFuture<'_, Result<AddedEntry, StoreError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let (id, files) =
                insert_entry(&mut tx, e.ticket_id, &e.entry, &format_time(e.now)).await?;
            super::search::index_new_entry(&mut tx, e.ticket_id, &e.entry).await?;
            insert_reply_mail(
                &mut tx,
                &self.message_domain,
                e.ticket_id,
                id,
                &e.mail,
                e.now.as_second(),
            )
            .await?;
            let version = common::entry_added(
                &mut PgRows(&mut tx),
                e.ticket_id,
                &e.entry,
                e.status.as_ref(),
                e.now,
            )
            .await?;
            tx.commit().await?;
            Ok(AddedEntry { id, files, version })
        })
    }

    fn ticket_head(
        &self,
        number: TicketNumber,
    ) -> BoxFuture<'_, Result<Option<TicketHead>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::ticket_head(&mut PgRows(&mut conn), &number).await
        })
    }

    fn agent_name(&self, id: AgentId) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::agent_name(&mut PgRows(&mut conn), id).await
        })
    }

    fn agent_for_mail(&self, email: String) -> BoxFuture<'_, Result<Option<Agent>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::agent_for_mail(&mut PgRows(&mut conn), &email).await
        })
    }

    fn attachment(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredFile>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::attachment(&mut PgRows(&mut conn), id).await
        })
    }
}
