//! Agents, departments and tokens on sqlite. Lookups run on the reader
//! pool (point reads by index); every write is a job of the writer
//! thread, like any other.

use std::collections::HashMap;

use super::*;
use crate::domain::agents::TokenKind;
use crate::domain::staff::{Agent, AgentId};
use crate::storage::{AgentCredentials, AgentStore, NewAgent, NewAgentToken, SLIDE_EVERY_SECS};

/// The columns [`agent_from_row`] reads, in order.
const AGENT_COLUMNS: &str = "a.id, a.email, a.name, a.is_admin, a.is_active";

/// An agent from [`AGENT_COLUMNS`] (departments filled in by the caller).
fn agent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: AgentId(r.get(0)?),
        email: r.get(1)?,
        name: r.get(2)?,
        admin: r.get(3)?,
        active: r.get(4)?,
        departments: Vec::new(),
    })
}

fn departments_of(conn: &Connection, id: AgentId) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT dept_id FROM agent_departments WHERE agent_id = ?1 ORDER BY dept_id",
    )?;
    let ids = stmt
        .query_map([id.0], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Ends an agent's sessions (their personal tokens stay).
fn delete_sessions(conn: &Connection, id: AgentId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM agent_tokens WHERE agent_id = ?1 AND kind = ?2")?
        .execute(params![id.0, TokenKind::Session.as_str()])?;
    Ok(())
}

/// What a token lookup found: the agent, the token's expiry and when it
/// was last used (or made).
struct TokenRow {
    agent: Agent,
    expires_at: Option<i64>,
    last_used: i64,
}

impl AgentStore for SqliteStore {
    fn agent_by_token(
        &self,
        hash: [u8; 32],
        now: i64,
    ) -> BoxFuture<'_, Result<Option<Agent>, StoreError>> {
        let found = self.read_point(move |conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {AGENT_COLUMNS}, t.expires_at, coalesce(t.last_used, t.created)
                     FROM agent_tokens t JOIN agents a ON a.id = t.agent_id
                     WHERE t.hash = ?1"
                ))?
                .query_row([&hash[..]], |r| {
                    Ok(TokenRow {
                        agent: agent_from_row(r)?,
                        expires_at: r.get(5)?,
                        last_used: r.get(6)?,
                    })
                })
                .optional()?;
            let Some(mut row) = row else { return Ok(None) };
            if !row.agent.active || row.expires_at.is_some_and(|e| e <= now) {
                return Ok(None);
            }
            row.agent.departments = departments_of(conn, row.agent.id)?;
            Ok(Some(row))
        });
        Box::pin(async move {
            let Some(row) = found.await? else {
                return Ok(None);
            };
            if now - row.last_used > SLIDE_EVERY_SECS {
                // The guard makes concurrent requests slide it once.
                self.write(move |conn, _| {
                    conn.prepare_cached(
                        "UPDATE agent_tokens
                         SET expires_at = ?2 + (expires_at - coalesce(last_used, created)),
                             last_used = ?2
                         WHERE hash = ?1 AND coalesce(last_used, created) < ?2 - ?3",
                    )?
                    .execute(params![&hash[..], now, SLIDE_EVERY_SECS])?;
                    Ok(())
                })
                .await?;
            }
            Ok(Some(row.agent))
        })
    }

    fn add_agent(&self, agent: NewAgent) -> BoxFuture<'_, Result<AgentId, StoreError>> {
        self.write(move |conn, _| {
            conn.prepare_cached(
                "INSERT INTO agents (email, name, password_hash, is_admin, is_active, created)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)",
            )?
            .execute(params![
                agent.email,
                agent.name,
                agent.password_hash,
                agent.admin,
                agent.created
            ])?;
            let id = conn.last_insert_rowid();
            let mut insert = conn.prepare_cached(
                "INSERT INTO agent_departments (agent_id, dept_id) VALUES (?1, ?2)",
            )?;
            for dept in &agent.departments {
                insert.execute([id, *dept])?;
            }
            Ok(AgentId(id))
        })
    }

    fn list_agents(&self) -> BoxFuture<'_, Result<Vec<Agent>, StoreError>> {
        self.read(|conn| {
            let mut departments: HashMap<i64, Vec<i64>> = HashMap::new();
            let mut stmt = conn.prepare_cached(
                "SELECT agent_id, dept_id FROM agent_departments ORDER BY agent_id, dept_id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                departments.entry(r.get(0)?).or_default().push(r.get(1)?);
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {AGENT_COLUMNS} FROM agents a ORDER BY a.id"
            ))?;
            let agents = stmt
                .query_map([], agent_from_row)?
                .map(|a| {
                    let mut a = a?;
                    a.departments = departments.remove(&a.id.0).unwrap_or_default();
                    Ok(a)
                })
                .collect::<rusqlite::Result<Vec<Agent>>>()?;
            Ok(agents)
        })
    }

    fn find_agent(&self, id: AgentId) -> BoxFuture<'_, Result<Option<Agent>, StoreError>> {
        self.read_point(move |conn| {
            let agent = conn
                .prepare_cached(&format!(
                    "SELECT {AGENT_COLUMNS} FROM agents a WHERE a.id = ?1"
                ))?
                .query_row([id.0], agent_from_row)
                .optional()?;
            let Some(mut agent) = agent else {
                return Ok(None);
            };
            agent.departments = departments_of(conn, agent.id)?;
            Ok(Some(agent))
        })
    }

    fn agent_credentials(
        &self,
        email: String,
    ) -> BoxFuture<'_, Result<Option<AgentCredentials>, StoreError>> {
        self.read_point(move |conn| {
            // `email` is COLLATE NOCASE: case-insensitive, by its index.
            let found = conn
                .prepare_cached(&format!(
                    "SELECT {AGENT_COLUMNS}, a.password_hash FROM agents a WHERE a.email = ?1"
                ))?
                .query_row([&email], |r| {
                    Ok((agent_from_row(r)?, r.get::<_, String>(5)?))
                })
                .optional()?;
            let Some((mut agent, password_hash)) = found else {
                return Ok(None);
            };
            agent.departments = departments_of(conn, agent.id)?;
            Ok(Some(AgentCredentials {
                agent,
                password_hash,
            }))
        })
    }

    fn set_agent_active(&self, id: AgentId, active: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("UPDATE agents SET is_active = ?2 WHERE id = ?1")?
                .execute(params![id.0, active])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if !active {
                delete_sessions(conn, id)?;
            }
            Ok(())
        })
    }

    fn set_agent_password(
        &self,
        id: AgentId,
        password_hash: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("UPDATE agents SET password_hash = ?2 WHERE id = ?1")?
                .execute(params![id.0, password_hash])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            delete_sessions(conn, id)
        })
    }

    fn add_agent_token(&self, token: NewAgentToken) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            // The agent's expired sessions go as a new one comes, so
            // they do not pile up.
            conn.prepare_cached(
                "DELETE FROM agent_tokens WHERE agent_id = ?1 AND expires_at <= ?2",
            )?
            .execute(params![token.agent_id.0, token.created])?;
            let n = conn
                .prepare_cached(
                    "INSERT INTO agent_tokens (hash, agent_id, kind, name, created, expires_at, last_used)
                     SELECT ?1, id, ?3, ?4, ?5, ?6, ?5 FROM agents WHERE id = ?2",
                )?
                .execute(params![
                    &token.hash[..],
                    token.agent_id.0,
                    token.kind.as_str(),
                    token.name,
                    token.created,
                    token.expires_at
                ])?;
            if n == 0 {
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
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("DELETE FROM agent_tokens WHERE hash = ?1 AND kind = ?2")?
                .execute(params![&hash[..], kind.as_str()])?;
            Ok(n > 0)
        })
    }
}
