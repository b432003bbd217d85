//! The OpenAPI 3.1 document of every endpoint, generated from the handlers' annotations.
//! `kenar-hook openapi` prints it; `openapi.json` in the repository is a copy that a test
//! keeps in step.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::items::{
    ClickItem, ConversationItem, EventItem, MessageItem, Page, Participant, Participants,
    RegistrationItem,
};
use super::stream;
use super::{forwarding, handlers, rejected};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "kenar-hook", description = "Webhook receiver for Divar's Kenar chat platform: ingest, button clicks, and a read API over what was stored."),
    paths(
        crate::ingest::receive,
        crate::callback::session_init,
        crate::callback::dynamic_action,
        crate::ops::healthz,
        crate::ops::readyz,
        handlers::list_conversations,
        handlers::get_conversation,
        handlers::conversation_messages,
        handlers::list_messages,
        handlers::get_message,
        handlers::list_events,
        handlers::list_clicks,
        handlers::list_registrations,
        forwarding::endpoints,
        forwarding::attempts,
        forwarding::dead,
        rejected::list,
        stream::stream,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail, crate::ingest::Receipt,
        Page<MessageItem>, MessageItem, Participant, ConversationItem, Participants,
        EventItem, ClickItem, RegistrationItem,
        crate::forward::manage::EndpointStatus, forwarding::AttemptItem, forwarding::DeadItem,
        rejected::RejectedItem,
    )),
    modifiers(&Security),
    tags(
        (name = "divar", description = "What Divar calls; authenticated by the identification key in `authorization`."),
        (name = "read", description = "The read API; `Authorization: Bearer <api token>`."),
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
    doc.to_pretty_json().expect("the document serialises") + "\n"
}

/// `GET /api/v1/openapi.json`: the document, built once.
pub async fn serve() -> Json<&'static serde_json::Value> {
    static DOC: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
        serde_json::from_str(&document()).expect("the document is JSON")
    });
    Json(&DOC)
}
