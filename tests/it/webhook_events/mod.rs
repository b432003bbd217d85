//! The current events webhook: every message type and event fixture, field by field.

mod events;
mod messages;
