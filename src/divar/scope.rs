//! OAuth scope strings: the legacy base64 resource id of 2023, the dotted scopes of 2024
//! onwards, and the `scope` parameter of an authorize URL (docs/divar-protocol.md §2.6, §3.22).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Permission of the 2023 legacy send scope (docs/divar-protocol.md §2.6).
pub const LEGACY_SEND_PERMISSION: &str = "CHAT_SEND_MESSAGE_OAUTH";

/// Everything but the RFC 3986 unreserved characters is percent-encoded, so `=` becomes
/// `%3D`, a space `%20`, and base64's `+` and `/` `%2B` and `%2F`.
const SCOPE_PARAM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The resource id of the legacy send scope: standard base64, with `=` padding, of
/// `user_id:post_token:peer_id`. `user_id` is the consenting user the message is written as,
/// `peer_id` the other party; the order matters.
pub fn legacy_send_resource_id(user_id: &str, post_token: &str, peer_id: &str) -> String {
    STANDARD.encode(format!("{user_id}:{post_token}:{peer_id}"))
}

/// The legacy send scope exactly as Divar's 2023 example writes it
/// (docs/divar-protocol.md §2.6): `CHAT_SEND_MESSAGE_OAUTH__<resource id>`.
pub fn legacy_send_scope(user_id: &str, post_token: &str, peer_id: &str) -> String {
    format!(
        "{LEGACY_SEND_PERMISSION}__{}",
        legacy_send_resource_id(user_id, post_token, peer_id)
    )
}

/// The value of the `scope` parameter of an authorize URL: the scopes separated by spaces,
/// then percent-encoded as a whole (`=` → `%3D`, space → `%20`).
pub fn authorize_scope_param<I, S>(scopes: I) -> String
where
    I: IntoIterator<Item = S>,
    S: fmt::Display,
{
    let joined = scopes
        .into_iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    utf8_percent_encode(&joined, SCOPE_PARAM).to_string()
}

/// An OAuth scope. Displayed in the current form, `PERMISSION.resource`; parsed from the
/// current form or the 2023 form `PERMISSION__resource`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `CHAT_POST_CONVERSATIONS_READ.<post_token>`: read every conversation of one post.
    PostConversationsRead(String),
    /// `CHAT_POST_CONVERSATIONS_MESSAGE_SEND.<post_token>`: send in every conversation of one
    /// post.
    PostConversationsMessageSend(String),
    /// `CONVERSATION_SEND_MESSAGE.<conversation_id>`: send in one conversation.
    ConversationSendMessage(String),
    /// `CHAT_CONVERSATION_READ.<conversation_id>`: read one conversation.
    ConversationRead(String),
    /// `CHAT_MESSAGE_SEND.<base64 resource id>` (2024): see [`legacy_send_resource_id`].
    MessageSend(String),
    /// `USER_PHONE`: the user's phone number.
    UserPhone,
    /// `USER_ID`: the user's obfuscated id.
    UserId,
    /// `USER_POSTS_GET`: the user's posts (needed for `POST_UPDATE` subscriptions).
    UserPostsGet,
    /// `offline_access`: a refresh token.
    OfflineAccess,
    /// `CHAT_SUPPLIER_ALL_CONVERSATIONS_READ`: every conversation of every post of the user.
    SupplierAllConversationsRead,
    /// `CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND`: send in any of them.
    SupplierAllConversationsMessageSend,
    /// `CHAT_BOT_USER_MESSAGE_SEND`: the chatbot may write to the user.
    BotUserMessageSend,
    /// `NOTIFICATION_ACCESS_REVOCATION`: be told when the user revokes access.
    NotificationAccessRevocation,
    /// Any other permission, kept as written (for example `CHAT_SEND_MESSAGE_OAUTH`).
    Other {
        /// The permission name.
        permission: String,
        /// The resource id, if any.
        resource: Option<String>,
    },
}

/// Resource-less scopes and their names.
const PLAIN: &[(&str, Scope)] = &[
    ("USER_PHONE", Scope::UserPhone),
    ("USER_ID", Scope::UserId),
    ("USER_POSTS_GET", Scope::UserPostsGet),
    ("offline_access", Scope::OfflineAccess),
    (
        "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ",
        Scope::SupplierAllConversationsRead,
    ),
    (
        "CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND",
        Scope::SupplierAllConversationsMessageSend,
    ),
    ("CHAT_BOT_USER_MESSAGE_SEND", Scope::BotUserMessageSend),
    (
        "NOTIFICATION_ACCESS_REVOCATION",
        Scope::NotificationAccessRevocation,
    ),
];

/// The constructor of a scope variant that holds a resource.
type WithResource = fn(String) -> Scope;

/// Scopes with a resource: the permission name and the variant's constructor.
const WITH_RESOURCE: &[(&str, WithResource)] = &[
    ("CHAT_POST_CONVERSATIONS_READ", Scope::PostConversationsRead),
    (
        "CHAT_POST_CONVERSATIONS_MESSAGE_SEND",
        Scope::PostConversationsMessageSend,
    ),
    ("CONVERSATION_SEND_MESSAGE", Scope::ConversationSendMessage),
    ("CHAT_CONVERSATION_READ", Scope::ConversationRead),
    ("CHAT_MESSAGE_SEND", Scope::MessageSend),
];

impl Scope {
    /// `CHAT_MESSAGE_SEND.<base64(user_id:post_token:peer_id)>`.
    pub fn message_send(user_id: &str, post_token: &str, peer_id: &str) -> Self {
        Self::MessageSend(legacy_send_resource_id(user_id, post_token, peer_id))
    }

    /// The permission name, for example `CHAT_POST_CONVERSATIONS_READ`.
    pub fn permission(&self) -> &str {
        match self {
            Self::PostConversationsRead(_) => "CHAT_POST_CONVERSATIONS_READ",
            Self::PostConversationsMessageSend(_) => "CHAT_POST_CONVERSATIONS_MESSAGE_SEND",
            Self::ConversationSendMessage(_) => "CONVERSATION_SEND_MESSAGE",
            Self::ConversationRead(_) => "CHAT_CONVERSATION_READ",
            Self::MessageSend(_) => "CHAT_MESSAGE_SEND",
            Self::Other { permission, .. } => permission,
            plain => PLAIN
                .iter()
                .find(|(_, s)| s == plain)
                .map(|(name, _)| *name)
                .unwrap_or_default(),
        }
    }

    /// The resource id, if the scope has one.
    pub fn resource(&self) -> Option<&str> {
        match self {
            Self::PostConversationsRead(r)
            | Self::PostConversationsMessageSend(r)
            | Self::ConversationSendMessage(r)
            | Self::ConversationRead(r)
            | Self::MessageSend(r) => Some(r),
            Self::Other { resource, .. } => resource.as_deref(),
            _ => None,
        }
    }

    /// The 2023 form, `PERMISSION__resource` (docs/divar-protocol.md §2.6, §3.22).
    pub fn to_legacy_string(&self) -> String {
        match self.resource() {
            Some(resource) => format!("{}__{resource}", self.permission()),
            None => self.permission().to_owned(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resource() {
            Some(resource) => write!(f, "{}.{resource}", self.permission()),
            None => f.write_str(self.permission()),
        }
    }
}

/// Whether `permission` is one of Divar's permissions that take a resource id.
pub fn takes_resource(permission: &str) -> bool {
    permission == LEGACY_SEND_PERMISSION || WITH_RESOURCE.iter().any(|(p, _)| *p == permission)
}

/// Checks that `scope` is one of Divar's scopes, with a well-formed resource id where its
/// permission takes one (letters, digits and `-_=+/:`, at most 256) and none where it does
/// not; the reason otherwise.
pub fn check_known(scope: &str) -> Result<Scope, String> {
    let parsed: Scope = scope.parse().map_err(|e: ParseScopeError| e.to_string())?;
    let (permission, resource) = match &parsed {
        Scope::Other {
            permission,
            resource,
        } if takes_resource(permission) => (permission.as_str(), resource.as_deref()),
        Scope::Other { permission, .. } => {
            return Err(format!("{permission} is not one of Divar's scopes"));
        }
        known => (known.permission(), known.resource()),
    };
    match resource {
        None if takes_resource(permission) => Err(format!("{permission} needs a resource id")),
        Some(r)
            if r.len() > 256
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=+/:".contains(&b)) =>
        {
            Err(format!("{permission}: the resource id is not well-formed"))
        }
        _ => Ok(parsed),
    }
}

/// A scope string that cannot be a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseScopeError {
    /// The string is empty.
    #[error("empty scope")]
    Empty,
    /// The string holds whitespace: it is a list of scopes, not one.
    #[error("a scope holds no whitespace")]
    Whitespace,
    /// Nothing before the separator.
    #[error("scope has no permission name")]
    NoPermission,
    /// A separator with nothing after it.
    #[error("scope {0} has a separator but no resource")]
    EmptyResource(String),
}

impl FromStr for Scope {
    type Err = ParseScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseScopeError::Empty);
        }
        if s.contains(char::is_whitespace) {
            return Err(ParseScopeError::Whitespace);
        }
        // Permission names hold neither `.` nor `__`, so the first of them is the separator.
        let split = match (s.find('.'), s.find("__")) {
            (Some(dot), Some(double)) if double < dot => Some((double, 2)),
            (Some(dot), _) => Some((dot, 1)),
            (None, Some(double)) => Some((double, 2)),
            (None, None) => None,
        };
        let (permission, resource) = match split {
            Some((at, len)) => (&s[..at], Some(&s[at + len..])),
            None => (s, None),
        };
        if permission.is_empty() {
            return Err(ParseScopeError::NoPermission);
        }
        if resource == Some("") {
            return Err(ParseScopeError::EmptyResource(permission.to_owned()));
        }
        if let Some(resource) = resource
            && let Some((_, make)) = WITH_RESOURCE.iter().find(|(p, _)| *p == permission)
        {
            return Ok(make(resource.to_owned()));
        }
        // From 2024-05-23 to 2024-06-01 a plain scope was written `USER_PHONE.USER_PHONE`.
        if resource.is_none() || resource == Some(permission) {
            if let Some((_, scope)) = PLAIN.iter().find(|(p, _)| *p == permission) {
                return Ok(scope.clone());
            }
        }
        Ok(Self::Other {
            permission: permission.to_owned(),
            resource: resource.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SCOPE: &str = "CHAT_SEND_MESSAGE_OAUTH__ZTliYThhODEtOTU4My00ZjdjLWFmNTQtYjA3ZGYwODlkOTcxOkFaZjNVcXIzOjE2OTcwMDRmLWU5MDItNDRjMi1iYmJlLWJmOGUyMGQ1NGJmZg==";

    #[test]
    fn legacy_send_scope_reproduces_the_seed_example() {
        let scope = legacy_send_scope(
            "e9ba8a81-9583-4f7c-af54-b07df089d971",
            "AZf3Uqr3",
            "1697004f-e902-44c2-bbbe-bf8e20d54bff",
        );
        assert_eq!(scope, SEED_SCOPE);
    }

    #[test]
    fn legacy_scope_parses_and_keeps_its_resource() {
        let scope: Scope = SEED_SCOPE.parse().unwrap();
        assert_eq!(scope.permission(), LEGACY_SEND_PERMISSION);
        assert!(scope.resource().unwrap().ends_with("NGJmZg=="));
        assert_eq!(scope.to_legacy_string(), SEED_SCOPE);
        assert!(
            scope
                .to_string()
                .starts_with("CHAT_SEND_MESSAGE_OAUTH.ZTli")
        );
    }

    #[test]
    fn both_separators_parse_to_the_same_scope() {
        let dot: Scope = "CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q".parse().unwrap();
        let double: Scope = "CHAT_POST_CONVERSATIONS_READ__AZx7Kp2Q".parse().unwrap();
        assert_eq!(dot, Scope::PostConversationsRead("AZx7Kp2Q".into()));
        assert_eq!(dot, double);
        assert_eq!(double.to_string(), "CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q");
    }

    #[test]
    fn plain_scopes_round_trip_and_accept_the_2024_doubled_form() {
        for (name, scope) in PLAIN {
            assert_eq!(&name.parse::<Scope>().unwrap(), scope);
            assert_eq!(scope.to_string(), *name);
        }
        assert_eq!(
            "USER_PHONE.USER_PHONE".parse::<Scope>().unwrap(),
            Scope::UserPhone
        );
    }

    #[test]
    fn unknown_permissions_are_kept() {
        let scope: Scope = "POST_ADDON_CREATE.AZTH74V2".parse().unwrap();
        assert_eq!(
            scope,
            Scope::Other {
                permission: "POST_ADDON_CREATE".into(),
                resource: Some("AZTH74V2".into())
            }
        );
        assert_eq!(scope.to_string(), "POST_ADDON_CREATE.AZTH74V2");
    }

    #[test]
    fn malformed_scopes_are_rejected() {
        assert_eq!("".parse::<Scope>(), Err(ParseScopeError::Empty));
        assert_eq!(
            "USER_ID USER_PHONE".parse::<Scope>(),
            Err(ParseScopeError::Whitespace)
        );
        assert_eq!(".x".parse::<Scope>(), Err(ParseScopeError::NoPermission));
        assert!(matches!(
            "CHAT_MESSAGE_SEND.".parse::<Scope>(),
            Err(ParseScopeError::EmptyResource(_))
        ));
    }

    #[test]
    fn authorize_param_joins_with_encoded_spaces() {
        let param = authorize_scope_param([
            Scope::PostConversationsRead("AZx7Kp2Q".into()),
            Scope::MessageSend("a+b/c==".into()),
            Scope::OfflineAccess,
        ]);
        assert_eq!(
            param,
            "CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q%20CHAT_MESSAGE_SEND.a%2Bb%2Fc%3D%3D%20offline_access"
        );
    }

    #[test]
    fn every_fixture_vector_matches() {
        let file: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/legacy_oauth_scope_vectors.json"
        ))
        .unwrap();
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_owned);
        let vectors = file["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 4);
        for v in vectors {
            let raw = text(v, "raw").unwrap();
            let parts: Vec<&str> = raw.splitn(3, ':').collect();
            let (user, post, peer) = (parts[0], parts[1], parts[2]);
            if let Some(user_id) = text(v, "user_id") {
                assert_eq!(
                    (user, post, peer),
                    (
                        user_id.as_str(),
                        &*text(v, "post_token").unwrap(),
                        &*text(v, "peer_id").unwrap()
                    )
                );
            }
            let id = legacy_send_resource_id(user, post, peer);
            assert_eq!(Some(&id), text(v, "resource_id_std").as_ref(), "{raw}");
            if let Some(scope) = text(v, "scope_2023_double_underscore") {
                assert_eq!(legacy_send_scope(user, post, peer), scope);
                assert_eq!(scope.parse::<Scope>().unwrap().resource(), Some(&*id));
            }
            if let Some(scope) = text(v, "scope_2024_dot") {
                assert_eq!(Scope::message_send(user, post, peer).to_string(), scope);
                assert_eq!(
                    scope.parse::<Scope>().unwrap(),
                    Scope::MessageSend(id.clone())
                );
            }
            if let Some(encoded) = text(v, "scope_query_param_encoded") {
                let scopes = [
                    Scope::message_send(user, post, peer),
                    Scope::PostConversationsRead(post.to_owned()),
                ];
                assert_eq!(authorize_scope_param(&scopes), encoded);
            }
        }
        for (key, value) in file["other_scope_strings"].as_object().unwrap() {
            let value = value.as_str().unwrap();
            if value.contains(' ') {
                continue; // a description, not a scope string
            }
            let scope: Scope = value.parse().unwrap();
            assert!(!matches!(scope, Scope::Other { .. }), "{key}: {value}");
            assert_eq!(scope.to_string(), value, "{key}");
        }
    }
}
