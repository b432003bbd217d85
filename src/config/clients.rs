//! `[[api.clients]]`: named credentials of the read API, each with its scopes and,
//! optionally, the posts it may see. The plain `api.tokens` list stays: each token is a
//! client with every scope, named `token-1`, `token-2`, ... in order.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// What a client's `scopes` may name.
pub const SCOPES: &[&str] = &[
    "messages",
    "events",
    "clicks",
    "raw",
    "pii",
    "forwarding",
    "rejected",
];

/// Scopes that show records of every post: a client limited to some posts cannot have them.
const ALL_POSTS_SCOPES: &[&str] = &["forwarding", "rejected"];

/// The keys of one `[[api.clients]]` entry.
pub const CLIENT_KEYS: &[&str] = &["name", "token", "token_file", "scopes", "post_tokens"];

/// One entry of `api.clients`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientSettings {
    /// Unique; shown in the request's log line (never the token).
    pub name: String,
    /// The bearer token.
    pub token: SecretString,
    /// What it may read: names from [`SCOPES`].
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Only these posts' conversations, messages, clicks and events (all when unset).
    pub post_tokens: Option<Vec<String>>,
}

/// Checks the clients, and the tokens of `api.tokens` against them: `Err((key, problem))`.
pub fn validate(
    tokens: &[SecretString],
    clients: &[ClientSettings],
) -> Result<(), (String, String)> {
    for (i, c) in clients.iter().enumerate() {
        let key = |field: &str| format!("api.clients[{i}].{field}");
        super::check_name(&c.name).map_err(|p| (key("name"), p))?;
        let taken_by_token = (1..=tokens.len()).any(|n| c.name == format!("token-{n}"));
        if taken_by_token || clients[..i].iter().any(|o| o.name == c.name) {
            return Err((
                key("name"),
                format!(
                    "{:?} is used twice (api.tokens are named token-1, token-2, ...)",
                    c.name
                ),
            ));
        }
        if c.token.expose_secret().trim().is_empty() {
            return Err((key("token"), "must not be empty".to_owned()));
        }
        if c.scopes.is_empty() {
            return Err((
                key("scopes"),
                format!("must name at least one of {}", SCOPES.join(", ")),
            ));
        }
        if let Some(bad) = c.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err((
                key("scopes"),
                format!("got {bad:?}; expected some of {}", SCOPES.join(", ")),
            ));
        }
        if let Some(posts) = &c.post_tokens {
            if posts.is_empty() || posts.iter().any(|p| p.trim().is_empty()) {
                return Err((
                    key("post_tokens"),
                    "must name at least one post, none empty; leave it out for every post"
                        .to_owned(),
                ));
            }
            if let Some(wide) = c
                .scopes
                .iter()
                .find(|s| ALL_POSTS_SCOPES.contains(&s.as_str()))
            {
                return Err((
                    key("scopes"),
                    format!("{wide:?} shows records of every post; it cannot go with post_tokens"),
                ));
            }
        }
    }
    // A token reads people's chats: it must not be guessable.
    for (i, t) in tokens.iter().enumerate() {
        weak_token(format!("api.tokens[{i}]"), t)?;
    }
    for (i, c) in clients.iter().enumerate() {
        weak_token(format!("api.clients[{i}].token"), &c.token)?;
    }
    // Duplicate tokens would make which client a request is unknowable.
    let all: Vec<&str> = tokens
        .iter()
        .chain(clients.iter().map(|c| &c.token))
        .map(|t| t.expose_secret())
        .collect();
    for (i, t) in all.iter().enumerate() {
        if all[..i].contains(t) {
            let key = if i < tokens.len() {
                format!("api.tokens[{i}]")
            } else {
                format!("api.clients[{}].token", i - tokens.len())
            };
            return Err((
                key,
                "the same token is given to another client; each needs its own".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Refuses a token shorter than [`super::MIN_KEY_CHARS`], naming its key, never its value.
fn weak_token(key: String, token: &SecretString) -> Result<(), (String, String)> {
    super::strong_enough(token.expose_secret(), "token").map_err(|problem| (key, problem))
}

/// Every client of the API: `api.tokens` first (as `token-1`, ... with every scope), then
/// `api.clients`.
pub fn effective(tokens: &[SecretString], clients: &[ClientSettings]) -> Vec<ClientSettings> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, token)| ClientSettings {
            name: format!("token-{}", i + 1),
            token: token.clone(),
            scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            post_tokens: None,
        })
        .chain(clients.iter().cloned())
        .collect()
}
