//! Divar's protocol only: wire types and tolerant parsing of what Divar sends. Nothing here
//! knows about HTTP servers or databases.

pub mod inbound;
pub mod json;
pub mod lenient;
pub mod time;
