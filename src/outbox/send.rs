//! Making the call of a recorded reply. A reply is committed as `sending` before its call
//! (recorded so with the push's progress, or taken from `pending` by one update), so that the
//! call is made at most once: a call cut off by a stop leaves the row `sending`, and the
//! endpoint's next forwarder marks it `unknown` instead of calling again. How each call ended
//! is written in batches, every 20 ms at most, so that replies cost the database a few
//! commits a second, not three per reply.
//!
//! The client tries a call again only when it provably had no effect at Divar (no
//! connection, 429, 408, 503 with `Retry-After`), with backoff, until its deadline; such a
//! call that never got through is `failed`. A transient failure after the request may have
//! gone out is `unknown`; a refusal (412, any other 4xx) or a missing credential is
//! `refused`. `failed` and `unknown` go again only by `kenar-hook outbox retry`.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::{Semaphore, mpsc};

use super::{Reply, Target};
use crate::divar::outbound::{
    BotMessage, DivarClient, DivarError, LegacySendMessage, PreparedRequest, SendMessage,
};
use crate::oauth::Tokens;
use crate::store::outbox::{Finished, OutboxStatus, Outcome};
use crate::store::{RecordRef, Store};

/// Calls to Divar made at once, over every endpoint.
const CONCURRENT: usize = 32;
/// Outcomes are written at least this often...
const FINISH_EVERY: Duration = Duration::from_millis(20);
/// ... in transactions of at most this many.
const FINISH_MAX: usize = 500;
/// Bytes of Divar's answer kept on the row.
const ANSWER_KEPT: usize = 1024;

/// Sends recorded replies. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    store: Store,
    client: Result<DivarClient, String>,
    tokens: Option<Tokens>,
    /// Why the vault is off, when it is.
    vault_off: &'static str,
    slots: Arc<Semaphore>,
    finished: mpsc::UnboundedSender<Finished>,
    /// Calls under way (or not yet written) per endpoint.
    busy: Busy,
}

type Busy = Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

fn mark(busy: &Busy, endpoint: &str, started: bool) {
    let mut busy = busy.lock().expect("not poisoned");
    let n = busy.entry(endpoint.to_owned()).or_default();
    if started {
        *n += 1;
    } else {
        *n = n.saturating_sub(1);
    }
}

impl Sender {
    /// A sender with the `divar` settings' client and the token vault, if on.
    pub fn new(
        store: Store,
        client: Result<DivarClient, String>,
        tokens: Option<Tokens>,
        vault_off: &'static str,
    ) -> Self {
        let (finished, ended) = mpsc::unbounded_channel();
        let busy = Busy::default();
        tokio::spawn(write_outcomes(store.clone(), ended, busy.clone()));
        Self {
            store,
            client,
            tokens,
            vault_off,
            slots: Arc::new(Semaphore::new(CONCURRENT)),
            finished,
            busy,
        }
    }

    /// Waits until every call of `endpoint` made by this process has its outcome written: a
    /// forwarder that starts over then knows that a row still `sending` was cut off.
    pub async fn idle(&self, endpoint: &str) {
        loop {
            let n = self
                .busy
                .lock()
                .expect("not poisoned")
                .get(endpoint)
                .copied();
            if n.unwrap_or(0) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes the call of a reply just committed as `sending`, in the background.
    pub fn send(&self, endpoint: &str, record: RecordRef, reply: String, target: Option<String>) {
        mark(&self.busy, endpoint, true);
        let (this, endpoint) = (self.clone(), endpoint.to_owned());
        tokio::spawn(async move {
            let Ok(_slot) = this.slots.acquire().await else {
                return;
            };
            let outcome = this.call(&reply, target.as_deref()).await;
            this.ended(endpoint, record, outcome);
        });
    }

    /// Takes the pending reply to `record` of `endpoint` and makes its call, in the
    /// background.
    pub fn send_pending(&self, endpoint: &str, record: RecordRef) {
        mark(&self.busy, endpoint, true);
        let (this, endpoint) = (self.clone(), endpoint.to_owned());
        tokio::spawn(async move {
            let Ok(_slot) = this.slots.acquire().await else {
                return;
            };
            match this.store.outbox_claim(&endpoint, record).await {
                Ok(Some(row)) => {
                    let outcome = this
                        .call(&row.reply.json, row.reply.target.as_deref())
                        .await;
                    this.ended(endpoint, record, outcome);
                }
                Ok(None) => mark(&this.busy, &endpoint, false),
                Err(e) => {
                    mark(&this.busy, &endpoint, false);
                    tracing::warn!(endpoint, kind = %record.kind, seq = record.seq, error = %e, "a pending reply could not be taken; it waits");
                }
            }
        });
    }

    fn ended(&self, endpoint: String, record: RecordRef, outcome: Outcome) {
        counted(outcome.status);
        let (kind, seq) = (record.kind.as_str(), record.seq);
        match outcome.status {
            OutboxStatus::Sent => tracing::debug!(endpoint, kind, seq, "reply sent"),
            status => tracing::warn!(
                endpoint,
                kind,
                seq,
                status = status.as_str(),
                answer = outcome.answer.as_deref().unwrap_or(""),
                "reply not sent"
            ),
        }
        let _ = self.finished.send(Finished {
            endpoint,
            record,
            outcome,
        });
    }

    /// Makes the call of a reply (as recorded: JSON reply and target); how it ended.
    async fn call(&self, reply: &str, target: Option<&str>) -> Outcome {
        let refused = |reason: String| Outcome {
            status: OutboxStatus::Refused,
            request: None,
            credential: None,
            answer: Some(reason),
        };
        let parsed = serde_json::from_str::<Reply>(reply).and_then(|r| {
            let target = serde_json::from_str::<Target>(target.unwrap_or("null"))?;
            Ok((r, target))
        });
        let (reply, target) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => return refused(format!("the recorded reply cannot be read: {e}")),
        };
        let client = match &self.client {
            Ok(client) => client,
            Err(why) => return refused(why.clone()),
        };
        let (request, credential) = match self.prepare(client, reply, target).await {
            Ok(prepared) => prepared,
            Err(Prepared::Refused(reason)) => return refused(reason),
            Err(Prepared::Failed(reason)) => {
                return Outcome {
                    status: OutboxStatus::Failed,
                    request: None,
                    credential: None,
                    answer: Some(reason),
                };
            }
        };
        let shown = format!(
            "{} {}\n{}",
            request.method,
            request.url,
            serde_json::to_string(&request.body).unwrap_or_default()
        );
        let (status, answer) = match client.execute(&request).await {
            Ok(body) => (
                OutboxStatus::Sent,
                String::from_utf8_lossy(&body[..body.len().min(ANSWER_KEPT)]).into_owned(),
            ),
            Err(e @ DivarError::OutcomeUnknown { .. }) => (OutboxStatus::Unknown, e.to_string()),
            Err(e) if e.is_retryable() => (OutboxStatus::Failed, e.to_string()),
            Err(e) => (OutboxStatus::Refused, e.to_string()),
        };
        Outcome {
            status,
            request: Some(shown),
            credential: Some(credential),
            answer: Some(answer),
        }
    }

    /// The request of a reply and the credential it is made with.
    async fn prepare(
        &self,
        client: &DivarClient,
        reply: Reply,
        target: Target,
    ) -> Result<(PreparedRequest, String), Prepared> {
        let divar = |e: DivarError| Prepared::Refused(e.to_string());
        match target {
            Target::Chatbot { conversation_id } => {
                let message = BotMessage {
                    text_message: reply.text,
                    media_token: reply.media_token,
                    buttons: reply.buttons,
                };
                let request = client
                    .prepare_bot_message_to_conversation(None, &conversation_id, &message)
                    .map_err(divar)?;
                Ok((request, "api key".into()))
            }
            Target::Conversation {
                conversation_id,
                post_token,
                as_user,
            } => {
                let user = match as_user {
                    Some(user) => user,
                    None => self.subscriber(post_token.as_deref()).await?,
                };
                let token = self.token(&user).await?;
                let message = SendMessage {
                    message: reply.text,
                    media_token: reply.media_token,
                    sender_buttons: None,
                    receiver_buttons: reply.buttons,
                };
                let request = client
                    .prepare_message(&token, &conversation_id, &message)
                    .map_err(divar)?;
                Ok((request, format!("token of user {user}")))
            }
            Target::Legacy {
                user_id,
                peer_id,
                post_token,
            } => {
                let token = self.token(&user_id).await?;
                let message = LegacySendMessage {
                    user_id: user_id.clone(),
                    post_token,
                    peer_id,
                    message: reply.text.unwrap_or_default(),
                    sender_btn: None,
                    receiver_btn: None,
                };
                let request = client
                    .prepare_legacy_message(&token, &message)
                    .map_err(divar)?;
                Ok((request, format!("token of user {user_id}")))
            }
        }
    }

    /// The one signed-in user whose subscription covers the post.
    async fn subscriber(&self, post_token: Option<&str>) -> Result<String, Prepared> {
        let Some(post) = post_token else {
            return Err(Prepared::Refused(
                "the message names no post, so no subscription says whose conversation it is: \
                 answer with as_user"
                    .into(),
            ));
        };
        if self.tokens.is_none() {
            return Err(self.vault_off());
        }
        let (users, every) = self
            .store
            .message_subscribers(post)
            .await
            .map_err(|e| Prepared::Failed(format!("reading the subscriptions: {e}")))?;
        match users.as_slice() {
            [user] => Ok(user.clone()),
            [] => Err(Prepared::Refused(format!(
                "no signed-in user's message subscription covers post {post}: sign the post's \
                 owner in and subscribe (kenar-hook subscribe events), or answer with as_user"
            ))),
            several => Err(Prepared::Refused(format!(
                "{} signed-in users' message subscriptions cover post {post}{}: answer with \
                 as_user to say which one writes",
                several.len(),
                if every { " (each of every post)" } else { "" }
            ))),
        }
    }

    /// A usable access token of a user, refreshed first when due.
    async fn token(&self, user: &str) -> Result<SecretString, Prepared> {
        let Some(tokens) = &self.tokens else {
            return Err(self.vault_off());
        };
        tokens.access_token(user).await.map_err(|e| {
            use crate::oauth::TokenError;
            match e {
                TokenError::Store(_) | TokenError::Divar(_) => Prepared::Failed(e.to_string()),
                TokenError::OAuth(ref o) if !o.is_refusal() => Prepared::Failed(e.to_string()),
                _ => Prepared::Refused(e.to_string()),
            }
        })
    }

    fn vault_off(&self) -> Prepared {
        Prepared::Refused(format!(
            "a reply written as a user needs the user's token from the vault, and sign-in is \
             off: {}",
            self.vault_off
        ))
    }
}

/// Why a reply has no request.
enum Prepared {
    /// Final: malformed, or a credential that is missing.
    Refused(String),
    /// The database or the OAuth server failed.
    Failed(String),
}

/// Writes how calls ended, in batches; a batch the database refuses is tried again (its rows
/// stay `sending` meanwhile, and become `unknown` if the process stops).
async fn write_outcomes(store: Store, mut ended: mpsc::UnboundedReceiver<Finished>, busy: Busy) {
    let mut batch = Vec::new();
    loop {
        if batch.is_empty() {
            match ended.recv().await {
                Some(f) => batch.push(f),
                None => return,
            }
        }
        tokio::time::sleep(FINISH_EVERY).await;
        while batch.len() < FINISH_MAX {
            match ended.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        match store.outbox_finish(&batch).await {
            Ok(()) => {
                for f in batch.drain(..) {
                    mark(&busy, &f.endpoint, false);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, replies = batch.len(), "the outcomes of replies could not be written; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Counts a reply by how it ended.
pub fn counted(status: OutboxStatus) {
    metrics::counter!("kenar_outbox_replies_total", "outcome" => status.as_str()).increment(1);
}
