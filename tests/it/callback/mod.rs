//! Button-click callbacks: every click fixture and its reply, the redirect rules, the signed
//! state, and rejections. Shared here: an app with rules exercising every condition.

mod replies;
mod rules;
mod signed_state;

use kenar_hook::callback::rules::RuleSettings;
use kenar_hook::config::Settings;
use kenar_hook::store::{ClickOutcome, Side};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;
pub(super) const SIGNING_KEY: &str = "click-state-signing-key-7d1e4b9a0c52f386";

pub(super) fn rule(name: &str, url: &str) -> RuleSettings {
    RuleSettings {
        name: name.into(),
        source: None,
        version: None,
        post_token: None,
        side: None,
        data: Default::default(),
        url: Some(url.into()),
        text_message: None,
    }
}

/// Rules exercising every condition; a fallback for the rest.
pub(super) fn configure(s: &mut Settings) {
    let c = &mut s.callback;
    c.allowed_hosts = vec!["app.example-kenar.ir".into(), "*.example.ir".into()];
    c.fallback_url = Some("https://app.example-kenar.ir/start?post={post_token}".into());
    let mut answer = rule(
        "answer",
        "https://app.example-kenar.ir/answer/{data.answer}",
    );
    answer.version = Some("dynamic_action".into());
    answer.text_message = Some("پاسخ ثبت شد".into());
    let mut addon = rule(
        "addon",
        "https://reports.example.ir/{data.addon}?post={post_token}",
    );
    addon.source = Some("post_addon".into());
    let mut seller = rule(
        "seller",
        "https://app.example-kenar.ir/seller/{conversation_id}?u={user_id}",
    );
    seller.side = Some("supply".into());
    seller.version = Some("v2".into());
    let mut buyer = rule(
        "buyer-order",
        "https://app.example-kenar.ir/divar/landing?post={post_token}&order={data.order_id}&side={side}&peer={peer_id}",
    );
    buyer.data.insert("role".into(), "buyer".into());
    let mut legacy_seller = rule(
        "legacy-seller",
        "https://app.example-kenar.ir/legacy/{side}",
    );
    legacy_seller.version = Some("legacy".into());
    legacy_seller.post_token = Some("AZx7Kp2Q".into());
    legacy_seller.side = Some("supply".into());
    c.rules = vec![answer, addon, seller, buyer, legacy_seller];
}

pub(super) async fn click_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, configure).await
}

impl TestApp {
    async fn post_click(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header("authorization", KEY)
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.expect("request")
    }
}
