//! Integration tests: real HTTP over loopback against a real SQLite file.

mod helpers;

mod auth;
mod cli;
mod email;
mod json;
mod limits;
mod mail_corpus;

mod routes;
mod storage;
mod xml;
