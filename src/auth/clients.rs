//! Who a read-API request comes from: a client with its scopes and, when it is limited to
//! some posts, those posts. Built once at start-up from `api.tokens` and `api.clients`.

use crate::config::ClientSettings;
use crate::error::AppError;

/// What a client may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Conversations, messages, registrations and the live stream.
    Messages,
    /// The event log.
    Events,
    /// The click log.
    Clicks,
    /// A message's body as received (`include=raw`; needs `pii` too).
    Raw,
    /// Phone numbers and contact names unmasked.
    Pii,
    /// Forwarding's endpoints, attempts and dead letters.
    Forwarding,
    /// Rejected deliveries.
    Rejected,
}

impl Scope {
    /// Every scope, in the order of [`crate::config::SCOPES`].
    pub const ALL: [Scope; 7] = [
        Scope::Messages,
        Scope::Events,
        Scope::Clicks,
        Scope::Raw,
        Scope::Pii,
        Scope::Forwarding,
        Scope::Rejected,
    ];

    /// Its name in the settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Messages => "messages",
            Scope::Events => "events",
            Scope::Clicks => "clicks",
            Scope::Raw => "raw",
            Scope::Pii => "pii",
            Scope::Forwarding => "forwarding",
            Scope::Rejected => "rejected",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A configured client of the read API.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its position among the effective clients (rate limits and stream slots).
    pub index: usize,
    /// Its name, for logs.
    pub name: String,
    scopes: u8,
    posts: Option<Vec<String>>,
}

impl Client {
    /// The client of a (validated) settings entry.
    pub fn new(index: usize, settings: &ClientSettings) -> Self {
        let scopes = Scope::ALL
            .iter()
            .filter(|s| settings.scopes.iter().any(|n| n == s.as_str()))
            .fold(0, |bits, s| bits | s.bit());
        Client {
            index,
            name: settings.name.clone(),
            scopes,
            posts: settings.post_tokens.clone(),
        }
    }

    /// Whether it has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes & scope.bit() != 0
    }

    /// 403 naming the scope when it lacks it.
    pub fn require(&self, scope: Scope, what: &str) -> Result<(), AppError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "{what} needs the scope {:?}, which client {:?} does not have",
                scope.as_str(),
                self.name
            )))
        }
    }

    /// The posts it is limited to; `None`: every post.
    pub fn posts(&self) -> Option<&[String]> {
        self.posts.as_deref()
    }

    /// Whether it may see a record of `post` (a record of no post only when it is not
    /// limited to some posts).
    pub fn may_see(&self, post: Option<&str>) -> bool {
        match (&self.posts, post) {
            (None, _) => true,
            (Some(posts), Some(post)) => posts.iter().any(|p| p == post),
            (Some(_), None) => false,
        }
    }

    /// Whether phone numbers and contact names are shown whole.
    pub fn pii(&self) -> bool {
        self.has(Scope::Pii)
    }
}
