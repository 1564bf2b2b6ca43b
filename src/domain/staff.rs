//! The staff side's rules (STAFF-API.md): agents, who may see a ticket,
//! a ticket's lifecycle and the events it records.

use serde::Serialize;

/// An agent's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AgentId(pub i64);

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A signed-in agent, as every staff route sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Id.
    pub id: AgentId,
    /// Sign-in address (also the address their mail comes from).
    pub email: String,
    /// Display name (the From name of their replies).
    pub name: String,
    /// Sees and does everything.
    pub admin: bool,
    /// May sign in.
    pub active: bool,
    /// Configuration ids of the departments whose tickets they see.
    pub departments: Vec<i64>,
}

impl Agent {
    /// The permission rule: an admin sees every ticket; any other agent
    /// those of their departments and those assigned to them. Any other
    /// ticket does not exist for them (404, never 403).
    pub fn may_see(&self, department: Option<i64>, assignee: Option<AgentId>) -> bool {
        self.admin
            || assignee == Some(self.id)
            || department.is_some_and(|d| self.departments.contains(&d))
    }
}

/// Who did something to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An agent.
    Agent {
        /// Id.
        id: AgentId,
        /// Name at the time.
        name: String,
    },
    /// The ticket's user (or whoever wrote from outside).
    User {
        /// Name.
        name: String,
    },
    /// oxidesk itself (the mail sender).
    System,
}

impl Actor {
    /// `agent`, `user` or `system`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Agent { .. } => "agent",
            Actor::User { .. } => "user",
            Actor::System => "system",
        }
    }

    /// The agent's id, if an agent.
    pub fn agent_id(&self) -> Option<AgentId> {
        match self {
            Actor::Agent { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The name shown.
    pub fn name(&self) -> &str {
        match self {
            Actor::Agent { name, .. } | Actor::User { name } => name,
            Actor::System => "system",
        }
    }

    /// An actor as stored (`actor_kind`, `actor_id`, `actor_name`).
    pub fn from_stored(kind: &str, id: Option<i64>, name: String) -> Self {
        match (kind, id) {
            ("agent", Some(id)) => Actor::Agent {
                id: AgentId(id),
                name,
            },
            ("user", _) => Actor::User { name },
            _ => Actor::System,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(admin: bool, departments: Vec<i64>) -> Agent {
        Agent {
            id: AgentId(7),
            email: "a@example.com".into(),
            name: "A".into(),
            admin,
            active: true,
            departments,
        }
    }

    #[test]
    fn an_agent_sees_their_departments_and_their_tickets_an_admin_all() {
        let a = agent(false, vec![1, 3]);
        assert!(a.may_see(Some(1), None));
        assert!(a.may_see(Some(3), Some(AgentId(9))));
        assert!(!a.may_see(Some(2), None));
        assert!(!a.may_see(None, None));
        assert!(!a.may_see(Some(2), Some(AgentId(9))));
        assert!(a.may_see(Some(2), Some(AgentId(7))));
        assert!(agent(true, vec![]).may_see(Some(2), None));
        assert!(agent(true, vec![]).may_see(None, None));
    }

    #[test]
    fn actors_round_trip_through_their_stored_form() {
        for a in [
            Actor::Agent {
                id: AgentId(3),
                name: "Ann".into(),
            },
            Actor::User { name: "Bo".into() },
            Actor::System,
        ] {
            let back =
                Actor::from_stored(a.kind(), a.agent_id().map(|i| i.0), a.name().to_string());
            assert_eq!(back, a);
        }
    }
}
