//! Divar's protocol only: wire types and tolerant parsing of what Divar sends, the client for
//! what we send to Divar, and OAuth scope strings. Nothing here knows about our HTTP server
//! or database.

pub(crate) mod inbound;
pub(crate) mod json;
pub(crate) mod lenient;
pub(crate) mod oauth;
pub mod outbound;
pub mod scope;
pub(crate) mod time;
