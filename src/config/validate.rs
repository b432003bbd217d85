//! Validation: what types alone cannot check.

use super::*;

impl Settings {
    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, problem: &str| Err(ConfigError(format!("{key}: {problem}")));
        // Zero would turn off what each of these sizes, times or counts.
        let sizes_and_times = [
            (
                "server.body_limit_bytes",
                self.server.body_limit_bytes as u64,
            ),
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            (
                "server.header_read_timeout_ms",
                self.server.header_read_timeout_ms,
            ),
            ("server.idle_timeout_ms", self.server.idle_timeout_ms),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
            ),
            ("ingest.write_timeout_ms", self.ingest.write_timeout_ms),
            ("api.stream_keepalive_secs", self.api.stream_keepalive_secs),
        ];
        if let Some((key, _)) = sizes_and_times.iter().find(|(_, v)| *v == 0) {
            return fail(key, "must be greater than 0");
        }
        let counts = [
            ("server.max_connections", self.server.max_connections as u64),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
            ("ingest.queue_capacity", self.ingest.queue_capacity as u64),
            ("ingest.batch_max", self.ingest.batch_max as u64),
        ];
        if let Some((key, _)) = counts.iter().find(|(_, v)| *v == 0) {
            return fail(key, "must be at least 1");
        }
        if let Err(problem) = self.database_kind() {
            return fail("database.url", &problem);
        }
        if any_blank(&self.divar.identification_keys) {
            return fail("divar.identification_keys", "a key must not be empty");
        }
        for key in &self.divar.identification_keys {
            if let Err(problem) = strong_identification_key(key.expose_secret()) {
                return fail("divar.identification_keys", &problem);
            }
        }
        // The signed state reaches every user in a redirect URL: a short key could be
        // found offline and claims forged for the landing page.
        if let Some(key) = &self.callback.signing_key
            && let Err(problem) = strong_enough(key.expose_secret(), "key")
        {
            return fail("callback.signing_key", &problem);
        }
        if matches!(self.ingest.writers, Some(0) | Some(17..)) {
            return fail("ingest.writers", "must be from 1 to 16");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return fail("log.level", &format!("not a valid filter: {e}"));
        }
        if any_blank(&self.api.tokens) {
            return fail("api.tokens", "a token must not be empty");
        }
        if let Err((key, problem)) = clients::validate(&self.api.tokens, &self.api.clients) {
            return fail(&key, &problem);
        }
        if self.api.rate_limit_per_second == 0 || self.api.rate_limit_burst == 0 {
            return fail(
                "api.rate_limit_per_second",
                "rate limits must be at least 1",
            );
        }
        if self.api.page_max_bytes < 1024 {
            return fail("api.page_max_bytes", "must be at least 1024");
        }
        if self.api.max_streams == 0 || self.api.max_streams_per_token == 0 {
            return fail(
                "api.max_streams",
                "api.max_streams and api.max_streams_per_token must be at least 1",
            );
        }
        if self.api.stream_keepalive_secs.saturating_mul(1000) >= self.server.idle_timeout_ms {
            return fail(
                "server.idle_timeout_ms",
                "must be longer than api.stream_keepalive_secs, or quiet live streams are closed",
            );
        }
        if let Err((key, problem)) = self.callback.validate() {
            return fail(&key, &problem);
        }
        if let Err((key, problem)) = self.oauth.validate() {
            return fail(&key, &problem);
        }
        if let Err((key, problem)) = self.forward.validate() {
            return fail(&key, &problem);
        }
        if let Err((key, problem)) = self.retention.validate() {
            return fail(key, &problem);
        }
        let has_clients = !self.api.tokens.is_empty() || !self.api.clients.is_empty();
        if let Err((key, problem)) = self.inbox.validate(has_clients) {
            return fail(key, &problem);
        }
        Ok(())
    }
}

/// Whether any of `secrets` is empty or white space only.
fn any_blank(secrets: &[SecretString]) -> bool {
    secrets.iter().any(|k| k.expose_secret().trim().is_empty())
}
