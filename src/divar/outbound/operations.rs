//! The operations: each `prepare_*` validates and builds the request, each sending method
//! sends exactly that request.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use super::{
    BotMessage, BotMessageResponse, DivarClient, DivarError, EventSubscription, LegacyRegistration,
    LegacySendMessage, PreparedRequest, SendMessage, SendMessageResponse, UserInfo,
    ValidationError,
};

const LEGACY_SEND_PATH: &str = "/v2/open-platform/chat/conversation";
const CONVERSATIONS_PATH: &str = "/v2/open-platform/conversations";
const BOT_CONVERSATIONS_PATH: &str = "/v1/open-platform/chat/bot/conversations";
const BOT_USERS_PATH: &str = "/v1/open-platform/chat/bot/users";
const SUBSCRIPTIONS_PATH: &str = "/v1/open-platform/events/subscriptions";
const USERS_PATH: &str = "/v1/open-platform/users";

/// Legacy APIs carry the user's token in `x-access-token`, current ones as a bearer token.
enum Token<'a> {
    Legacy(&'a SecretString),
    Bearer(&'a SecretString),
    None,
}

impl DivarClient {
    /// The legacy send-message request: `POST {base_url}/v2/open-platform/chat/conversation`
    /// with `x-api-key` and `x-access-token`.
    pub fn prepare_legacy_message(
        &self,
        access_token: &SecretString,
        message: &LegacySendMessage,
    ) -> Result<PreparedRequest, DivarError> {
        message.validate()?;
        let url = self.url(&self.base_url, LEGACY_SEND_PATH, &[])?;
        self.request(url, message.body()?, Token::Legacy(access_token))
    }

    /// Sends a message with the legacy API (docs/divar-protocol.md §2.3), as the user of
    /// `access_token`.
    pub async fn send_legacy_message(
        &self,
        access_token: &SecretString,
        message: &LegacySendMessage,
    ) -> Result<SendMessageResponse, DivarError> {
        let request = self.prepare_legacy_message(access_token, message)?;
        self.send(&request).await
    }

    /// The send message v2 request:
    /// `POST {open_api_base_url}/v2/open-platform/conversations/{conversation_id}/messages`
    /// with `x-api-key` and `Authorization: Bearer`.
    pub fn prepare_message(
        &self,
        access_token: &SecretString,
        conversation_id: &str,
        message: &SendMessage,
    ) -> Result<PreparedRequest, DivarError> {
        message.validate()?;
        let id = path_id("conversation_id", conversation_id)?;
        let url = self.url(
            &self.open_api_base_url,
            CONVERSATIONS_PATH,
            &[id, "messages"],
        )?;
        self.request(url, message.body()?, Token::Bearer(access_token))
    }

    /// Sends a message in a conversation as the user of `access_token` (send message v2).
    pub async fn send_message(
        &self,
        access_token: &SecretString,
        conversation_id: &str,
        message: &SendMessage,
    ) -> Result<SendMessageResponse, DivarError> {
        let request = self.prepare_message(access_token, conversation_id, message)?;
        self.send(&request).await
    }

    /// The chatbot request to a conversation:
    /// `POST {open_api_base_url}/v1/open-platform/chat/bot/conversations/{id}/messages`
    /// with `x-api-key`, and `Authorization: Bearer` when a token is given.
    pub fn prepare_bot_message_to_conversation(
        &self,
        access_token: Option<&SecretString>,
        conversation_id: &str,
        message: &BotMessage,
    ) -> Result<PreparedRequest, DivarError> {
        message.validate()?;
        let id = path_id("conversation_id", conversation_id)?;
        let url = self.url(
            &self.open_api_base_url,
            BOT_CONVERSATIONS_PATH,
            &[id, "messages"],
        )?;
        let token = access_token.map_or(Token::None, Token::Bearer);
        self.request(url, message.body()?, token)
    }

    /// Sends a chatbot message in a conversation.
    pub async fn send_bot_message_to_conversation(
        &self,
        access_token: Option<&SecretString>,
        conversation_id: &str,
        message: &BotMessage,
    ) -> Result<BotMessageResponse, DivarError> {
        let request =
            self.prepare_bot_message_to_conversation(access_token, conversation_id, message)?;
        self.send(&request).await
    }

    /// The chatbot request to a user:
    /// `POST {open_api_base_url}/v1/open-platform/chat/bot/users/{user_id}/messages` with
    /// `x-api-key` and `Authorization: Bearer` (scope `CHAT_BOT_USER_MESSAGE_SEND`).
    pub fn prepare_bot_message_to_user(
        &self,
        access_token: &SecretString,
        user_id: &str,
        message: &BotMessage,
    ) -> Result<PreparedRequest, DivarError> {
        message.validate()?;
        let id = path_id("user_id", user_id)?;
        let url = self.url(&self.open_api_base_url, BOT_USERS_PATH, &[id, "messages"])?;
        self.request(url, message.body()?, Token::Bearer(access_token))
    }

    /// Sends a chatbot message to a user, starting the conversation if needed.
    pub async fn send_bot_message_to_user(
        &self,
        access_token: &SecretString,
        user_id: &str,
        message: &BotMessage,
    ) -> Result<BotMessageResponse, DivarError> {
        let request = self.prepare_bot_message_to_user(access_token, user_id, message)?;
        self.send(&request).await
    }

    /// The legacy registration request: `POST {base_url}{legacy_register_path}` with
    /// `x-api-key` and `x-access-token`. The identification key is shown as `***`.
    pub fn prepare_legacy_registration(
        &self,
        access_token: &SecretString,
        registration: &LegacyRegistration,
    ) -> Result<PreparedRequest, DivarError> {
        registration.validate()?;
        let url = self.url(&self.base_url, &self.settings.legacy_register_path, &[])?;
        let body = registration.masked_body();
        Ok(self
            .request(url, body, Token::Legacy(access_token))?
            .secret_field("identification_key", &registration.identification_key))
    }

    /// Registers the legacy CHAT_MESSAGE webhook of a post. Divar's answer is ignored.
    pub async fn register_legacy_webhook(
        &self,
        access_token: &SecretString,
        registration: &LegacyRegistration,
    ) -> Result<(), DivarError> {
        let request = self.prepare_legacy_registration(access_token, registration)?;
        self.execute(&request).await.map(drop)
    }

    /// The events subscription request:
    /// `POST {open_api_base_url}/v1/open-platform/events/subscriptions` with `x-api-key` and
    /// `Authorization: Bearer`.
    pub fn prepare_subscription(
        &self,
        access_token: &SecretString,
        subscription: &EventSubscription,
    ) -> Result<PreparedRequest, DivarError> {
        subscription.validate()?;
        let url = self.url(&self.open_api_base_url, SUBSCRIPTIONS_PATH, &[])?;
        self.request(url, subscription.body()?, Token::Bearer(access_token))
    }

    /// Subscribes to events. The subscription lives as long as the token: subscribe again
    /// after a refresh. Divar's answer is ignored.
    pub async fn subscribe_events(
        &self,
        access_token: &SecretString,
        subscription: &EventSubscription,
    ) -> Result<(), DivarError> {
        let request = self.prepare_subscription(access_token, subscription)?;
        self.execute(&request).await.map(drop)
    }

    /// Who the user of `access_token` is: `GET {open_api_base_url}/v1/open-platform/users`
    /// with `x-api-key` and `Authorization: Bearer`. The app-scoped `user_id` is present only
    /// with the `USER_ID` scope, the phone number only with `USER_PHONE`.
    pub fn prepare_user(&self, access_token: &SecretString) -> Result<PreparedRequest, DivarError> {
        let url = self.url(&self.open_api_base_url, USERS_PATH, &[])?;
        let api_key = self.api_key()?;
        Ok(PreparedRequest::bodiless(Method::GET, url)
            .secret_header("x-api-key", "", api_key)
            .secret_header("authorization", "Bearer ", non_empty(access_token)?))
    }

    /// Asks Divar who the user of `access_token` is (see [`Self::prepare_user`]).
    pub async fn user(&self, access_token: &SecretString) -> Result<UserInfo, DivarError> {
        let request = self.prepare_user(access_token)?;
        self.send(&request).await
    }

    fn api_key(&self) -> Result<&SecretString, DivarError> {
        self.settings
            .api_key
            .as_ref()
            .filter(|k| !k.expose_secret().is_empty())
            .ok_or_else(|| DivarError::NotConfigured("divar.api_key is not set".to_owned()))
    }

    /// A POST with a JSON body, the API key and the user's token.
    ///
    /// None of these POSTs is [repeatable](PreparedRequest::is_repeatable): Divar takes no
    /// idempotency key. A message sent twice is seen twice by the user. Registrations and
    /// subscriptions are treated the same way, because a repeat after the first call took
    /// effect has no documented outcome: a second subscription, or a refusal of the repeat,
    /// which would make `subscribe legacy` delete the key Divar then uses.
    fn request(
        &self,
        url: reqwest::Url,
        body: serde_json::Value,
        token: Token<'_>,
    ) -> Result<PreparedRequest, DivarError> {
        let api_key = self.api_key()?;
        let request =
            PreparedRequest::json(Method::POST, url, body).secret_header("x-api-key", "", api_key);
        Ok(match token {
            Token::Legacy(t) => request.secret_header("x-access-token", "", non_empty(t)?),
            Token::Bearer(t) => request.secret_header("authorization", "Bearer ", non_empty(t)?),
            Token::None => request,
        })
    }
}

fn non_empty(token: &SecretString) -> Result<&SecretString, DivarError> {
    if token.expose_secret().trim().is_empty() {
        return Err(ValidationError::EmptyField("access_token").into());
    }
    Ok(token)
}

/// An id put in the path: `.` and `..` would silently change the path.
fn path_id<'a>(field: &'static str, id: &'a str) -> Result<&'a str, ValidationError> {
    if id.trim().is_empty() || id == "." || id == ".." {
        return Err(ValidationError::InvalidField {
            field,
            reason: "must be a non-empty id other than `.` and `..`",
        });
    }
    Ok(id)
}
