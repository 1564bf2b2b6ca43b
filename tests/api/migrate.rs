//! `oxidesk migrate-data`: a SQLite helpdesk copied into PostgreSQL (or,
//! without TEST_DATABASE_URL, into another SQLite file), checked, and
//! usable afterwards.

use serde_json::json;

use crate::helpers::{
    drop_test_database, spawn_app_full, test_database, ticket, with_staff_alerts,
};

/// A ticket view with the Message-IDs of its queued mail blanked.
fn without_waiting_message_ids(mut ticket: serde_json::Value) -> serde_json::Value {
    for note in ticket["notifications"].as_array_mut().unwrap() {
        if note["state"] == "queued" {
            note["message_id"] = serde_json::Value::Null;
        }
    }
    ticket
}

#[tokio::test]
async fn migrate_data_copies_everything_and_checks_it() {
    let src_dir = tempfile::tempdir().unwrap();
    let src_url = format!("sqlite://{}", src_dir.path().join("source.db").display());
    let app = spawn_app_full(
        "",
        &[
            ("OXIDESK__DATABASE", src_url.as_str()),
            ("OXIDESK__MAIL__ENABLED", "false"),
        ],
        &with_staff_alerts,
    )
    .await;
    let mut numbers = Vec::new();
    for i in 0..30 {
        let mut t = ticket(&format!("mig{i}"));
        t["attachments"] = json!([{"a.txt": "data:text/plain,same"}, {"b.bin": format!("data:application/octet-stream;base64,AAE{}", i % 4)}]);
        if i % 5 == 0 {
            t["topicId"] = json!(20);
            t["serial_number"] = json!(format!("SN{i}"));
            t["purchase_date"] = json!("2024-03-05");
        }
        numbers.push(app.post_json(&t).await.number());
    }
    let mail = "From: Mailer <mig-mail@example.com>\r\nSubject: by mail\r\nMessage-ID: <mig@x>\r\n\r\nhello\r\n";
    numbers.push(
        app.post_raw("/api/tickets.email", mail.as_bytes().to_vec())
            .await
            .number(),
    );
    let reply = "From: Mailer <mig-mail@example.com>\r\nSubject: Re\r\nMessage-ID: <mig-r@x>\r\nIn-Reply-To: <mig@x>\r\n\r\nmore\r\n";
    app.post_raw("/api/tickets.email", reply.as_bytes().to_vec())
        .await
        .number();
    let key = app.key.clone();
    let mut before = Vec::new();
    for n in &numbers {
        before.push(app.get_ticket(n).await);
    }
    let config_path = app.config_path.clone();
    let (_, unused_pg, _keep) = app.stop().await;

    let dst_dir = tempfile::tempdir().unwrap();
    let (dst_url, pg_name) = test_database(&dst_dir.path().join("target.db")).await;
    let migrate = |to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"))
            .arg("--config")
            .arg(&config_path)
            .args([
                "migrate-data",
                "--from",
                &src_url,
                "--to",
                to,
                // Small: every table of more than two rows resumes after
                // a key (integer, text, bytes and the three-column one)
                // and imports several rows a statement.
                "--batch",
                "2",
            ])
            .env_remove("OXIDESK_CONFIG")
            .output()
            .unwrap()
    };
    let out = migrate(&dst_url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("every table matches"), "{stdout}");
    // A second run finds data in the target and refuses.
    assert!(!migrate(&dst_url).status.success());

    // The target serves the same tickets, the old key, and new tickets.
    let target = spawn_app_full(
        "",
        &[
            ("OXIDESK__DATABASE", dst_url.as_str()),
            ("OXIDESK__MAIL__ENABLED", "false"),
        ],
        &with_staff_alerts,
    )
    .await;
    for (n, want) in numbers.iter().zip(&before) {
        let got = target.get_ticket(n).await;
        // Mail still waiting in the source has no Message-ID yet; the copy
        // hands it to the outbox, which gives it one.
        for note in got["notifications"].as_array().unwrap() {
            assert!(note["message_id"].is_string(), "{note}");
        }
        assert_eq!(
            without_waiting_message_ids(got),
            without_waiting_message_ids(want.clone()),
            "ticket {n} differs"
        );
    }
    let r = target
        .send(
            reqwest::Method::POST,
            "/api/tickets.json",
            Some(&key),
            ticket("after").to_string().into_bytes(),
            &[],
        )
        .await;
    let new = r.number();
    assert!(!numbers.contains(&new));
    assert_eq!(
        target.get_ticket(&new).await["subject"],
        json!("Subject after")
    );
    drop(target);
    for name in pg_name.into_iter().chain(unused_pg) {
        drop_test_database(&name);
    }
}
