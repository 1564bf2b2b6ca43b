//! Two oxidesk processes on one database (PostgreSQL with
//! TEST_DATABASE_URL, else one SQLite file): mixed load to both, with the
//! same Message-ID sent to both at once.

use std::collections::{HashMap, HashSet};
use std::process::Child;

use crate::helpers::{
    cli_key_add, drop_test_database, fixture_config_text, serve_process, test_database, ticket,
};

#[tokio::test]
async fn two_instances_share_one_database_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = test_database(&dir.path().join("shared.db")).await;
    let config = dir.path().join("shared.toml");
    std::fs::write(
        &config,
        format!("database = \"{database}\"\n{}", fixture_config_text()),
    )
    .unwrap();
    let key = cli_key_add(&config);
    let (mut servers, addrs): (Vec<Child>, Vec<_>) = (0..2)
        .map(|_| serve_process(&config, &[("OXIDESK__MAIL__ENABLED", "false".into())]))
        .unzip();

    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..120usize {
        let (client, key) = (client.clone(), key.clone());
        let addr = addrs[i % 2];
        tasks.push(tokio::spawn(async move {
            let (path, body) = match i % 3 {
                0 => ("xml", format!("<ticket><name>X {i}</name><email>inst-x{i}@example.com</email><subject>xml {i}</subject><message>m</message></ticket>")),
                _ => ("json", ticket(&format!("inst{i}")).to_string()),
            };
            let r = client
                .post(format!("http://{addr}/api/tickets.{path}"))
                .header("X-API-Key", key)
                .body(body)
                .send()
                .await
                .unwrap();
            (None::<usize>, r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    // Ten messages, each sent to both instances at the same moment.
    for m in 0..10usize {
        let mail = format!(
            "From: Twin <twin{m}@example.com>\r\nTo: support@example.com\r\nSubject: Twin {m}\r\n\
             Message-ID: <twin-{m}@example.com>\r\nContent-Type: text/plain\r\n\r\nsame message\r\n"
        );
        for &addr in &addrs {
            let (client, key, mail) = (client.clone(), key.clone(), mail.clone());
            tasks.push(tokio::spawn(async move {
                let r = client
                    .post(format!("http://{addr}/api/tickets.email"))
                    .header("X-API-Key", key)
                    .body(mail)
                    .send()
                    .await
                    .unwrap();
                (Some(m), r.status().as_u16(), r.text().await.unwrap())
            }));
        }
    }
    let mut numbers = HashSet::new();
    let mut twins: HashMap<usize, HashSet<String>> = HashMap::new();
    for t in tasks {
        let (twin, status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        let n = body.trim().to_string();
        match twin {
            Some(m) => {
                twins.entry(m).or_default().insert(n);
            }
            None => assert!(numbers.insert(n), "a number was given twice"),
        }
    }
    for (m, ns) in &twins {
        assert_eq!(ns.len(), 1, "message {m} made {ns:?}");
        assert!(!numbers.contains(ns.iter().next().unwrap()));
    }
    for s in &mut servers {
        s.kill().unwrap();
        s.wait().unwrap();
    }
    // Every 201 is in the database once: 120 + 10 tickets.
    let cfg = oxidesk::config::Config::load(Some(&config), std::iter::empty()).unwrap();
    let store = oxidesk::cli::open_store(&cfg).await.unwrap();
    let counts: HashMap<_, _> = store.counts().await.unwrap().into_iter().collect();
    assert_eq!(counts["tickets"], 130);
    assert_eq!(counts["thread_entries"], 130);
    for n in numbers.iter().chain(twins.values().flatten()) {
        assert!(
            store
                .ticket_exists(oxidesk::storage::TicketNumber::parse(n).unwrap())
                .await
                .unwrap(),
            "{n} missing"
        );
    }
    drop(store);
    if let Some(name) = pg_name {
        drop_test_database(&name);
    }
}

/// oxidesk's PostgreSQL sessions plan without parallel workers and with
/// their statement timeout (set on every new connection). PostgreSQL
/// only: with SQLite there are no such sessions.
#[tokio::test]
async fn postgres_sessions_run_without_parallel_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = test_database(&dir.path().join("unused.db")).await;
    let Some(name) = pg_name else {
        return;
    };
    let settings = oxidesk::storage::postgres::PgSettings {
        max_connections: 2,
        statement_timeout_ms: 4321,
        connect_retry_secs: 5,
        acquire_timeout_ms: 5000,
        message_domain: "example.com".into(),
        create_schema: true,
    };
    let numbers = oxidesk::storage::NumberPolicy {
        format: "######".into(),
        sequential: false,
        widen_at: 0.5,
        widened: Default::default(),
    };
    let store = oxidesk::storage::postgres::PgStore::open(&database, numbers, &settings)
        .await
        .unwrap();
    assert_eq!(
        store
            .session_setting("max_parallel_workers_per_gather")
            .await
            .unwrap(),
        "0"
    );
    assert_eq!(
        store.session_setting("statement_timeout").await.unwrap(),
        "4321ms"
    );
    drop(store);
    drop_test_database(&name);
}
