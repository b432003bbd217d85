//! Section `callback`: the hosts a redirect may reach, the signed state, and the redirect
//! rules. Matching and template checks live with the rules in `crate::callback::rules`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Section `callback`.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackSettings {
    /// Hosts a redirect may point to (`example.ir`, or `*.example.ir` for its subdomains).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Used when no rule matches; when empty, an unmatched click gets an error reply.
    pub fallback_url: Option<String>,
    /// Key of the HMAC-SHA256 `state` parameter; no `state` is added when unset.
    pub signing_key: Option<secrecy::SecretString>,
    /// How long a `state` stays valid, in seconds.
    pub state_ttl_secs: u64,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
}

/// One rule of `callback.rules`.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleSettings {
    /// A name for logs and the click log.
    pub name: String,
    /// Match the click's `source` (v2: `CHAT_MESSAGE_ACTION`, `POST_ADDON`, ...; dynamic
    /// action: the touchpoint), case-insensitively.
    pub source: Option<String>,
    /// Match the kind of click: `legacy`, `v2` or `dynamic_action`.
    pub version: Option<String>,
    /// Match the post.
    pub post_token: Option<String>,
    /// Match the clicking side: `supply` (the post owner) or `demand`.
    pub side: Option<String>,
    /// Match keys of the button's data (`provider_data` / `extra_data`), compared as text.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// The target: a URL template with `{post_token}`, `{conversation_id}`, `{user_id}`,
    /// `{peer_id}`, `{side}`, `{source}` and `{data.KEY}` placeholders.
    pub url: Option<String>,
    /// A literal text for the dynamic-action reply.
    pub text_message: Option<String>,
}
