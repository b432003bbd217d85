//! Divar's button-click callbacks: `POST /callbacks/divar` (the legacy session-init click
//! and the v2 server link) and `POST /callbacks/divar/dynamic-action`. Each is
//! authenticated like the webhook, matched against the redirect rules, logged through the
//! batch writer, and answered in the shape Divar expects for its version.

pub mod click;
pub mod rules;
pub mod state;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::auth::request::{DivarRequest, Refused};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{ClickOutcome, ClickVersion, NewClick, NewRecord};
use click::{Click, detect_version};
use rules::{Decision, RuleError};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/callbacks/divar", post(session_init))
        .route("/callbacks/divar/dynamic-action", post(dynamic_action))
}

/// An error answered in the shape of the click's version: the legacy shape is
/// `{"status": "<code>", "message": "..."}` with no `url`; the others use the service's
/// error body.
pub struct Shaped {
    legacy: bool,
    error: AppError,
}

impl Shaped {
    /// Whether an error to a request on `path` with these headers, answered before its body
    /// is known, takes the legacy click shape: on `/callbacks/divar` unless the headers say
    /// v2.
    pub fn legacy_click(path: &str, headers: &axum::http::HeaderMap) -> bool {
        path == "/callbacks/divar"
            && matches!(
                detect_version(headers, None),
                None | Some(ClickVersion::Legacy)
            )
    }

    /// `error` in the legacy click shape or the service's own.
    pub fn new(legacy: bool, error: AppError) -> Self {
        Shaped { legacy, error }
    }
}

impl IntoResponse for Shaped {
    fn into_response(self) -> Response {
        if !self.legacy {
            return self.error.into_response();
        }
        let status = self.error.status().as_u16().to_string();
        let message = self.error.public_message();
        self.error
            .respond_with(json!({"status": status, "message": message}))
    }
}

/// A button click: the legacy session-init click or the v2 server link.
#[utoipa::path(post, path = "/callbacks/divar", tag = "divar",
    params(("API_VERSION" = Option<String>, Header, description = "2 for the v2 server link (also API-Version)")),
    request_body(content = Object, description = "Legacy click (extra_data, callback_url, post_token, user_id, peer_id, supplier, demand) or v2 server link (source, post_token, conversation_id, user_side, extra_data, user_id)"),
    responses(
        (status = 200, description = "Legacy: {status: \"200\", message: \"success\", url}; v2: {url}", body = Object),
        (status = 400, description = "Not JSON"), (status = 401, description = "Missing or unknown identification key"),
        (status = 404, description = "No rule matches and no fallback"), (status = 413, description = "Body too large"),
        (status = 429, description = "This client failed authentication too often; see Retry-After"),
        (status = 422, description = "A required field is missing"), (status = 503, description = "The click could not be logged"),
    ))]
pub async fn session_init(
    State(state): State<AppState>,
    request: Result<DivarRequest, Refused>,
) -> Result<Json<Value>, Shaped> {
    handle(state, request, None).await
}

/// A dynamic action (`get_dynamic_action` button).
#[utoipa::path(post, path = "/callbacks/divar/dynamic-action", tag = "divar",
    request_body(content = Object, description = "touchpoint, post_token, conversation_id, user_side, extra_data, user_id"),
    responses(
        (status = 200, description = "{action: {open_direct_link}, text_message}, either part optional", body = Object),
        (status = 404, description = "No rule matches and no fallback", body = crate::error::ErrorBody),
        (status = 422, description = "A required field is missing", body = crate::error::ErrorBody),
    ))]
pub async fn dynamic_action(
    State(state): State<AppState>,
    request: Result<DivarRequest, Refused>,
) -> Result<Json<Value>, Shaped> {
    handle(state, request, Some(ClickVersion::DynamicAction)).await
}

async fn handle(
    state: AppState,
    request: Result<DivarRequest, Refused>,
    fixed: Option<ClickVersion>,
) -> Result<Json<Value>, Shaped> {
    let fail = |version: Option<ClickVersion>, error: AppError| {
        let legacy = matches!(version, None | Some(ClickVersion::Legacy));
        count(version, "rejected");
        Shaped { legacy, error }
    };
    let request = match request {
        Ok(request) => request,
        // Without a body, the version is what the headers (or the route) say.
        Err(refused) => {
            let version = fixed.or_else(|| detect_version(&refused.headers, None));
            return Err(fail(version, refused.error));
        }
    };
    let version = fixed
        .or_else(|| detect_version(&request.headers, Some(&request.value)))
        .unwrap_or(ClickVersion::Legacy);
    let click = Click::parse(version, &request.value)
        .map_err(|e| fail(Some(version), AppError::Unprocessable(e.to_string())))?;

    let callback = &state.settings.callback;
    let decision = callback.decide(&click);
    let (rule, url, text_message, outcome) = match &decision {
        Ok(Decision {
            rule,
            url,
            text_message,
        }) => {
            let url = url.clone().map(|mut url| {
                if let Some(key) = &callback.signing_key {
                    let now = Utc::now().timestamp();
                    let claims =
                        state::StateClaims::for_click(&click, now, callback.state_ttl_secs);
                    let token = state::sign(&claims, key.expose_secret().as_bytes());
                    url.query_pairs_mut().append_pair("state", &token);
                }
                url.to_string()
            });
            let outcome = if url.is_some() {
                ClickOutcome::Redirect
            } else {
                ClickOutcome::Text
            };
            (Some(rule.clone()), url, text_message.clone(), outcome)
        }
        Err(RuleError::NoMatch) => (None, None, None, ClickOutcome::NoMatch),
        Err(RuleError::Disallowed { rule, .. }) => {
            (Some(rule.clone()), None, None, ClickOutcome::Disallowed)
        }
    };

    let record = NewRecord::Click(NewClick {
        id: uuid::Uuid::new_v4().to_string(),
        version,
        facts: click.facts.clone(),
        provider_data: Value::Object(click.data.clone()),
        rule: rule.clone(),
        url: url.clone(),
        outcome,
        raw_body: request.body.to_vec(),
        received_at: Utc::now(),
    });
    if let Err(err) = state.writer.submit(record).await {
        return Err(fail(
            Some(version),
            AppError::Unavailable {
                message: format!("{err}; the click was not logged, retry later"),
                retry_after_secs: state.settings.ingest.retry_after_secs,
            },
        ));
    }
    tracing::info!(
        version = version.as_str(),
        rule,
        outcome = outcome.as_str(),
        "click"
    );

    match decision {
        Err(RuleError::NoMatch) => Err(fail(
            Some(version),
            AppError::NotFound(RuleError::NoMatch.to_string()),
        )),
        Err(err @ RuleError::Disallowed { .. }) => {
            tracing::warn!(error = %err, "redirect target refused after filling the template");
            Err(fail(
                Some(version),
                AppError::Unprocessable(
                    "the redirect target built for this click is not allowed".into(),
                ),
            ))
        }
        Ok(_) => {
            count(Some(version), outcome.as_str());
            Ok(Json(reply(version, url, text_message)))
        }
    }
}

fn reply(version: ClickVersion, url: Option<String>, text_message: Option<String>) -> Value {
    match version {
        ClickVersion::Legacy => json!({"status": "200", "message": "success", "url": url}),
        ClickVersion::V2 => json!({"url": url}),
        ClickVersion::DynamicAction => {
            let mut reply = serde_json::Map::new();
            if let Some(url) = url {
                reply.insert("action".into(), json!({"open_direct_link": url}));
            }
            if let Some(text) = text_message {
                reply.insert("text_message".into(), Value::String(text));
            }
            Value::Object(reply)
        }
    }
}

fn count(version: Option<ClickVersion>, outcome: &'static str) {
    let version = version.map(ClickVersion::as_str).unwrap_or("unknown");
    metrics::counter!("kenar_clicks_total", "version" => version, "outcome" => outcome)
        .increment(1);
}
