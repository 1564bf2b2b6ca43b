use std::collections::HashSet;
use std::sync::Arc;

use crate::helpers::{spawn_app, spawn_app_env, ticket};

#[tokio::test]
async fn concurrent_creations_get_unique_numbers_and_all_are_stored() {
    let app = Arc::new(spawn_app().await);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.post_json(&ticket(&format!("conc{i}"))).await.number()
        }));
    }
    let mut numbers = HashSet::new();
    for t in tasks {
        assert!(numbers.insert(t.await.unwrap()), "duplicate number");
    }
    for n in &numbers {
        assert!(
            app.store
                .ticket_exists(oxidesk::storage::TicketNumber::parse(n).unwrap())
                .await
                .unwrap(),
            "{n} missing"
        );
    }
    assert_eq!(app.count("tickets").await, 200);
}

#[tokio::test]
async fn a_created_ticket_survives_a_restart() {
    let app = spawn_app().await;
    let n = app.post_json(&ticket("durable")).await.number();
    let (config, pg_name, _dir) = app.stop().await;
    let reopened = oxidesk::cli::open_store(&config).await.unwrap();
    let t = reopened
        .load_ticket(oxidesk::storage::TicketNumber::parse(&n).unwrap())
        .await
        .unwrap()
        .expect("ticket after reopen");
    assert_eq!(t.subject, "Subject durable");
    drop(reopened);
    if let Some(name) = pg_name {
        crate::helpers::drop_test_database(&name);
    }
}

#[tokio::test]
async fn sequential_numbers_follow_the_pattern() {
    let app = spawn_app_env(
        "",
        &[
            ("OXIDESK__TICKETS__NUMBER_FORMAT", "HD-###"),
            ("OXIDESK__TICKETS__NUMBER_SEQUENCE", "sequential"),
        ],
    )
    .await;
    let a = app.post_json(&ticket("s1")).await.number();
    let b = app.post_json(&ticket("s2")).await.number();
    assert_eq!((a.as_str(), b.as_str()), ("HD-001", "HD-002"));
}

#[tokio::test]
async fn the_store_upkeep_moves_the_search_index_pending_entries_off_the_request_path() {
    let app = spawn_app().await;
    for i in 0..20 {
        app.post_json(&ticket(&format!("upkeep{i}"))).await.number();
    }
    let first = app.store.upkeep().await.unwrap();
    let again = app.store.upkeep().await.unwrap();
    if app.config.database.starts_with("postgres") {
        // Twenty tickets' words wait in the GIN index's pending list
        // until a round moves them; then nothing is left to move.
        assert!(first > 0, "pending pages moved: {first}");
    } else {
        assert_eq!(first, 0, "SQLite has nothing to do");
    }
    assert_eq!(again, 0);
}
