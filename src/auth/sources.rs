//! The routes Divar calls, limited to Divar's addresses when `divar.allowed_sources` is set.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

/// Answers 403 to a client outside `divar.allowed_sources` (when set), before anything else
/// runs; the client's address is found as for the failure limits (`server.trusted_proxies`).
pub async fn divar_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let allowed = &state.settings.divar.allowed_sources;
    if !allowed.is_empty() {
        let ip = state
            .failures
            .client_ip(request.headers(), request.extensions());
        if !allowed.iter().any(|net| net.contains(&ip)) {
            metrics::counter!("kenar_source_refusals_total").increment(1);
            return AppError::Forbidden(
                "this route answers Divar's servers only (divar.allowed_sources)".to_owned(),
            )
            .into_response();
        }
    }
    next.run(request).await
}
