//! Unit tests of the PostgreSQL backend that need no server.
use super::*;

#[test]
fn urls_lose_their_passwords_in_messages() {
    assert_eq!(
        redacted_url("postgres://u:secret@db:5432/x?sslmode=require"),
        "postgres://u:***@db:5432/x?sslmode=require"
    );
    assert_eq!(redacted_url("postgres://u@db/x"), "postgres://u@db/x");
    assert_eq!(
        redacted_url("postgres://db/x?password=s"),
        "postgres://db/x"
    );
    assert_eq!(
        redacted_url("postgres://u@db/x?password=s"),
        "postgres://u@db/x"
    );
    assert_eq!(
        redacted_url("postgres://a:b@c@db/x"),
        "postgres://a:***@db/x"
    );
}

#[test]
fn tls_is_dropped_only_for_this_machine_and_only_when_unasked() {
    let cases = [
        ("postgres://u@127.0.0.1:5432/db", false, true),
        ("postgres://u@127.0.0.2/db", false, true),
        ("postgres://u@[::1]/db", false, true),
        ("postgres://u@localhost/db", false, true),
        (
            "postgres://u@localhost/db?host=/var/run/postgresql",
            false,
            true,
        ),
        ("postgres://u@127.0.0.1/db?sslmode=require", false, false),
        (
            "postgres://u@127.0.0.1/db?application_name=x&sslmode=prefer",
            false,
            false,
        ),
        ("postgres://u@127.0.0.1/db", true, false),
        ("postgres://u@db.example.com/db", false, false),
        ("postgres://u@10.0.0.5/db", false, false),
    ];
    for (url, env, expected) in cases {
        let options: PgConnectOptions = url.parse().unwrap();
        assert_eq!(tls_pointless(url, &options, env), expected, "{url}");
    }
}
