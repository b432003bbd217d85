//! A request built but not sent. A dry run prints it; a real call sends the same value, with
//! the secret values that its printed form masks as `***`.

use std::fmt;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::DivarError;

/// What every secret value is shown as.
pub const MASK: &str = "***";

/// One operation's HTTP request: method, URL, headers and JSON body. Every public view of it
/// (`headers`, `Debug`, `Display`, `Serialize`) shows secrets as `***`.
#[derive(Clone)]
pub struct PreparedRequest {
    /// The HTTP method.
    pub method: Method,
    /// The full URL.
    pub url: Url,
    /// The JSON body, with secret fields shown as `***`.
    pub body: Value,
    headers: Vec<(HeaderName, Shown)>,
    secret_fields: Vec<(&'static str, SecretString)>,
    /// Whether sending it twice does what sending it once does. Divar takes no idempotency
    /// key, so only idempotent methods (GET, PUT, DELETE, ...) are; every operation of the
    /// client is a POST.
    repeatable: bool,
}

/// A header value: plain, or a secret shown as its prefix and `***`.
#[derive(Clone)]
enum Shown {
    Plain(String),
    Secret {
        prefix: &'static str,
        secret: SecretString,
    },
}

impl Shown {
    fn masked(&self) -> String {
        match self {
            Self::Plain(v) => v.clone(),
            Self::Secret { prefix, .. } => format!("{prefix}{MASK}"),
        }
    }
}

impl PreparedRequest {
    /// A request with a JSON body and a `content-type: application/json` header.
    pub(super) fn json(method: Method, url: Url, body: Value) -> Self {
        Self {
            repeatable: method.is_idempotent(),
            method,
            url,
            body,
            headers: vec![(CONTENT_TYPE, Shown::Plain("application/json".to_owned()))],
            secret_fields: Vec::new(),
        }
    }

    /// A request without a body.
    pub(super) fn bodiless(method: Method, url: Url) -> Self {
        Self {
            repeatable: method.is_idempotent(),
            method,
            url,
            body: Value::Null,
            headers: Vec::new(),
            secret_fields: Vec::new(),
        }
    }

    /// Adds a header whose value is `prefix` followed by a secret.
    pub(super) fn secret_header(
        mut self,
        name: &'static str,
        prefix: &'static str,
        secret: &SecretString,
    ) -> Self {
        self.headers.push((
            HeaderName::from_static(name),
            Shown::Secret {
                prefix,
                secret: secret.clone(),
            },
        ));
        self
    }

    /// Replaces the `***` of a top-level body field by a secret when sending.
    pub(super) fn secret_field(mut self, field: &'static str, secret: &SecretString) -> Self {
        self.secret_fields.push((field, secret.clone()));
        self
    }

    /// Whether the request may be sent again after it may have reached Divar. When it may
    /// not, a failure that is not [safe to repeat](DivarError::is_safe_to_repeat) ends the
    /// call as [`DivarError::OutcomeUnknown`].
    pub fn is_repeatable(&self) -> bool {
        self.repeatable
    }

    /// The headers as sent, secrets shown as `***` (for example `Bearer ***`).
    pub fn headers(&self) -> Vec<(&str, String)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.masked()))
            .collect()
    }

    /// The real headers, each secret marked sensitive so that no `Debug` shows it.
    pub(super) fn real_headers(&self) -> Result<HeaderMap, DivarError> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let mut header = match value {
                Shown::Plain(v) => HeaderValue::from_str(v),
                Shown::Secret { prefix, secret } => {
                    HeaderValue::from_str(&format!("{prefix}{}", secret.expose_secret()))
                }
            }
            .map_err(|_| {
                DivarError::NotConfigured(format!(
                    "the value of header {name} holds characters a header cannot carry"
                ))
            })?;
            header.set_sensitive(matches!(value, Shown::Secret { .. }));
            map.insert(name.clone(), header);
        }
        Ok(map)
    }

    /// The real body bytes, secret fields filled in.
    pub(super) fn real_body(&self) -> Result<Vec<u8>, DivarError> {
        if self.body.is_null() {
            return Ok(Vec::new());
        }
        let mut body = self.body.clone();
        if let Value::Object(map) = &mut body {
            for (field, secret) in &self.secret_fields {
                map.insert(
                    (*field).to_owned(),
                    Value::String(secret.expose_secret().to_owned()),
                );
            }
        }
        serde_json::to_vec(&body).map_err(|e| {
            DivarError::Validation(super::ValidationError::Unserializable(e.to_string()))
        })
    }
}

impl fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &self.headers())
            .field("body", &self.body)
            .finish()
    }
}

/// An HTTP-like listing: request line, headers, a blank line and the pretty JSON body.
impl fmt::Display for PreparedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {}", self.method, self.url)?;
        for (name, value) in self.headers() {
            writeln!(f, "{name}: {value}")?;
        }
        writeln!(f)?;
        let body = serde_json::to_string_pretty(&self.body).map_err(|_| fmt::Error)?;
        writeln!(f, "{body}")
    }
}

/// `{"method", "url", "headers": {name: value}, "body"}`, secrets shown as `***`.
impl Serialize for PreparedRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let headers: serde_json::Map<String, Value> = self
            .headers()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), Value::String(v)))
            .collect();
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("method", self.method.as_str())?;
        map.serialize_entry("url", self.url.as_str())?;
        map.serialize_entry("headers", &headers)?;
        map.serialize_entry("body", &self.body)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_masks_the_secrets_and_the_real_request_carries_them() {
        let token = SecretString::from("tok-123");
        let key = SecretString::from("idkey-456");
        let req = PreparedRequest::json(
            Method::POST,
            Url::parse("https://example.test/x").unwrap(),
            serde_json::json!({"identification_key": MASK, "a": 1}),
        )
        .secret_header("authorization", "Bearer ", &token)
        .secret_field("identification_key", &key);
        for shown in [
            format!("{req:?}"),
            req.to_string(),
            serde_json::to_string(&req).unwrap(),
        ] {
            assert!(
                !shown.contains("tok-123") && !shown.contains("idkey-456"),
                "{shown}"
            );
            assert!(shown.contains("Bearer ***"), "{shown}");
        }
        let headers = req.real_headers().unwrap();
        assert_eq!(headers["authorization"], "Bearer tok-123");
        assert!(!format!("{headers:?}").contains("tok-123"));
        let body: Value = serde_json::from_slice(&req.real_body().unwrap()).unwrap();
        assert_eq!(body["identification_key"], "idkey-456");
    }
}
