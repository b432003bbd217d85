//! Query parameters, parsed strictly: a bad value is a 400 naming the parameter.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::error::AppError;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit`.
pub const MAX_LIMIT: i64 = 500;

/// Message types a `type` filter may name.
pub const MESSAGE_TYPES: &[&str] = &[
    "TEXT", "IMAGE", "FILE", "VOICE", "LOCATION", "VIDEO", "CONTACT",
];

/// The query string of a request.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

fn invalid(name: &str, message: String) -> AppError {
    AppError::InvalidParameter {
        name: name.to_owned(),
        message: format!("{name}: {message}"),
    }
}

/// The parameters of the message lists.
const MESSAGE_LIST: &[&str] = &[
    "conversation_id",
    "post_token",
    "type",
    "sender_side",
    "since",
    "until",
    "q",
    "order",
    "limit",
    "cursor",
];

impl Params {
    /// The query string, refused when it names a parameter the route does not take: a
    /// misspelt filter must not silently return everything.
    pub fn only(params: HashMap<String, String>, allowed: &[&str]) -> Result<Params, AppError> {
        let mut unknown: Vec<&String> = params
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(Params(params)),
            Some(name) => {
                let known = if allowed.is_empty() {
                    "this route takes no parameters".to_owned()
                } else {
                    format!("known: {}", allowed.join(", "))
                };
                Err(invalid(name, format!("unknown parameter ({known})")))
            }
        }
    }

    /// [`Params::only`] for the message lists.
    pub fn message_list(params: HashMap<String, String>) -> Result<Params, AppError> {
        Self::only(params, MESSAGE_LIST)
    }

    /// A non-empty text value.
    pub fn text(&self, name: &str) -> Result<Option<String>, AppError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) if v.is_empty() => Err(invalid(name, "must not be empty".into())),
            Some(v) => Ok(Some(v.clone())),
        }
    }

    /// An RFC 3339 time.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, AppError> {
        self.text(name)?
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| invalid(name, format!("{v:?} is not an RFC 3339 time")))
            })
            .transpose()
    }

    /// `limit`: 1 to 500, default 50.
    pub fn limit(&self) -> Result<i64, AppError> {
        match self.text("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            },
        }
    }

    /// A message `type`, upper-cased; one of [`MESSAGE_TYPES`].
    pub fn message_type(&self) -> Result<Option<String>, AppError> {
        self.text("type")?
            .map(|v| {
                let up = v.to_ascii_uppercase();
                if MESSAGE_TYPES.contains(&up.as_str()) {
                    Ok(up)
                } else {
                    Err(invalid(
                        "type",
                        format!(
                            "unknown message type {v:?}; one of {}",
                            MESSAGE_TYPES.join(", ")
                        ),
                    ))
                }
            })
            .transpose()
    }

    /// An event `type`: an upper-case identifier such as `POST_UPDATE`.
    pub fn event_type(&self) -> Result<Option<String>, AppError> {
        self.text("type")?
            .map(|v| {
                let up = v.to_ascii_uppercase();
                let ok = up.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && up
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if ok {
                    Ok(up)
                } else {
                    Err(invalid("type", format!("{v:?} is not an event type")))
                }
            })
            .transpose()
    }

    /// `sender_side`: `SELLER`/`BUYER` (also `supply`/`demand`), upper-cased.
    pub fn sender_side(&self) -> Result<Option<String>, AppError> {
        self.text("sender_side")?
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "seller" | "supply" => Ok("SELLER".to_owned()),
                "buyer" | "demand" => Ok("BUYER".to_owned()),
                _ => Err(invalid(
                    "sender_side",
                    format!("{v:?} is not SELLER or BUYER"),
                )),
            })
            .transpose()
    }

    /// `order`: `asc` (default) or `desc`.
    pub fn descending(&self) -> Result<bool, AppError> {
        match self.text("order")?.as_deref() {
            None | Some("asc") => Ok(false),
            Some("desc") => Ok(true),
            Some(v) => Err(invalid("order", format!("{v:?} is not asc or desc"))),
        }
    }

    /// `include`: a comma-separated subset of `allowed`.
    pub fn include(&self, allowed: &[&str]) -> Result<Vec<String>, AppError> {
        let Some(v) = self.text("include")? else {
            return Ok(Vec::new());
        };
        v.split(',')
            .map(|part| {
                let part = part.trim();
                if allowed.contains(&part) {
                    Ok(part.to_owned())
                } else {
                    Err(invalid(
                        "include",
                        format!("{part:?} is not one of {}", allowed.join(", ")),
                    ))
                }
            })
            .collect()
    }
}
