//! Integration tests: real HTTP over loopback against a real SQLite file.

mod helpers;

mod auth;
mod cli;
mod email;
mod instances;
mod json;
mod limits;
mod mail_corpus;
mod mail_safety;
mod migrate;

mod notify;
mod routes;
mod smtp_sink;
mod storage;
mod store_suite;
mod xml;
