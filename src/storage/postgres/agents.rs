//! Agents, departments and tokens on postgres: each operation is one
//! statement (departments read as an array beside their agent; the
//! sessions a change ends deleted in the same statement).

use super::*;
use crate::domain::agents::TokenKind;
use crate::domain::staff::{Agent, AgentId};
use crate::storage::{AgentCredentials, AgentStore, NewAgent, NewAgentToken, SLIDE_EVERY_SECS};

/// An agent's columns, departments included, in the order
/// [`agent_from_row`] reads them.
macro_rules! agent_columns {
    () => {
        "a.id, a.email, a.name, a.is_admin, a.is_active,
         ARRAY(SELECT d.dept_id FROM agent_departments d WHERE d.agent_id = a.id ORDER BY d.dept_id)"
    };
}

/// Columns read after [`agent_columns`].
const AFTER_AGENT: usize = 6;

fn agent_from_row(r: &PgRow) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: AgentId(r.try_get(0)?),
        email: r.try_get(1)?,
        name: r.try_get(2)?,
        admin: r.try_get(3)?,
        active: r.try_get(4)?,
        departments: r.try_get(5)?,
    })
}

impl AgentStore for PgStore {
    fn agent_by_token(
        &self,
        hash: [u8; 32],
        now: i64,
    ) -> BoxFuture<'_, Result<Option<Agent>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                ", t.expires_at, coalesce(t.last_used, t.created)
                 FROM agent_tokens t JOIN agents a ON a.id = t.agent_id
                 WHERE t.hash = $1"
            ))
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let agent = agent_from_row(&row)?;
            let expires_at: Option<i64> = row.try_get(AFTER_AGENT)?;
            let last_used: i64 = row.try_get(AFTER_AGENT + 1)?;
            if !agent.active || expires_at.is_some_and(|e| e <= now) {
                return Ok(None);
            }
            if now - last_used > SLIDE_EVERY_SECS {
                // The guard makes concurrent requests (of any instance)
                // slide it once.
                sqlx::query(
                    "UPDATE agent_tokens
                     SET expires_at = $2 + (expires_at - coalesce(last_used, created)),
                         last_used = $2
                     WHERE hash = $1 AND coalesce(last_used, created) < $2 - $3",
                )
                .bind(&hash[..])
                .bind(now)
                .bind(SLIDE_EVERY_SECS)
                .execute(&self.pool)
                .await?;
            }
            Ok(Some(agent))
        })
    }

    fn add_agent(&self, agent: NewAgent) -> BoxFuture<'_, Result<AgentId, StoreError>> {
        Box::pin(async move {
            let id: i64 = sqlx::query_scalar(
                "WITH a AS (
                     INSERT INTO agents (email, name, password_hash, is_admin, is_active, created)
                     VALUES ($1, $2, $3, $4, true, $5) RETURNING id
                 ), d AS (
                     INSERT INTO agent_departments (agent_id, dept_id)
                     SELECT a.id, dept FROM a, unnest($6::bigint[]) AS dept
                 )
                 SELECT id FROM a",
            )
            .bind(&agent.email)
            .bind(&agent.name)
            .bind(&agent.password_hash)
            .bind(agent.admin)
            .bind(&agent.created)
            .bind(&agent.departments)
            .fetch_one(&self.pool)
            .await?;
            Ok(AgentId(id))
        })
    }

    fn list_agents(&self) -> BoxFuture<'_, Result<Vec<Agent>, StoreError>> {
        Box::pin(async move {
            // Departments by one join and grouping, not a subquery per
            // agent (the ticket page lists every agent: 0.2 ms of
            // PostgreSQL's time a page with 36 agents, now a tenth).
            let rows = sqlx::query(
                "SELECT a.id, a.email, a.name, a.is_admin, a.is_active,
                        coalesce(array_agg(d.dept_id ORDER BY d.dept_id)
                                 FILTER (WHERE d.dept_id IS NOT NULL), '{}')
                 FROM agents a LEFT JOIN agent_departments d ON d.agent_id = a.id
                 GROUP BY a.id ORDER BY a.id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(agent_from_row).collect()
        })
    }

    fn find_agent(&self, id: AgentId) -> BoxFuture<'_, Result<Option<Agent>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents a WHERE a.id = $1"
            ))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(agent_from_row).transpose()
        })
    }

    fn agent_credentials(
        &self,
        email: String,
    ) -> BoxFuture<'_, Result<Option<AgentCredentials>, StoreError>> {
        Box::pin(async move {
            // By the unique index on lower(email) (migration 9).
            let row = sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                ", a.password_hash FROM agents a WHERE lower(a.email) = lower($1)"
            ))
            .bind(&email)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(AgentCredentials {
                agent: agent_from_row(&row)?,
                password_hash: row.try_get(AFTER_AGENT)?,
            }))
        })
    }

    fn set_agent_active(&self, id: AgentId, active: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let changed: i64 = sqlx::query_scalar(
                "WITH a AS (
                     UPDATE agents SET is_active = $2 WHERE id = $1 RETURNING id
                 ), s AS (
                     DELETE FROM agent_tokens
                     WHERE agent_id IN (SELECT id FROM a) AND kind = $3 AND NOT $2
                 )
                 SELECT count(*) FROM a",
            )
            .bind(id.0)
            .bind(active)
            .bind(TokenKind::Session.as_str())
            .fetch_one(&self.pool)
            .await?;
            if changed == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn set_agent_password(
        &self,
        id: AgentId,
        password_hash: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let changed: i64 = sqlx::query_scalar(
                "WITH a AS (
                     UPDATE agents SET password_hash = $2 WHERE id = $1 RETURNING id
                 ), s AS (
                     DELETE FROM agent_tokens
                     WHERE agent_id IN (SELECT id FROM a) AND kind = $3
                 )
                 SELECT count(*) FROM a",
            )
            .bind(id.0)
            .bind(&password_hash)
            .bind(TokenKind::Session.as_str())
            .fetch_one(&self.pool)
            .await?;
            if changed == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn add_agent_token(&self, token: NewAgentToken) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // The agent's expired sessions go as a new one comes, so
            // they do not pile up.
            let done = sqlx::query(
                "WITH expired AS (
                     DELETE FROM agent_tokens WHERE agent_id = $2 AND expires_at <= $5
                 )
                 INSERT INTO agent_tokens (hash, agent_id, kind, name, created, expires_at, last_used)
                 SELECT $1, id, $3, $4, $5, $6, $5 FROM agents WHERE id = $2",
            )
            .bind(&token.hash[..])
            .bind(token.agent_id.0)
            .bind(token.kind.as_str())
            .bind(&token.name)
            .bind(token.created)
            .bind(token.expires_at)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn delete_agent_token(
        &self,
        hash: [u8; 32],
        kind: TokenKind,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM agent_tokens WHERE hash = $1 AND kind = $2")
                .bind(&hash[..])
                .bind(kind.as_str())
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
