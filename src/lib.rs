//! oxidesk: a helpdesk server whose front door is osTicket's ticket API.
//!
//! * [`config`] — the TOML configuration and its stock defaults
//! * [`error`] — `ApiError`, the only type that becomes an HTTP error
//! * [`app`] — state, router, `serve`
//! * [`http`] — handlers and the client-address rule
//! * [`intake`] — pure decoding of request bodies into a `TicketDraft`
//! * [`domain`] — forms, field types, the create-ticket use case, API keys
//! * [`storage`] — the `Store` trait and the SQLite backend
//! * [`mail_out`] — autoresponses and alerts: outbox rendering and SMTP sender
//! * [`web`] — the staff web interface at `/scp/` (pages, templates, static files)
//! * [`telemetry`] — Prometheus metrics: recorder, names, recording helpers
//! * [`cli`] — `serve`, `key`, `ticket`, `config check`
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod intake;
pub mod mail_out;
pub mod storage;
pub mod telemetry;
pub mod web;
