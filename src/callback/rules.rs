//! Redirect rules: which URL a click is sent to. An ordered list; the first rule whose every
//! condition holds wins. Targets are URL templates whose placeholders are filled with
//! percent-encoded click facts, and every target must be https (or http://localhost) on an
//! allowed host — checked when settings load and again after filling.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use super::click::Click;
pub use crate::config::callback::{CallbackSettings, RuleSettings};
use crate::store::ClickVersion;

/// What the rules decided for a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The matched rule's name, or `fallback`.
    pub rule: String,
    /// The filled, checked target, if the rule has one.
    pub url: Option<Url>,
    /// The rule's text message, if any.
    pub text_message: Option<String>,
}

/// Why a click could not be given a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// No rule matches and there is no fallback.
    #[error("no redirect rule matches this click and callback.fallback_url is not set")]
    NoMatch,
    /// The filled template is not an allowed URL.
    #[error("rule {rule}: the target is not allowed: {problem}")]
    Disallowed {
        /// The rule's name.
        rule: String,
        /// What is wrong with the URL.
        problem: String,
    },
}

/// Everything but RFC 3986's unreserved characters is encoded, so a value can never add a
/// path segment, a query parameter or a fragment.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl CallbackSettings {
    /// Checks every rule and the fallback: known fields, a parsable template, an allowed
    /// target. Returns `(key, problem)` for the first failure.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            if host.trim().is_empty() || host.contains('/') {
                return Err((
                    format!("callback.allowed_hosts[{i}]"),
                    "not a host name".into(),
                ));
            }
        }
        if let Some(url) = self.fallback_url.as_deref().filter(|u| !u.is_empty()) {
            check_template(url, &self.allowed_hosts)
                .map_err(|p| ("callback.fallback_url".to_owned(), p))?;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let key = |field: &str| format!("callback.rules[{i}].{field}");
            if rule.name.trim().is_empty() {
                return Err((key("name"), "must not be empty".into()));
            }
            if let Some(v) = &rule.version {
                if ClickVersion::parse(v).is_none() {
                    return Err((
                        key("version"),
                        "must be legacy, v2 or dynamic_action".into(),
                    ));
                }
            }
            if let Some(side) = &rule.side {
                if !matches!(side.to_ascii_lowercase().as_str(), "supply" | "demand") {
                    return Err((key("side"), "must be supply or demand".into()));
                }
            }
            match (&rule.url, &rule.text_message) {
                (None, None) => {
                    return Err((key("url"), "a rule needs a url or a text_message".into()));
                }
                (Some(url), _) => {
                    check_template(url, &self.allowed_hosts).map_err(|p| (key("url"), p))?
                }
                (None, Some(_)) => {}
            }
        }
        if self.state_ttl_secs == 0 {
            return Err((
                "callback.state_ttl_secs".into(),
                "must be greater than 0".into(),
            ));
        }
        Ok(())
    }

    /// The first matching rule's decision, or the fallback's.
    pub fn decide(&self, click: &Click) -> Result<Decision, RuleError> {
        // A rule without a url can only answer a dynamic action (with its text).
        let rule = self.rules.iter().find(|r| {
            matches(r, click) && (r.url.is_some() || click.version == ClickVersion::DynamicAction)
        });
        let (name, template, text_message) = match rule {
            Some(r) => (r.name.clone(), r.url.clone(), r.text_message.clone()),
            None => match self.fallback_url.as_deref().filter(|u| !u.is_empty()) {
                Some(url) => ("fallback".to_owned(), Some(url.to_owned()), None),
                None => return Err(RuleError::NoMatch),
            },
        };
        let url = match template {
            Some(t) => Some(checked_url(&fill(&t, click), &self.allowed_hosts).map_err(
                |problem| RuleError::Disallowed {
                    rule: name.clone(),
                    problem,
                },
            )?),
            None => None,
        };
        Ok(Decision {
            rule: name,
            url,
            text_message,
        })
    }
}

fn matches(rule: &RuleSettings, click: &Click) -> bool {
    let eq = |want: &Option<String>, have: Option<&str>| match want {
        None => true,
        Some(w) => have.is_some_and(|h| h.eq_ignore_ascii_case(w)),
    };
    eq(&rule.source, click.facts.source.as_deref())
        && eq(&rule.version, Some(click.version.as_str()))
        && rule
            .post_token
            .as_ref()
            .is_none_or(|p| click.facts.post_token.as_deref() == Some(p))
        && eq(&rule.side, click.facts.side.map(|s| s.as_str()))
        && rule
            .data
            .iter()
            .all(|(k, v)| click.data_text(k).as_deref() == Some(v.as_str()))
}

/// Fills a template's placeholders with the click's facts, percent-encoded. A placeholder
/// whose fact is unknown becomes empty; an unknown placeholder is left as it is (and then
/// fails URL parsing or the host check).
pub fn fill(template: &str, click: &Click) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        match click.placeholder(name) {
            Some(value) => out.extend(utf8_percent_encode(&value.unwrap_or_default(), COMPONENT)),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Checks a template at load time: filled with a harmless value, it must be an allowed URL.
fn check_template(template: &str, allowed: &[String]) -> Result<(), String> {
    let probe = Click::probe();
    // An unknown name would otherwise reach the URL percent-encoded (`%7Bnope%7D`).
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if probe.placeholder(name).is_none() || name == "data." {
            return Err(format!(
                "unknown placeholder {{{name}}} (got {template:?}; expected {{post_token}}, \
                 {{conversation_id}}, {{user_id}}, {{peer_id}}, {{side}}, {{source}} or {{data.KEY}})"
            ));
        }
        rest = &after[close + 1..];
    }
    checked_url(&fill(template, &probe), allowed).map(|_| ())
}

/// Parses a filled target and checks its scheme and host.
pub fn checked_url(candidate: &str, allowed: &[String]) -> Result<Url, String> {
    let url = Url::parse(candidate).map_err(|e| format!("{candidate:?} is not a URL ({e})"))?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let local = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        other => {
            return Err(format!(
                "scheme {other} is not allowed (https only, or http://localhost)"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".to_owned());
    }
    let allowed_host = allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        match a.strip_prefix("*.") {
            Some(parent) => host.ends_with(&format!(".{parent}")),
            None => host == a,
        }
    });
    if !allowed_host {
        return Err(format!("host {host:?} is not in callback.allowed_hosts"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(hosts: &[&str]) -> Vec<String> {
        hosts.iter().map(|h| (*h).to_owned()).collect()
    }

    /// Each of `urls` is refused, and the problem says `why`.
    fn refused(urls: &[&str], hosts: &[String], why: &str) {
        for url in urls {
            let problem = checked_url(url, hosts).unwrap_err();
            assert!(problem.contains(why), "{url}: {problem}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        let hosts = allowed(&["example.ir"]);
        for url in [
            "https://user:pass@example.ir/",
            "https://user@example.ir/",
            "https://:pass@example.ir/",
        ] {
            assert_eq!(
                checked_url(url, &hosts),
                Err("credentials in the URL are not allowed".to_owned()),
                "{url}"
            );
        }
        assert!(checked_url("https://example.ir/", &hosts).is_ok());
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        let hosts = allowed(&["*.example.ir"]);
        for url in ["https://app.example.ir/", "https://a.b.example.ir/x?y=1"] {
            assert!(checked_url(url, &hosts).is_ok(), "{url}");
        }
        refused(
            &[
                "https://evilexample.ir/",
                "https://example.ir.evil.com/",
                "https://app.example.ir.evil.com/",
                "https://example.ir/",
                "https://app-example.ir/",
            ],
            &hosts,
            "not in callback.allowed_hosts",
        );
    }

    #[test]
    fn a_plain_host_matches_itself_only() {
        let hosts = allowed(&["example.ir"]);
        refused(
            &[
                "https://app.example.ir/",
                "https://evilexample.ir/",
                "https://example.ir.evil.com/",
            ],
            &hosts,
            "not in callback.allowed_hosts",
        );
    }

    #[test]
    fn http_is_refused_except_on_the_local_machine() {
        let hosts = allowed(&["example.ir", "localhost", "127.0.0.1", "[::1]"]);
        for url in [
            "http://example.ir/signed-in",
            "HTTP://example.ir/",
            "javascript:alert(1)",
            "ftp://example.ir/",
            "//example.ir/",
        ] {
            assert!(checked_url(url, &hosts).is_err(), "{url}");
        }
        let problem = checked_url("http://example.ir/", &hosts).unwrap_err();
        assert!(
            problem.starts_with("scheme http is not allowed"),
            "{problem}"
        );
        for url in [
            "http://localhost:8080/signed-in",
            "http://127.0.0.1/",
            "http://[::1]:3000/",
        ] {
            assert!(checked_url(url, &hosts).is_ok(), "{url}");
        }
        // A local-looking name is not the local machine.
        let hosts = allowed(&["localhost.example.ir"]);
        assert!(checked_url("http://localhost.example.ir/", &hosts).is_err());
    }

    #[test]
    fn hosts_are_compared_without_regard_to_case() {
        // Host names are case-insensitive (RFC 4343): the URL's and the list's case do not
        // matter, and the answer is the normalised URL.
        let url = checked_url("HTTPS://Example.IR/Path", &allowed(&["example.ir"])).unwrap();
        assert_eq!(url.as_str(), "https://example.ir/Path");
        assert!(checked_url("https://example.ir/", &allowed(&["Example.IR"])).is_ok());
        assert!(checked_url("https://APP.Example.ir/", &allowed(&["*.EXAMPLE.ir"])).is_ok());
        assert!(checked_url("https://EvilExample.IR/", &allowed(&["*.example.ir"])).is_err());
    }
}
