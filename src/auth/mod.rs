//! Authentication, in one room: the app's identification keys ([`keys`]), the legacy
//! registrations' keys ([`registrations`]), failed authentications limited per client
//! ([`limiter`]), and a Divar request's authentication decision ([`request`]): its key checked
//! before a byte of its body is read, and what that key may vouch for once the body is known.

pub mod clients;
mod keys;
mod limiter;
mod registrations;
pub(crate) mod request;
mod sources;

pub use clients::{Client, Scope};
pub use keys::{
    KeySet, authorization, cookie, digest, identification_keys, is_random_token, random_token,
    stored_digest,
};
pub use limiter::{Failures, PerClient, rate_limited};
pub use registrations::{REGISTRATION_REFRESH, RegistrationKeys};
pub use sources::divar_only;
