//! Integration tests: each starts the real app on 127.0.0.1:0 against a fresh database,
//! SQLite or PostgreSQL, and drives it over HTTP.

#[macro_use]
mod helpers;

mod api;
mod api_limits;
mod backup;
mod busy_sqlite;
mod callback;
mod cli;
mod client;
mod config;
mod conventions;
mod forward;
mod hostile;
mod inbox;
mod lifecycle;
mod migration;
mod oauth;
mod ops;
mod outage;
mod process;
mod proxy;
mod running;
mod store_batch;
mod webhook_events;
mod webhook_legacy;
mod webhook_rules;
mod webhook_scope;
