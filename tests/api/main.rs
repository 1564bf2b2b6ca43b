//! Integration tests: real HTTP over loopback against a real SQLite file.

mod helpers;
// The SMTP sink is a workspace crate (crates/smtp-sink) shared with the
// benchmark; the tests keep naming it `crate::smtp_sink`.
use oxidesk_smtp_sink as smtp_sink;

mod auth;
mod cli;
mod email;
mod hardening_conn;
mod hardening_email;
mod hardening_shapes;
mod idempotency;
mod instances;
mod json;
mod limits;
mod mail_corpus;
mod mail_safety;
mod migrate;

mod notify;
mod openapi;
mod ops;
mod outbox_breaker;
mod queue;
mod routes;
mod staff_auth;
mod staff_work;
mod storage;
mod store_suite;
mod telemetry;
mod web;
mod xml;
