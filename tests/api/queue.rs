//! The queue, its counts and full-text search (STAFF-API.md): at the
//! store on the backend the environment picks (a fresh SQLite file, or
//! with `TEST_DATABASE_URL` a fresh PostgreSQL database), and over HTTP.
//!
//! Tickets are made through `Store::create_ticket`/`ingest_email`;
//! what only the staff's work would change (assignee, status, times) is
//! set with SQL, as that work is not this suite's.

use std::sync::Arc;

use oxidesk::config::Config;
use oxidesk::domain::queue::{QueuePage, QueueQuery};
use oxidesk::domain::staff::{Agent, AgentId};
use oxidesk::domain::work::PatchRequest;
use oxidesk::storage::{
    BodyFormat, EmailAddress, EntryKind, Named, NewAttachment, NewEmail, NewEntry, NewTicket,
    Source, Store, ThreadQuery,
};
use sha2::{Digest, Sha256};

use crate::helpers::{drop_test_database, exec_sql, insert_agent, spawn_app, test_database};

/// 2027-01-15T08:00:00Z.
const T0: i64 = 1_800_000_000;

struct Backend {
    store: Arc<dyn Store>,
    config: Config,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            drop_test_database(&name);
        }
    }
}

async fn backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = test_database(&dir.path().join("queue.db")).await;
    let path = dir.path().join("queue.toml");
    std::fs::write(
        &path,
        format!("database = \"{database}\"\n[mail]\nfrom_address = \"support@example.com\"\n"),
    )
    .unwrap();
    let config = Config::load(Some(&path), std::iter::empty()).unwrap();
    let store = oxidesk::cli::open_store(&config).await.unwrap();
    Backend {
        store,
        config,
        pg_name,
        _dir: dir,
    }
}

fn named(id: i64, name: &str) -> Named {
    Named {
        id,
        name: name.into(),
    }
}

/// A ticket from `email` in department `dept` at `T0 + at`.
fn ticket(email: &str, dept: i64, subject: &str, body: &str, at: i64) -> NewTicket {
    NewTicket {
        user_email: EmailAddress::parse(email).unwrap(),
        user_name: format!("Name {}", email.split('@').next().unwrap()),
        subject: subject.into(),
        source: Source::Api,
        priority: named(2, "Normal"),
        topic: None,
        department: Some(named(dept, &format!("Dept {dept}"))),
        ip: "192.0.2.7".into(),
        alert: false,
        autorespond: false,
        fields: Vec::new(),
        entry: NewEntry {
            kind: EntryKind::Message,
            format: BodyFormat::Text,
            body: body.into(),
            from_name: "Someone".into(),
            from_email: EmailAddress::parse(email).unwrap(),
            message_id: None,
            auto_reply: false,
            bounce: false,
            attachments: Vec::new(),
            dropped: Vec::new(),
            agent: None,
        },
        mail: Vec::new(),
        now: jiff::Timestamp::from_second(T0 + at).unwrap(),
        idempotency: None,
    }
}

fn time(at: i64) -> String {
    oxidesk::storage::format_time(jiff::Timestamp::from_second(T0 + at).unwrap())
}

fn admin() -> Agent {
    Agent {
        id: AgentId(1_000_000),
        email: "admin@example.com".into(),
        name: "Admin".into(),
        admin: true,
        active: true,
        departments: vec![],
    }
}

impl Backend {
    async fn create(&self, t: NewTicket) -> String {
        self.store.create_ticket(t).await.unwrap().to_string()
    }

    async fn sql(&self, sql: &str) {
        exec_sql(&self.config, sql).await;
    }

    /// A stored agent seeing `departments`.
    async fn agent(&self, email: &str, departments: &[i64]) -> Agent {
        let id = insert_agent(&self.config, email, false, departments).await;
        Agent {
            id: AgentId(id),
            email: email.into(),
            name: format!("Agent {email}"),
            admin: false,
            active: true,
            departments: departments.to_vec(),
        }
    }

    async fn page(&self, viewer: &Agent, pairs: &[(&str, &str)]) -> QueuePage {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let q = QueueQuery::parse(&pairs).unwrap();
        self.store.list_queue(viewer, &q).await.unwrap()
    }

    /// The numbers of the first page (up to 200 rows).
    async fn numbers(&self, viewer: &Agent, pairs: &[(&str, &str)]) -> Vec<String> {
        let mut pairs = pairs.to_vec();
        if !pairs.iter().any(|(k, _)| *k == "limit") {
            pairs.push(("limit", "200"));
        }
        let page = self.page(viewer, &pairs).await;
        page.rows.iter().map(|r| r.number.to_string()).collect()
    }

    /// Every page, following cursors.
    async fn walk(&self, viewer: &Agent, pairs: &[(&str, &str)], limit: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut p = pairs.to_vec();
            p.push(("limit", limit));
            if let Some(c) = &cursor {
                p.push(("cursor", c));
            }
            let page = self.page(viewer, &p).await;
            assert!(page.rows.len() <= limit.parse().unwrap());
            out.extend(page.rows.iter().map(|r| r.number.to_string()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
        panic!("no last page");
    }

    /// Changes ticket `number` as an admin through the product's own
    /// path (`PATCH`), so that what follows a change (the search index's
    /// scope) follows it here too.
    async fn patch(&self, number: &str, req: PatchRequest) {
        let catalog = oxidesk::domain::catalog::Catalog::new(&self.config);
        oxidesk::domain::work::patch_ticket(&*self.store, &catalog, &admin(), number, &req, None)
            .await
            .unwrap();
    }

    async fn assign(&self, number: &str, agent: Option<AgentId>) {
        let req = PatchRequest {
            assignee: Some(agent),
            ..PatchRequest::default()
        };
        self.patch(number, req).await;
    }

    async fn transfer(&self, number: &str, department: i64) {
        let req = PatchRequest {
            department: Some(department),
            ..PatchRequest::default()
        };
        self.patch(number, req).await;
    }

    async fn search(&self, viewer: &Agent, q: &str) -> Vec<String> {
        self.numbers(viewer, &[("q", q), ("status", "any")]).await
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn each_filter_narrows_the_queue() {
    let b = backend().await;
    let ann = b.agent("ann@example.com", &[1, 2]).await;
    let bob = b.agent("bob@example.com", &[1]).await;
    let a = b.create(ticket("u1@example.com", 1, "one", "x", 1)).await;
    let mut t = ticket("u2@example.com", 2, "two", "x", 2);
    t.topic = Some(named(10, "Report a Problem"));
    t.priority = named(4, "Emergency");
    let c2 = b.create(t).await;
    let c3 = b.create(ticket("u3@example.com", 3, "three", "x", 3)).await;
    let c4 = b.create(ticket("u4@example.com", 1, "four", "x", 4)).await;
    let c5 = b.create(ticket("u5@example.com", 1, "five", "x", 5)).await;
    b.sql(&format!(
        "UPDATE tickets SET assignee_id = {} WHERE number = '{c2}';
         UPDATE tickets SET assignee_id = {} WHERE number = '{c3}';
         UPDATE tickets SET status = 'resolved', status_changed = '{}' WHERE number = '{c4}';
         UPDATE tickets SET status = 'closed', status_changed = '{}' WHERE number = '{c5}';",
        ann.id,
        bob.id,
        time(6),
        time(6)
    ))
    .await;
    let admin = admin();
    let all = |v: &[&String]| sorted(v.iter().map(|s| s.to_string()).collect());
    assert_eq!(sorted(b.numbers(&admin, &[]).await), all(&[&a, &c2, &c3]));
    assert_eq!(
        b.numbers(&admin, &[("status", "resolved")]).await,
        vec![c4.clone()]
    );
    assert_eq!(
        b.numbers(&admin, &[("status", "closed")]).await,
        vec![c5.clone()]
    );
    assert_eq!(b.numbers(&admin, &[("status", "any")]).await.len(), 5);
    assert_eq!(
        b.numbers(&admin, &[("department", "3")]).await,
        vec![c3.clone()]
    );
    assert_eq!(
        b.numbers(&ann, &[("assignee", "me")]).await,
        vec![c2.clone()]
    );
    assert_eq!(
        b.numbers(&admin, &[("assignee", &bob.id.to_string())])
            .await,
        vec![c3.clone()]
    );
    assert_eq!(
        b.numbers(&admin, &[("assignee", "none")]).await,
        vec![a.clone()]
    );
    assert_eq!(
        b.numbers(&admin, &[("topic", "10")]).await,
        vec![c2.clone()]
    );
    assert_eq!(
        b.numbers(&admin, &[("priority", "4")]).await,
        vec![c2.clone()]
    );
    assert_eq!(
        b.numbers(&admin, &[("department", "1"), ("status", "any")])
            .await
            .len(),
        3
    );
    // A summary row carries what the contract lists.
    let page = b.page(&admin, &[("topic", "10")]).await;
    let r = &page.rows[0];
    assert_eq!(r.subject, "two");
    assert_eq!(r.priority, named(4, "Emergency"));
    assert_eq!(r.department, Some(named(2, "Dept 2")));
    assert_eq!(r.topic, Some(named(10, "Report a Problem")));
    assert_eq!(r.assignee, Some(named(ann.id.0, "Agent ann@example.com")));
    assert_eq!(
        (r.user_name.as_str(), r.user_email.as_str()),
        ("Name u2", "u2@example.com")
    );
    assert_eq!(oxidesk::storage::format_time(r.created), time(2));
    assert_eq!(oxidesk::storage::format_time(r.updated), time(2));
    assert_eq!(oxidesk::storage::format_time(r.last_message_at), time(2));
    assert_eq!(r.entries, 1);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn each_sort_orders_the_queue_and_ties_break_by_id() {
    let b = backend().await;
    let mut n = Vec::new();
    for (i, prio) in [2, 4, 1, 4, 3].into_iter().enumerate() {
        let mut t = ticket(&format!("s{i}@example.com"), 1, "s", "x", i as i64);
        t.priority = named(prio, "P");
        n.push(b.create(t).await);
    }
    // updated: 1 and 3 tie; 0 is the most recent.
    b.sql(&format!(
        "UPDATE tickets SET updated = '{}' WHERE number = '{}';
         UPDATE tickets SET updated = '{}' WHERE number IN ('{}', '{}');",
        time(100),
        n[0],
        time(50),
        n[1],
        n[3]
    ))
    .await;
    let admin = admin();
    let s = |list: &[usize]| list.iter().map(|&i| n[i].clone()).collect::<Vec<_>>();
    assert_eq!(b.numbers(&admin, &[]).await, s(&[0, 3, 1, 4, 2]));
    assert_eq!(
        b.numbers(&admin, &[("sort", "-updated")]).await,
        s(&[0, 3, 1, 4, 2])
    );
    assert_eq!(
        b.numbers(&admin, &[("sort", "updated")]).await,
        s(&[2, 4, 1, 3, 0])
    );
    assert_eq!(
        b.numbers(&admin, &[("sort", "-created")]).await,
        s(&[4, 3, 2, 1, 0])
    );
    assert_eq!(
        b.numbers(&admin, &[("sort", "created")]).await,
        s(&[0, 1, 2, 3, 4])
    );
    assert_eq!(
        b.numbers(&admin, &[("sort", "-priority")]).await,
        s(&[3, 1, 4, 0, 2])
    );
    assert_eq!(
        b.numbers(&admin, &[("sort", "number")]).await,
        sorted(n.clone())
    );
}

#[tokio::test]
async fn cursors_page_through_every_sort_without_repeats_or_gaps() {
    let b = backend().await;
    let mut all = Vec::new();
    for i in 0..23 {
        let mut t = ticket(
            &format!("p{i}@example.com"),
            1 + i % 2,
            "paging printer",
            &"printer ".repeat(1 + (i as usize % 3)),
            i / 4, // created ties too
        );
        t.priority = named(1 + i % 4, "P");
        all.push(b.create(t).await);
    }
    // Many rows share an updated time.
    b.sql(&format!(
        "UPDATE tickets SET updated = '{}' WHERE id % 3 = 0;",
        time(7)
    ))
    .await;
    let admin = admin();
    for pairs in [
        vec![],
        vec![("sort", "updated")],
        vec![("sort", "-created")],
        vec![("sort", "created")],
        vec![("sort", "-priority")],
        vec![("sort", "number")],
        vec![("q", "printer")],
        vec![("q", "printer"), ("sort", "-updated")],
        vec![("department", "2")],
    ] {
        let whole = b.numbers(&admin, &pairs).await;
        for limit in ["1", "4", "7"] {
            let walked = b.walk(&admin, &pairs, limit).await;
            assert_eq!(walked, whole, "{pairs:?} by {limit}");
        }
        if pairs.is_empty() {
            assert_eq!(sorted(whole), sorted(all.clone()));
        }
    }
}

#[tokio::test]
async fn an_agent_never_sees_another_departments_unassigned_ticket() {
    let b = backend().await;
    let viewer = b.agent("dee@example.com", &[1]).await;
    let mine = b
        .create(ticket("m@example.com", 1, "secret printer", "printer", 1))
        .await;
    let hidden = b
        .create(ticket("h@example.com", 2, "secret printer", "printer", 2))
        .await;
    let assigned = b
        .create(ticket("a@example.com", 2, "secret printer", "printer", 3))
        .await;
    b.create(ticket("n@example.com", 2, "other", "x", 4)).await;
    let mut t = ticket("z@example.com", 3, "nobody's secret", "x", 5);
    t.department = None;
    b.create(t).await;
    b.assign(&assigned, Some(viewer.id)).await;
    assert_eq!(
        sorted(b.numbers(&viewer, &[("status", "any")]).await),
        sorted(vec![mine.clone(), assigned.clone()])
    );
    assert_eq!(
        b.numbers(&viewer, &[("department", "2")]).await,
        vec![assigned.clone()]
    );
    assert_eq!(
        sorted(b.search(&viewer, "secret").await),
        sorted(vec![mine.clone(), assigned.clone()])
    );
    // Not even by its number.
    assert!(b.search(&viewer, &hidden).await.is_empty());
    let counts = b
        .store
        .queue_counts(&viewer, jiff::Timestamp::from_second(T0).unwrap())
        .await
        .unwrap();
    assert_eq!(
        counts.open_by_department,
        vec![(1, "Dept 1".to_string(), 1), (2, "Dept 2".to_string(), 1)]
    );
    assert_eq!((counts.mine, counts.unassigned), (1, 1));
    // An agent of no department sees only what is assigned to them.
    let loner = b.agent("lone@example.com", &[]).await;
    assert!(b.numbers(&loner, &[("status", "any")]).await.is_empty());
    // The admin sees all, the department-less one included.
    assert_eq!(b.numbers(&admin(), &[]).await.len(), 5);
}

/// A search finds exactly the tickets the permission rule lets its agent
/// see (`Agent::may_see`), over every department and assignee a ticket
/// may have and every kind of agent.
#[tokio::test]
async fn a_search_finds_what_the_permission_rule_shows_and_nothing_else() {
    let b = backend().await;
    let one = b.agent("one@example.com", &[1]).await;
    let two = b.agent("two@example.com", &[1, 3]).await;
    let none = b.agent("none@example.com", &[]).await;
    let mut tickets = Vec::new();
    let mut at = 0;
    for dept in [Some(1), Some(2), Some(3), None] {
        for assignee in [None, Some(one.id), Some(two.id), Some(none.id)] {
            at += 1;
            let mut t = ticket(&format!("g{at}@example.com"), 1, "gridword", "x", at);
            t.department = dept.map(|d| named(d, "D"));
            let number = b.create(t).await;
            if assignee.is_some() {
                b.assign(&number, assignee).await;
            }
            tickets.push((number, dept, assignee));
        }
    }
    for viewer in [&one, &two, &none, &admin()] {
        let expected: Vec<String> = tickets
            .iter()
            .filter(|(_, d, a)| viewer.may_see(*d, *a))
            .map(|(n, _, _)| n.clone())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(
            sorted(b.search(viewer, "gridword").await),
            sorted(expected),
            "{}",
            viewer.email
        );
    }
}

/// Who may see a ticket is in SQLite's index as words of its own
/// (`d1`, `anone`): typed, such words find the tickets that say them,
/// never the tickets of that department or assignee, whether searched
/// for, excluded or as a prefix.
#[tokio::test]
async fn words_that_look_like_the_index_scope_find_only_tickets_that_say_them() {
    let b = backend().await;
    let one = b.agent("one@example.com", &[1, 2]).await;
    let plain = b
        .create(ticket("p@example.com", 1, "scopeword", "x", 1))
        .await;
    let says = b
        .create(ticket("s@example.com", 2, "scopeword d1 dnoneish", "x", 2))
        .await;
    let mut none = ticket("n@example.com", 1, "scopeword", "x", 3);
    none.department = None;
    let none = b.create(none).await;
    for viewer in [&admin(), &one] {
        assert_eq!(b.search(viewer, "d1").await, vec![says.clone()]);
        assert_eq!(b.search(viewer, "scopeword d2").await, Vec::<String>::new());
        assert_eq!(b.search(viewer, "dnon*").await, vec![says.clone()]);
        assert_eq!(b.search(viewer, "an*").await, Vec::<String>::new());
        assert_eq!(
            sorted(b.search(viewer, "scopeword -d2").await),
            sorted(if viewer.admin {
                vec![plain.clone(), says.clone(), none.clone()]
            } else {
                vec![plain.clone(), says.clone()]
            })
        );
        assert_eq!(
            b.search(viewer, "scopeword -d1").await.len(),
            if viewer.admin { 2 } else { 1 }
        );
    }
}

/// Who may see a ticket changes with its department and assignee; a
/// search follows at once (SQLite's index holds the scope, rewritten by
/// the change's own transaction).
#[tokio::test]
async fn a_search_follows_a_ticket_transferred_or_assigned_to_the_agent() {
    let b = backend().await;
    let viewer = b.agent("fay@example.com", &[1]).await;
    let other = b.agent("gus@example.com", &[2]).await;
    let moved = b
        .create(ticket("m@example.com", 2, "relocated toner", "x", 1))
        .await;
    let stays = b
        .create(ticket("s@example.com", 1, "relocated toner", "x", 2))
        .await;
    assert_eq!(b.search(&viewer, "relocated").await, vec![stays.clone()]);
    assert_eq!(b.search(&other, "relocated").await, vec![moved.clone()]);
    b.transfer(&moved, 1).await;
    assert_eq!(
        sorted(b.search(&viewer, "relocated").await),
        sorted(vec![moved.clone(), stays.clone()])
    );
    assert!(b.search(&other, "relocated").await.is_empty());
    b.transfer(&moved, 3).await;
    assert_eq!(
        b.search(&viewer, "relocated toner").await,
        vec![stays.clone()]
    );
    b.assign(&moved, Some(viewer.id)).await;
    assert_eq!(
        sorted(b.search(&viewer, "\"relocated toner\"").await),
        sorted(vec![moved.clone(), stays.clone()])
    );
    // The queue's own filters narrow a search the same way.
    for (filter, expected) in [
        (("assignee", "me"), &moved),
        (("department", "1"), &stays),
        (("assignee", "none"), &stays),
    ] {
        let pairs = [("q", "relocated"), filter, ("status", "any")];
        assert_eq!(
            b.numbers(&viewer, &pairs).await,
            vec![expected.clone()],
            "{filter:?}"
        );
    }
    b.assign(&moved, Some(other.id)).await;
    assert_eq!(b.search(&viewer, "relocated").await, vec![stays.clone()]);
    assert!(b.search(&other, "relocated").await.contains(&moved));
    b.assign(&moved, None).await;
    assert_eq!(b.search(&viewer, "relocated").await, vec![stays]);
    assert!(b.search(&other, "relocated").await.is_empty());
    assert_eq!(b.search(&admin(), "relocated").await.len(), 2);
}

#[tokio::test]
async fn counts_are_open_by_department_mine_unassigned_and_today() {
    let b = backend().await;
    let ann = b.agent("ann@example.com", &[1, 2]).await;
    let mut n = Vec::new();
    for (i, dept) in [1, 1, 2, 2, 2, 1, 1].into_iter().enumerate() {
        n.push(
            b.create(ticket(
                &format!("c{i}@example.com"),
                dept,
                "c",
                "x",
                i as i64,
            ))
            .await,
        );
    }
    // Today starts at T0 + 1000.
    b.sql(&format!(
        "UPDATE tickets SET assignee_id = {ann} WHERE number IN ('{}', '{}');
         UPDATE tickets SET status = 'resolved', status_changed = '{today}', updated = '{today}'
             WHERE number = '{}';
         UPDATE tickets SET status = 'resolved', status_changed = '{yesterday}',
             updated = '{yesterday}' WHERE number = '{}';
         UPDATE tickets SET status = 'closed', status_changed = '{today}', updated = '{later}'
             WHERE number = '{}';",
        n[0],
        n[2],
        n[5],
        n[6],
        n[4],
        ann = ann.id,
        today = time(1500),
        later = time(1600),
        yesterday = time(900),
    ))
    .await;
    let c = b
        .store
        .queue_counts(&ann, jiff::Timestamp::from_second(T0 + 1000).unwrap())
        .await
        .unwrap();
    assert_eq!(
        c.open_by_department,
        vec![(1, "Dept 1".to_string(), 2), (2, "Dept 2".to_string(), 2)]
    );
    assert_eq!(
        (c.mine, c.unassigned, c.resolved_today, c.closed_today),
        (2, 2, 1, 1)
    );
}

/// How many connections to the test's database wait for a lock.
async fn waiting_for_locks(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Waits until `n` connections of the test's database wait for a lock
/// (10 s at most: a move that never waits fails the test, not hangs it).
async fn until_waiting(watcher: &mut sqlx::PgConnection, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while waiting_for_locks(watcher).await < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} moves never waited for the held row"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn tickets_moved_at_once_in_opposite_directions_both_move_and_keep_the_counts() {
    // PostgreSQL's `open_counts` rows are shared by the tickets of a
    // department, assignee and shard (id mod 16): two tickets of one
    // shard moved at once, 1 to 2 and 2 to 1, each changed the row the
    // other wanted next, and one move was aborted as a deadlock.
    let b = backend().await;
    if b.pg_name.is_none() {
        eprintln!("PostgreSQL only (TEST_DATABASE_URL): SQLite has one writer");
        return;
    }
    use sqlx::Connection;
    // 32 tickets in department 1 (ids over every shard, gaps or not),
    // then one in department 2; `a` is one of department 1 in its shard.
    let mut z_number = String::new();
    for i in 0..33 {
        let dept = if i == 32 { 2 } else { 1 };
        z_number = b
            .create(ticket(&format!("m{i}@example.com"), dept, "m", "x", i))
            .await;
    }
    let mut watcher = sqlx::PgConnection::connect(&b.config.database)
        .await
        .unwrap();
    let z: i64 = sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
        .bind(&z_number)
        .fetch_one(&mut watcher)
        .await
        .unwrap();
    let shard = z % 16;
    let a: i64 =
        sqlx::query_scalar("SELECT min(id) FROM tickets WHERE dept_id = 1 AND id % 16 = $1")
            .bind(shard)
            .fetch_one(&mut watcher)
            .await
            .unwrap();

    // A third transaction holds department 1's row, so that both moves
    // queue behind it: the one to department 2 (which takes from
    // department 1's row first in the old order), then the one to
    // department 1 (which, in the old order, had already taken from
    // department 2's row).
    let mut holder = sqlx::PgConnection::connect(&b.config.database)
        .await
        .unwrap();
    let mut hold = holder.begin().await.unwrap();
    sqlx::query(
        "SELECT n FROM open_counts WHERE dept_id = 1 AND assignee_id = 0 AND shard = $1 FOR UPDATE",
    )
    .bind(shard)
    .fetch_all(&mut *hold)
    .await
    .unwrap();
    let mv = |id: i64, dept: i64| {
        let url = b.config.database.clone();
        tokio::spawn(async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("UPDATE tickets SET dept_id = $1 WHERE id = $2")
                .bind(dept)
                .bind(id)
                .execute(&mut c)
                .await
                .map(|_| ())
        })
    };
    let to_two = mv(a, 2);
    until_waiting(&mut watcher, 1).await;
    let to_one = mv(z, 1);
    until_waiting(&mut watcher, 2).await;
    hold.commit().await.unwrap();
    let (to_two, to_one) = (to_two.await.unwrap(), to_one.await.unwrap());
    assert!(to_two.is_ok(), "{to_two:?}");
    assert!(to_one.is_ok(), "{to_one:?}");
    let depts: Vec<i64> =
        sqlx::query_scalar("SELECT dept_id FROM tickets WHERE id IN ($1, $2) ORDER BY id")
            .bind(a)
            .bind(z)
            .fetch_all(&mut watcher)
            .await
            .unwrap();
    assert_eq!(depts, vec![2, 1]);

    // The counts follow both moves: still 32 open in department 1, 1 in
    // 2, and the shard's rows say what its tickets are.
    let c = b
        .store
        .queue_counts(&admin(), jiff::Timestamp::from_second(T0).unwrap())
        .await
        .unwrap();
    assert_eq!(
        c.open_by_department
            .iter()
            .map(|(d, _, n)| (*d, *n))
            .collect::<Vec<_>>(),
        vec![(1, 32), (2, 1)]
    );
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT dept_id, n FROM open_counts WHERE shard = $1 AND n <> 0 ORDER BY dept_id",
    )
    .bind(i32::try_from(shard).unwrap())
    .fetch_all(&mut watcher)
    .await
    .unwrap();
    let held: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT dept_id, count(*) FROM tickets WHERE status = 'open' AND id % 16 = $1
         GROUP BY dept_id ORDER BY dept_id",
    )
    .bind(shard)
    .fetch_all(&mut watcher)
    .await
    .unwrap();
    assert_eq!(rows, held, "shard {shard}");
    assert_eq!(held.iter().find(|(d, _)| *d == 2), Some(&(2, 1)));
}

fn attachment(name: &str) -> NewAttachment {
    NewAttachment {
        name: name.into(),
        content_type: "application/pdf".into(),
        data: name.as_bytes().to_vec(),
        sha256: Sha256::digest(name.as_bytes()).into(),
        inline: false,
        content_id: None,
    }
}

#[tokio::test]
async fn search_finds_words_prefixes_phrases_numbers_scripts_files_and_addresses() {
    let b = backend().await;
    let admin = admin();
    let toner = b
        .create(ticket(
            "ann@example.com",
            1,
            "Printer trouble",
            "The printer is out of toner.",
            1,
        ))
        .await;
    let printing = b
        .create(ticket(
            "bob@example.com",
            1,
            "Printing jobs stuck",
            "Queue is stuck. Toner is fine, out of paper.",
            2,
        ))
        .await;
    let ru = b
        .create(ticket(
            "ivan@example.ru",
            2,
            "Принтер не печатает",
            "Помогите",
            3,
        ))
        .await;
    let ja = b
        .create(ticket(
            "taro@example.jp",
            2,
            "エラー",
            "印刷できません。",
            4,
        ))
        .await;
    let zh = b
        .create(ticket("li@example.cn", 2, "求助", "我的打印机坏了", 5))
        .await;
    let cafe = b
        .create(ticket(
            "chef@example.fr",
            3,
            "Le Café",
            "Crème brûlée machine",
            6,
        ))
        .await;
    let mut t = ticket("files@example.com", 3, "See attached", "Attached.", 7);
    t.entry.attachments = vec![attachment("quarterly-invoice.pdf")];
    let file = b.create(t).await;
    let mut t = ticket("html@example.com", 3, "Html", "", 8);
    t.entry.format = BodyFormat::Html;
    t.entry.body = "<p>The <b>scanner</b>&nbsp;jammed</p>".into();
    let html = b.create(t).await;

    let s = |v: &[&String]| sorted(v.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        sorted(b.search(&admin, "toner").await),
        s(&[&toner, &printing])
    );
    assert_eq!(
        sorted(b.search(&admin, "print*").await),
        s(&[&toner, &printing])
    );
    assert_eq!(b.search(&admin, "Printing").await, vec![printing.clone()]);
    assert_eq!(
        b.search(&admin, "\"out of toner\"").await,
        vec![toner.clone()]
    );
    assert_eq!(b.search(&admin, "toner -paper").await, vec![toner.clone()]);
    assert_eq!(
        b.search(&admin, "toner -\"out of paper\"").await,
        vec![toner.clone()]
    );
    assert_eq!(b.search(&admin, &printing).await, vec![printing.clone()]);
    assert_eq!(b.search(&admin, &format!("#{ja}")).await, vec![ja.clone()]);
    assert_eq!(b.search(&admin, "принтер").await, vec![ru.clone()]);
    assert_eq!(b.search(&admin, "ПРИНТЕР").await, vec![ru.clone()]);
    assert_eq!(b.search(&admin, "印刷").await, vec![ja.clone()]);
    assert_eq!(b.search(&admin, "印刷できません").await, vec![ja.clone()]);
    assert_eq!(b.search(&admin, "打印机").await, vec![zh.clone()]);
    assert!(b.search(&admin, "打机").await.is_empty());
    assert_eq!(b.search(&admin, "cafe").await, vec![cafe.clone()]);
    assert_eq!(b.search(&admin, "café").await, vec![cafe.clone()]);
    assert_eq!(b.search(&admin, "brulee").await, vec![cafe.clone()]);
    assert_eq!(b.search(&admin, "invoice").await, vec![file.clone()]);
    assert_eq!(
        b.search(&admin, "quarterly-invoice.pdf").await,
        vec![file.clone()]
    );
    assert_eq!(b.search(&admin, "taro@example.jp").await, vec![ja.clone()]);
    assert_eq!(b.search(&admin, "ivan").await, vec![ru.clone()]);
    assert_eq!(b.search(&admin, "scanner jammed").await, vec![html.clone()]);
    assert!(b.search(&admin, "nbsp").await.is_empty());
    assert!(b.search(&admin, "nothing-like-this").await.is_empty());
    // Search with filters: the words and the queue's filters both apply.
    assert_eq!(
        b.numbers(
            &admin,
            &[("q", "toner"), ("department", "1"), ("sort", "created")]
        )
        .await,
        vec![toner.clone(), printing.clone()]
    );
    assert!(
        b.numbers(&admin, &[("q", "toner"), ("department", "2")])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_subject_and_body_match_outranks_one_word_in_a_long_body() {
    let b = backend().await;
    let long = format!(
        "{} printer {}",
        "lorem ipsum dolor sit amet ".repeat(40),
        "consectetur adipiscing elit ".repeat(40)
    );
    // The weaker match is the more recent one: relevance comes first.
    let strong = b
        .create(ticket(
            "s@example.com",
            1,
            "Printer broken",
            "The printer will not start.",
            1,
        ))
        .await;
    let weak = b
        .create(ticket("w@example.com", 1, "Office", &long, 2))
        .await;
    assert_eq!(
        b.search(&admin(), "printer").await,
        vec![strong.clone(), weak.clone()]
    );
    // Recency breaks ties; an explicit sort replaces relevance.
    assert_eq!(
        b.numbers(&admin(), &[("q", "printer"), ("sort", "-created")])
            .await,
        vec![weak.clone(), strong.clone()]
    );
    // A ticket's number outranks its mentions.
    let mention = b
        .create(ticket(
            "m@example.com",
            1,
            &format!("Same as {strong}"),
            "see subject",
            3,
        ))
        .await;
    assert_eq!(
        b.search(&admin(), &strong).await,
        vec![strong.clone(), mention]
    );
}

/// A phrase ranks as in the subject when the subject holds its words,
/// side by side or not, on both backends alike (PostgreSQL's marked
/// copies carry no positions; SQLite's query asks for the words).
#[tokio::test]
async fn a_phrase_ranks_as_in_the_subject_when_the_subject_holds_its_words() {
    let b = backend().await;
    let exact = b
        .create(ticket(
            "e@example.com",
            1,
            "Access denied on the share",
            "see subject",
            1,
        ))
        .await;
    let apart = b
        .create(ticket(
            "a@example.com",
            1,
            "Access to the drive was denied",
            "It says access denied",
            2,
        ))
        .await;
    let body = b
        .create(ticket(
            "b@example.com",
            1,
            "Question",
            "access denied again",
            3,
        ))
        .await;
    let expected = vec![apart.clone(), exact.clone(), body.clone()];
    assert_eq!(b.search(&admin(), "\"access denied\"").await, expected);
    assert_eq!(
        b.numbers(&admin(), &[("q", "\"access denied\""), ("status", "open")])
            .await,
        expected
    );
    assert_eq!(b.search(&admin(), "\"access den*\"").await, expected);
}

#[tokio::test]
async fn words_in_the_subject_outrank_words_in_the_names_which_outrank_words_in_a_body() {
    // The tiers of relevance, for a word, a phrase and a prefix, on a
    // first page cut from the index alone (SQLite: `status=any`, with and
    // without a scope), on one cut with its tickets (`status=open`) and
    // across pages. The newest ticket is the weakest match, so recency
    // alone would give the reverse order.
    let b = backend().await;
    let viewer = b.agent("ida@example.com", &[1]).await;
    let subject = b
        .create(ticket(
            "ann@example.com",
            1,
            "Kestrel report due",
            "nothing here",
            1,
        ))
        .await;
    let names = b
        .create(ticket(
            "kestrel.report@example.com",
            1,
            "Question",
            "nothing here",
            2,
        ))
        .await;
    let body = b
        .create(ticket(
            "cy@example.com",
            1,
            "Hello",
            "please see the kestrel report attached",
            3,
        ))
        .await;
    let expected = vec![subject, names, body];
    for q in ["kestrel", "\"kestrel report\"", "kestr*", "kestrel -absent"] {
        for agent in [&admin(), &viewer] {
            for status in ["any", "open"] {
                assert_eq!(
                    b.numbers(agent, &[("q", q), ("status", status)]).await,
                    expected,
                    "q={q} status={status} admin={}",
                    agent.admin
                );
            }
            assert_eq!(
                b.walk(agent, &[("q", q), ("status", "any")], "1").await,
                expected,
                "q={q}, one per page"
            );
        }
    }
}

#[tokio::test]
async fn within_a_relevance_tier_the_most_recently_updated_come_first_on_every_page() {
    // SQLite cuts a first page filtered only by who may see a ticket
    // from the index alone and looks up `updated` only for the matches
    // that can reach the page: the order must be the one every other
    // page (and PostgreSQL) gives.
    let b = backend().await;
    let viewer = b.agent("ida@example.com", &[1]).await;
    let s_old = b
        .create(ticket("a@example.com", 1, "zebrafish tank", "x", 1))
        .await;
    let s_new = b
        .create(ticket("b@example.com", 1, "zebrafish food", "x", 2))
        .await;
    let mut body = Vec::new();
    for (i, at) in [3, 4, 5].into_iter().enumerate() {
        let email = format!("c{i}@example.com");
        let t = ticket(&email, 1, "other", "we keep a zebrafish here", at);
        body.push(b.create(t).await);
    }
    // Not visible to the viewer: never on a page, never counted.
    b.create(ticket("d@example.com", 2, "zebrafish", "zebrafish", 6))
        .await;
    // The older subject match was updated last; so was the oldest body match.
    b.sql(&format!(
        "UPDATE tickets SET updated = '{}' WHERE number = '{s_old}';
         UPDATE tickets SET updated = '{}' WHERE number = '{}';",
        time(9),
        time(8),
        body[0]
    ))
    .await;
    let first = |limit: &'static str| {
        let b = &b;
        let viewer = viewer.clone();
        async move {
            let page = b
                .page(
                    &viewer,
                    &[("q", "zebrafish"), ("status", "any"), ("limit", limit)],
                )
                .await;
            let numbers: Vec<String> = page.rows.iter().map(|r| r.number.to_string()).collect();
            (numbers, page.next_cursor.is_some())
        }
    };
    assert_eq!(first("1").await, (vec![s_old.clone()], true));
    assert_eq!(first("2").await, (vec![s_old.clone(), s_new.clone()], true));
    assert_eq!(
        first("3").await,
        (vec![s_old.clone(), s_new.clone(), body[0].clone()], true)
    );
    let all = vec![
        s_old.clone(),
        s_new.clone(),
        body[0].clone(),
        body[2].clone(),
        body[1].clone(),
    ];
    assert_eq!(first("5").await, (all.clone(), false));
    assert_eq!(first("50").await, (all.clone(), false));
    // The pages after the first (cut with their tickets) agree.
    for limit in ["1", "2", "3"] {
        assert_eq!(
            b.walk(&viewer, &[("q", "zebrafish"), ("status", "any")], limit)
                .await,
            all,
            "limit {limit}"
        );
    }
}

/// A search whose hundreds of newest matches tie (found in bodies
/// alone) orders them by their last update: SQLite meets tickets most
/// recently updated first, in every status, instead of looking each
/// match up, and reads by id what the walk did not meet (here, an old
/// subject match updated before every other ticket, past the walk's
/// bound). The page
/// must be the one that ordering every match gives, on every page.
#[tokio::test]
async fn hundreds_of_tied_matches_are_ordered_by_their_last_update_on_every_page() {
    let b = backend().await;
    let viewer = b.agent("uma@example.com", &[1]).await;
    let mut at = 0;
    let mut next = || {
        at += 1;
        at
    };
    let old_subject = b
        .create(ticket("s@example.com", 1, "capybara", "x", next()))
        .await;
    let mut body = Vec::new();
    for i in 0..260 {
        let email = format!("b{i}@example.com");
        let t = ticket(&email, 1, "other", "a capybara here", next());
        body.push(b.create(t).await);
    }
    let new_subject = b
        .create(ticket("s@example.com", 1, "capybara again", "x", next()))
        .await;
    for i in 0..150 {
        let email = format!("n{i}@example.com");
        b.create(ticket(&email, 1, "unrelated", "nothing", next()))
            .await;
    }
    // Older body matches updated last, in other statuses too; a few
    // hidden from the viewer.
    let mut changes = String::new();
    let mut updated: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (i, number) in body.iter().enumerate() {
        updated.insert(number.clone(), 2 + i as i64);
    }
    for (k, i) in [7usize, 30, 31, 99, 150, 151, 200].into_iter().enumerate() {
        let status = ["closed", "resolved", "open"][k % 3];
        let when = 10_000 + (k as i64 % 4);
        updated.insert(body[i].clone(), when);
        changes.push_str(&format!(
            "UPDATE tickets SET updated = '{}', status = '{status}' WHERE number = '{}';",
            time(when),
            body[i]
        ));
    }
    b.sql(&changes).await;
    for i in [8usize, 201] {
        // Through the product's path, so that the index follows (and
        // `updated` moves: hidden, they are on no page).
        b.transfer(&body[i], 2).await;
        updated.remove(&body[i]);
    }
    // By update, then by id (the order they were made in).
    let id = |n: &str| body.iter().position(|b| b == n).unwrap();
    let mut ties: Vec<String> = updated.keys().cloned().collect();
    ties.sort_by(|x, y| updated[y].cmp(&updated[x]).then_with(|| id(y).cmp(&id(x))));
    let mut expected = vec![new_subject.clone(), old_subject.clone()];
    expected.extend(ties);
    let q = [("q", "capybara"), ("status", "any")];
    for limit in ["1", "2", "3", "50"] {
        let page = b.page(&viewer, &[q[0], q[1], ("limit", limit)]).await;
        let numbers: Vec<String> = page.rows.iter().map(|r| r.number.to_string()).collect();
        let n: usize = limit.parse().unwrap();
        assert_eq!(numbers, expected[..n], "first page of {limit}");
        assert!(page.next_cursor.is_some());
    }
    assert_eq!(b.walk(&viewer, &q, "50").await, expected);
    // In bodies alone: the newest updated decide the page early, and a
    // page of 2 ends inside a tie of `updated` across two statuses.
    let q = [("q", "here"), ("status", "any")];
    for limit in ["1", "2", "3", "50"] {
        let page = b.page(&viewer, &[q[0], q[1], ("limit", limit)]).await;
        let numbers: Vec<String> = page.rows.iter().map(|r| r.number.to_string()).collect();
        let n: usize = limit.parse().unwrap();
        assert_eq!(
            numbers,
            expected[2..2 + n],
            "bodies alone, first page of {limit}"
        );
    }
    assert_eq!(b.walk(&viewer, &q, "50").await, expected[2..]);
}

/// PostgreSQL reads a search's newest matches from its index a range
/// of 4,096 ids at a time, newest first, and the rest at once past 64
/// ranges: tickets whose ids lie in ranges near and far apart rank as
/// they would side by side (SQLite's ids cannot jump; there the same
/// tickets are simply consecutive).
#[tokio::test]
async fn a_search_ranks_matches_whose_ids_lie_in_ranges_near_and_far_apart() {
    let b = backend().await;
    let viewer = b.agent("ria@example.com", &[1]).await;
    let jump = |range: i64| {
        let b = &b;
        async move {
            if b.pg_name.is_some() {
                b.sql(&format!(
                    "SELECT setval('tickets_id_seq', {})",
                    range * 4096
                ))
                .await;
            }
        }
    };
    let mut at = 0;
    let mut make = |email: &str, dept: i64, subject: &str, body: &str| {
        at += 1;
        ticket(email, dept, subject, body, at)
    };
    let a = b.create(make("a@example.com", 1, "quokka seen", "x")).await;
    b.create(make("b@example.com", 2, "quokka hidden", "quokka"))
        .await;
    let c = b
        .create(make("c@example.com", 1, "other", "a quokka wombat"))
        .await;
    jump(150).await;
    let d = b.create(make("quokka@example.com", 1, "other", "x")).await;
    let e = b
        .create(make("e@example.com", 1, "other", "quokka wombat"))
        .await;
    jump(152).await;
    let f = b
        .create(make("f@example.com", 1, "other", "quokka wombat"))
        .await;
    let g = b
        .create(make("g@example.com", 1, "quokka wombat", "x"))
        .await;
    b.create(make("h@example.com", 1, "unrelated", "nothing"))
        .await;
    jump(153).await;
    let h = b
        .create(make("h@example.com", 1, "other", "the quokka"))
        .await;
    b.create(make("i@example.com", 1, "unrelated", "nothing"))
        .await;
    // The words of the phrase below, not the phrase.
    let j = b
        .create(make("j@example.com", 1, "wombat", "wombat then quokka"))
        .await;
    let all = vec![
        g.clone(),
        a.clone(),
        d.clone(),
        j.clone(),
        h.clone(),
        f.clone(),
        e.clone(),
        c.clone(),
    ];
    assert_eq!(b.search(&viewer, "quokka").await, all);
    assert_eq!(b.search(&viewer, "quok*").await, all);
    assert_eq!(
        b.walk(&viewer, &[("q", "quokka"), ("status", "any")], "2")
            .await,
        all
    );
    // Matches within a few ranges of each other; a phrase's words
    // without the phrase are no match, on any page.
    assert_eq!(
        b.search(&viewer, "wombat").await,
        vec![j.clone(), g.clone(), f.clone(), e.clone(), c.clone()]
    );
    let phrase = vec![g.clone(), f.clone(), e.clone(), c.clone()];
    assert_eq!(b.search(&viewer, "\"quokka wombat\"").await, phrase);
    for limit in ["1", "3"] {
        assert_eq!(
            b.walk(
                &viewer,
                &[("q", "\"quokka wombat\""), ("status", "any")],
                limit
            )
            .await,
            phrase,
            "limit {limit}"
        );
    }
    assert_eq!(
        b.search(&viewer, "quokka wombat -seen").await,
        vec![g.clone(), j.clone(), f.clone(), e.clone(), c.clone()]
    );
    // Who may see a ticket moves with it in every range.
    b.transfer(&g, 2).await;
    b.transfer(&c, 2).await;
    assert_eq!(
        b.search(&viewer, "wombat").await,
        vec![j.clone(), f.clone(), e.clone()]
    );
    // (A change sets the ticket's `updated`: the body matches' order is
    // left out below.)
    b.assign(&c, Some(viewer.id)).await;
    assert_eq!(
        sorted(b.search(&viewer, "wombat").await),
        sorted(vec![j.clone(), c.clone(), f.clone(), e.clone()])
    );
    let found = b.search(&admin(), "wombat").await;
    assert_eq!(
        sorted(found[..2].to_vec()),
        sorted(vec![g.clone(), j.clone()]),
        "the subject matches first"
    );
    assert_eq!(sorted(found), sorted(vec![g, j, c, f, e]));
}

/// A relevance-ranked search ranks its newest 2,000 matches; for a
/// phrase those are its newest exact matches, not the newest tickets
/// holding its words (PostgreSQL finds the candidates by the words and
/// tests the phrase row by row): an old exact match behind more than
/// 2,000 newer tickets with the words alone is found, on every page.
#[tokio::test]
async fn an_old_phrase_match_is_found_behind_many_newer_tickets_with_its_words() {
    let b = backend().await;
    let old = b
        .create(ticket("o@example.com", 1, "x", "the quokka wombat", 0))
        .await;
    for i in 0..2_050 {
        let t = ticket("n@example.com", 1, "x", "wombat then quokka", 1 + i);
        b.create(t).await;
    }
    let new = b
        .create(ticket("e@example.com", 1, "x", "quokka wombat", 3_000))
        .await;
    let expected = vec![new, old];
    let viewer = b.agent("pia@example.com", &[1]).await;
    assert_eq!(b.search(&viewer, "\"quokka wombat\"").await, expected);
    assert_eq!(
        b.walk(
            &viewer,
            &[("q", "\"quokka wombat\""), ("status", "any")],
            "1"
        )
        .await,
        expected
    );
}

#[tokio::test]
async fn a_ticket_is_found_as_soon_as_it_is_stored_and_so_is_an_appended_email() {
    let b = backend().await;
    let admin = admin();
    let n = b
        .create(ticket("fresh@example.com", 1, "Brand new", "zyxwvut", 1))
        .await;
    assert_eq!(b.search(&admin, "zyxwvut").await, vec![n.clone()]);
    // An email reply joins the ticket; its words and file become findable.
    let thread = b
        .store
        .find_thread(ThreadQuery {
            thread_ids: vec![],
            subject_number: Some(n.clone()),
            from: EmailAddress::parse("fresh@example.com").unwrap(),
        })
        .await
        .unwrap()
        .expect("the thread by its number");
    let mut reply = ticket(
        "fresh@example.com",
        1,
        "Re: Brand new",
        "now it says qwertzuiop",
        2,
    );
    reply.entry.message_id = Some("reply-1@example.com".into());
    reply.entry.attachments = vec![attachment("screenshot-error.png")];
    let outcome = b
        .store
        .ingest_email(NewEmail {
            message_id: Some("reply-1@example.com".into()),
            query: ThreadQuery {
                thread_ids: vec![],
                subject_number: Some(n.clone()),
                from: EmailAddress::parse("fresh@example.com").unwrap(),
            },
            thread: Some(thread),
            is_bounce: false,
            ticket: reply,
            raw_compressed: b"raw".to_vec(),
        })
        .await
        .unwrap();
    assert!(format!("{outcome:?}").contains("Appended"), "{outcome:?}");
    assert_eq!(b.search(&admin, "qwertzuiop").await, vec![n.clone()]);
    assert_eq!(b.search(&admin, "screenshot").await, vec![n.clone()]);
    // Words of the subject and the first message are still there, and a
    // query across both entries matches the ticket.
    assert_eq!(
        b.search(&admin, "zyxwvut qwertzuiop").await,
        vec![n.clone()]
    );
    // A new ticket by email is indexed too.
    let mut first = ticket("new@example.com", 1, "Mailed in", "plover", 3);
    first.source = Source::Email;
    first.entry.message_id = Some("new-1@example.com".into());
    b.store
        .ingest_email(NewEmail {
            message_id: Some("new-1@example.com".into()),
            query: ThreadQuery {
                thread_ids: vec![],
                subject_number: None,
                from: EmailAddress::parse("new@example.com").unwrap(),
            },
            thread: None,
            is_bounce: false,
            ticket: first,
            raw_compressed: b"raw".to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(b.search(&admin, "plover").await.len(), 1);
}

// ---- over HTTP

/// `GET path` with a Bearer token: (status, JSON body).
async fn get(app: &crate::helpers::TestApp, path: &str, token: &str) -> (u16, serde_json::Value) {
    let r = app
        .client
        .get(app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test]
async fn the_queue_and_counts_over_http() {
    let app = spawn_app().await;
    let (_, admin_token) = app.add_agent("boss@example.com", true, &[]).await;
    let (_, support_token) = app.add_agent("sup@example.com", false, &[1]).await;
    let mut numbers = Vec::new();
    for i in 0..5 {
        let mut body = crate::helpers::ticket(&format!("q{i}"));
        body["message"] = serde_json::json!(format!("Body q{i} printer"));
        numbers.push(app.post_json(&body).await.number());
    }
    // Found right after the 201.
    let (status, v) = get(&app, "/api/v1/tickets?q=printer", &admin_token).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tickets"].as_array().unwrap().len(), 5);
    let row = &v["tickets"][0];
    for field in [
        "number",
        "subject",
        "status",
        "priority",
        "department",
        "topic",
        "assignee",
        "user",
        "created",
        "updated",
        "last_message_at",
        "entries",
    ] {
        assert!(row.get(field).is_some(), "{field} missing in {row}");
    }
    assert!(
        row["user"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@example.com")
    );
    assert!(row["updated"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["next_cursor"], serde_json::Value::Null);
    // Pages by two.
    let mut seen = Vec::new();
    let mut path = "/api/v1/tickets?limit=2".to_string();
    loop {
        let (status, v) = get(&app, &path, &admin_token).await;
        assert_eq!(status, 200, "{v}");
        for t in v["tickets"].as_array().unwrap() {
            seen.push(t["number"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/tickets?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(sorted(seen), sorted(numbers.clone()));
    // Bad input names its field.
    for (query, field) in [
        ("limit=0", "limit"),
        ("status=pending", "status"),
        ("sort=subject", "sort"),
        ("cursor=garbage", "cursor"),
        ("department=x", "department"),
        ("q=-only", "q"),
    ] {
        let (status, v) = get(&app, &format!("/api/v1/tickets?{query}"), &admin_token).await;
        assert_eq!(status, 400, "{query}: {v}");
        assert_eq!(v["error"]["field"], field, "{query}: {v}");
    }
    // Counts.
    let (status, v) = get(&app, "/api/v1/queues", &support_token).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["open_by_department"].is_array(), "{v}");
    for field in ["mine", "unassigned", "resolved_today", "closed_today"] {
        assert!(v[field].is_i64(), "{field} in {v}");
    }
    // Without a token: 401.
    let (status, _) = get(&app, "/api/v1/tickets", "nope").await;
    assert_eq!(status, 401);
}
