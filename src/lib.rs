//! kenar-hook: a webhook receiver for the chat platform of Divar's open platform (Kenar).
//!
//! Divar POSTs chat messages and events to [`ingest`]; they are authenticated ([`auth`]),
//! parsed tolerantly ([`divar`]), committed through a batch writer to the [`store`] and only
//! then answered 200.
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod callback;
pub mod commands;
pub mod config;
pub mod divar;
pub mod error;
pub mod forward;
pub(crate) mod health;
pub mod inbox;
pub mod ingest;
pub(crate) mod items;
pub mod notify;
pub mod oauth;
pub mod outbox;
pub mod pii;
pub mod private_file;
pub mod retention;
pub(crate) mod server;
pub mod state;
pub mod store;
pub mod telemetry;
