//! The OpenAPI 3.1 document of every endpoint, generated from the handlers' annotations.
//! `kenar-hook openapi` prints it; `openapi.json` in the repository is a copy that a test
//! keeps in step.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::stream;
use super::{conversations, events, forwarding, messages, outbox, registrations, rejected};
use crate::items::{
    ClickItem, ConversationItem, EventItem, MessageItem, Page, Participant, Participants,
    RegistrationItem,
};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "kenar-hook", description = "Webhook receiver for Divar's Kenar chat platform: ingest, button clicks, and a read API over what was stored."),
    paths(
        crate::ingest::receive,
        crate::callback::session_init,
        crate::callback::dynamic_action,
        crate::oauth::routes::start,
        crate::oauth::routes::callback,
        crate::health::healthz,
        crate::health::readyz,
        conversations::list_conversations,
        conversations::get_conversation,
        messages::conversation_messages,
        messages::list_messages,
        messages::get_message,
        events::list_events,
        events::list_clicks,
        registrations::list_registrations,
        forwarding::endpoints,
        forwarding::attempts,
        forwarding::dead,
        outbox::list,
        rejected::list,
        stream::stream,
        super::tickets::issue,
        serve,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail, crate::ingest::Receipt,
        Page<MessageItem>, MessageItem, Participant, ConversationItem, Participants,
        EventItem, ClickItem, RegistrationItem, super::tickets::Ticket,
        crate::forward::manage::EndpointStatus, forwarding::AttemptItem, forwarding::DeadItem,
        rejected::RejectedItem, outbox::OutboxItem,
    )),
    modifiers(&Security),
    tags(
        (name = "divar", description = "What Divar calls; authenticated by the identification key in `authorization`."),
        (name = "read", description = "The read API; `Authorization: Bearer <api token>`."),
        (name = "oauth", description = "Signing users in with Divar (browser routes; off until oauth.vault_keys is set)."),
        (name = "operations", description = "Health."),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "identification_key",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::new("authorization"),
            )),
        );
    }
}

/// The document as pretty JSON, as committed in `openapi.json`.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut doc = serde_json::to_value(&doc).expect("the document serialises");
    complete(&mut doc);
    serde_json::to_string_pretty(&doc).expect("the document serialises") + "\n"
}

/// Adds what every route of a kind needs and can answer, said once here rather than on each
/// handler: its security scheme, the middleware's answers (408 from the request deadline;
/// 401, 429 and 503 from the read API's access check; 400 for unknown query parameters;
/// 400, 401, 413 and 429 from the check of Divar's calls), and the exact shape of each
/// query parameter (enums, formats, bounds) that the handlers' checks enforce.
fn complete(doc: &mut serde_json::Value) {
    use serde_json::json;
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        // Who may call: the read API takes a bearer token, Divar's calls its key.
        let security = if path.starts_with("/api/v1/") {
            Some(json!([{"bearer": []}]))
        } else if path.starts_with("/webhooks/") || path.starts_with("/callbacks/") {
            Some(json!([{"identification_key": []}]))
        } else {
            None
        };
        for (_, operation) in operations.iter_mut() {
            if let (Some(security), Some(operation)) = (&security, operation.as_object_mut()) {
                operation
                    .entry("security")
                    .or_insert_with(|| security.clone());
            }
            let mut common = vec![(
                "408",
                "The request took longer than server.request_timeout_ms",
            )];
            if path.starts_with("/api/v1/") {
                common.extend([
                    ("400", "An unknown or invalid query parameter, named in the message"),
                    ("401", "Missing or invalid bearer token (WWW-Authenticate: Bearer)"),
                    ("429", "The token's rate limit, or too many failed authentications from this address; see Retry-After"),
                    ("503", "The database is unavailable; see Retry-After"),
                ]);
            }
            if path.starts_with("/webhooks/") || path.starts_with("/callbacks/") {
                common.extend([
                    ("400", "Not JSON"),
                    ("401", "Missing or unknown identification key"),
                    ("413", "The body is larger than server.body_limit_bytes"),
                    (
                        "429",
                        "This client failed authentication too often; see Retry-After",
                    ),
                ]);
            }
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(|r| r.as_object_mut())
            {
                for (status, description) in common {
                    // A click's error has the shape of its version (legacy or v2): the
                    // route's own responses describe both.
                    let answer = if path == "/callbacks/divar" {
                        json!({"description": format!("{description}; in the error shape of the click's version")})
                    } else {
                        error(description)
                    };
                    responses.entry(status).or_insert(answer);
                }
            }
        }
    }
}

/// The OpenAPI 3.1 document of every endpoint (this one included).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "read",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn serve(
    _: super::params::Filters<super::params::NoParams>,
) -> Json<&'static serde_json::Value> {
    document_json()
}

fn document_json() -> Json<&'static serde_json::Value> {
    static DOC: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
        serde_json::from_str(&document()).expect("the document is JSON")
    });
    Json(&DOC)
}
