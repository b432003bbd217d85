//! The three click requests Divar sends — the legacy session-init (docs/divar-protocol.md
//! §1.4.2), the v2 server link (§1.4.3) and the dynamic action (§1.4.4) — parsed tolerantly
//! into one [`Click`].

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::divar::inbound::WireError;
use crate::divar::lenient;
use crate::store::{ClickFacts, ClickVersion, Side};

/// One click, whatever request it came as.
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    /// The request kind.
    pub version: ClickVersion,
    /// Who clicked, where.
    pub facts: ClickFacts,
    /// The button's data: legacy `extra_data.provider_data`, v2 `extra_data`/`provider_data`.
    pub data: Map<String, Value>,
    /// Legacy `extra_data.location` as (latitude, longitude).
    pub location: Option<(f64, f64)>,
    /// Where Divar wants the user back: `callback_url`, `return_url` or `completion_url`.
    pub return_url: Option<String>,
}

/// The legacy click body (docs/divar-protocol.md §1.4.2).
#[derive(Debug, Deserialize)]
struct LegacyClick {
    extra_data: Option<LegacyExtra>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    callback_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    post_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    peer_id: Option<String>,
    supplier: Option<Party>,
    #[serde(default, rename = "Supplier")]
    supplier_capital: Option<Party>,
    demand: Option<Party>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    conversation_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LegacyExtra {
    provider_data: Option<Map<String, Value>>,
    location: Option<Location>,
}

#[derive(Debug, Deserialize)]
struct Location {
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    longitude: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Party {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    id: Option<String>,
}

/// The v2 server-link and dynamic-action bodies share their fields.
#[derive(Debug, Deserialize)]
struct CurrentClick {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    source: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    touchpoint: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    post_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    conversation_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    user_side: Option<String>,
    extra_data: Option<Value>,
    provider_data: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    return_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    completion_url: Option<String>,
}

/// Which version a request to `POST /callbacks/divar` is: `API_VERSION: 2` or
/// `API-Version: 2` mean v2; without either, a body with legacy fields is legacy and one with
/// `source`/`user_side` is v2 (docs/divar-protocol.md §1.4.1, §3.16). `None` when neither
/// header nor body tells.
pub fn detect_version(headers: &HeaderMap, body: Option<&Value>) -> Option<ClickVersion> {
    let header = ["api_version", "api-version"]
        .into_iter()
        .find_map(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if let Some(h) = header {
        return Some(if h == "2" {
            ClickVersion::V2
        } else {
            ClickVersion::Legacy
        });
    }
    let obj = body?.as_object()?;
    let has = |keys: &[&str]| keys.iter().any(|k| obj.contains_key(*k));
    if has(&["callback_url", "peer_id", "supplier", "Supplier", "demand"]) {
        Some(ClickVersion::Legacy)
    } else if has(&["source", "user_side"]) {
        Some(ClickVersion::V2)
    } else {
        None
    }
}

impl Click {
    /// Parses a body as the given version. `Err` names the field that is missing or wrong.
    pub fn parse(version: ClickVersion, body: &Value) -> Result<Click, WireError> {
        if !body.is_object() {
            return Err(WireError::invalid("body", "must be a JSON object"));
        }
        match version {
            ClickVersion::Legacy => Self::legacy(body),
            ClickVersion::V2 | ClickVersion::DynamicAction => Self::current(version, body),
        }
    }

    fn legacy(body: &Value) -> Result<Click, WireError> {
        let c: LegacyClick = typed(body)?;
        let post_token = required(c.post_token, "post_token")?;
        let user_id = required(c.user_id, "user_id")?;
        // Prefer a non-empty owner id whichever spelling carried it
        // (docs/divar-protocol.md §3.15).
        let supplier = [c.supplier, c.supplier_capital]
            .into_iter()
            .flatten()
            .find_map(|p| p.id.filter(|id| !id.is_empty()));
        let demand = c.demand.and_then(|p| p.id).filter(|id| !id.is_empty());
        let side = if supplier.as_deref() == Some(user_id.as_str()) {
            Some(Side::Supply)
        } else if demand.as_deref() == Some(user_id.as_str()) {
            Some(Side::Demand)
        } else {
            None
        };
        let (data, location) = match c.extra_data {
            Some(extra) => (
                extra.provider_data.unwrap_or_default(),
                extra
                    .location
                    .and_then(|l| Some((l.latitude?, l.longitude?))),
            ),
            None => (Map::new(), None),
        };
        Ok(Click {
            version: ClickVersion::Legacy,
            facts: ClickFacts {
                source: None,
                post_token: Some(post_token),
                conversation_id: c.conversation_id.filter(|s| !s.is_empty()),
                user_id: Some(user_id),
                peer_id: c.peer_id.filter(|s| !s.is_empty()),
                side,
            },
            data,
            location,
            return_url: c.callback_url.filter(|s| !s.is_empty()),
        })
    }

    fn current(version: ClickVersion, body: &Value) -> Result<Click, WireError> {
        let c: CurrentClick = typed(body)?;
        let source = match version {
            ClickVersion::DynamicAction => Some(required(c.touchpoint, "touchpoint")?),
            _ => Some(required(c.source, "source")?),
        }
        .map(|s| {
            let up = s.trim().to_ascii_uppercase();
            if up == "POST_ADODN" {
                "POST_ADDON".to_owned()
            } else {
                up
            }
        });
        let data = match c.extra_data.or(c.provider_data) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(WireError::invalid("extra_data", "must be an object")),
        };
        Ok(Click {
            version,
            facts: ClickFacts {
                source,
                post_token: c.post_token.filter(|s| !s.is_empty()),
                conversation_id: c.conversation_id.filter(|s| !s.is_empty()),
                user_id: c.user_id.filter(|s| !s.is_empty()),
                peer_id: None,
                side: c.user_side.as_deref().and_then(Side::parse),
            },
            data,
            location: None,
            return_url: c.return_url.or(c.completion_url).filter(|s| !s.is_empty()),
        })
    }

    /// A data value as text: strings as they are, other JSON compactly.
    pub fn data_text(&self, key: &str) -> Option<String> {
        self.data.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The value of a template placeholder: `Some(None)` for a known placeholder whose fact
    /// is unknown, `None` for an unknown placeholder.
    pub fn placeholder(&self, name: &str) -> Option<Option<String>> {
        Some(match name {
            "post_token" => self.facts.post_token.clone(),
            "conversation_id" => self.facts.conversation_id.clone(),
            "user_id" => self.facts.user_id.clone(),
            "peer_id" => self.facts.peer_id.clone(),
            "side" => self.facts.side.map(|s| s.as_str().to_owned()),
            "source" => self.facts.source.clone(),
            _ => match name.strip_prefix("data.") {
                Some(key) => self.data_text(key),
                None => return None,
            },
        })
    }

    /// A click with every fact set to a harmless value, for checking templates at load time.
    pub fn probe() -> Click {
        Click {
            version: ClickVersion::V2,
            facts: ClickFacts {
                source: Some("x".into()),
                post_token: Some("x".into()),
                conversation_id: Some("x".into()),
                user_id: Some("x".into()),
                peer_id: Some("x".into()),
                side: Some(Side::Demand),
            },
            data: Map::new(),
            location: None,
            return_url: None,
        }
    }
}

fn required(value: Option<String>, field: &str) -> Result<String, WireError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| WireError::missing(field))
}

fn typed<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, WireError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        WireError::invalid(path, e.into_inner().to_string())
    })
}
