//! Buttons from the command line: the legacy `--sender-link`-style flags, and the
//! `--buttons-json` file of the current APIs.

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::call::Failure;
use crate::divar::outbound::{ButtonGrid, LegacyButton, LegacyDirectLinkData, LegacyLinkData};

/// The `--buttons-json` file of `send conversation`: the button fields of the request body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConversationButtons {
    /// Buttons shown only to the author.
    pub sender_buttons: Option<ButtonGrid>,
    /// Buttons shown only to the counterpart.
    pub receiver_buttons: Option<ButtonGrid>,
}

/// The `--buttons-json` file of `send bot`: the button field of the request body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BotButtons {
    /// Buttons under the message.
    pub buttons: Option<ButtonGrid>,
}

/// Reads a `--buttons-json` file; a problem names the file and the JSON path.
pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, Failure> {
    let fail =
        |problem: String| Failure::Usage(format!("--buttons-json {}: {problem}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let at = e.path().to_string();
        if at == "." {
            fail(e.inner().to_string())
        } else {
            fail(format!("at {at}: {}", e.inner()))
        }
    })
}

/// Parses `CAPTION,ICON,KEY=VALUE...` into a legacy `LINK` button. The icon may be left
/// empty; each pair becomes a string of `extra_data`.
pub(super) fn parse_link(value: &str) -> Result<LegacyButton, String> {
    let mut parts = value.split(',');
    let caption = caption(parts.next())?;
    let icon_name = icon(parts.next());
    let mut extra_data = Map::new();
    for pair in parts {
        let Some((key, data)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(format!(
                "expected CAPTION,ICON,KEY=VALUE...; `{pair}` is not KEY=VALUE"
            ));
        };
        if extra_data
            .insert(key.trim().to_owned(), Value::String(data.to_owned()))
            .is_some()
        {
            return Err(format!("key `{}` is given twice", key.trim()));
        }
    }
    Ok(LegacyButton::Link(LegacyLinkData {
        icon_name,
        caption,
        extra_data,
    }))
}

/// Parses `CAPTION,ICON,URL` into a legacy `DIRECT_LINK` button. The icon may be left empty;
/// the URL may hold commas.
pub(super) fn parse_direct_link(value: &str) -> Result<LegacyButton, String> {
    let mut parts = value.splitn(3, ',');
    let caption = caption(parts.next())?;
    let icon_name = icon(parts.next());
    let Some(direct_link) = parts.next().map(str::trim) else {
        return Err("expected CAPTION,ICON,URL".to_owned());
    };
    match url::Url::parse(direct_link) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => return Err(format!("`{direct_link}` is not an absolute http(s) URL")),
    }
    Ok(LegacyButton::DirectLink(LegacyDirectLinkData {
        icon_name,
        caption,
        direct_link: direct_link.to_owned(),
    }))
}

/// Splits `KEY=VALUE`.
pub(super) fn parse_pair(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, data)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), data.to_owned())),
        _ => Err(format!("`{value}` is not KEY=VALUE")),
    }
}

fn caption(part: Option<&str>) -> Result<String, String> {
    match part.map(str::trim) {
        Some(c) if !c.is_empty() => Ok(c.to_owned()),
        _ => Err("the caption (before the first comma) must not be empty".to_owned()),
    }
}

fn icon(part: Option<&str>) -> Option<String> {
    part.map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_link_flag_becomes_a_link_button_with_extra_data() {
        let button =
            parse_link("پیگیری درخواست,CAR_INSPECTED,order_id=ord_58213,role=seller").unwrap();
        assert_eq!(
            serde_json::to_value(button).unwrap(),
            json!({"action": "LINK", "data": {
                "icon_name": "CAR_INSPECTED",
                "caption": "پیگیری درخواست",
                "extra_data": {"order_id": "ord_58213", "role": "seller"}
            }})
        );
    }

    #[test]
    fn a_link_flag_may_leave_out_the_icon_and_the_data() {
        let LegacyButton::Link(data) = parse_link("Open").unwrap() else {
            panic!("a link")
        };
        assert_eq!((data.icon_name, data.extra_data.len()), (None, 0));
        assert!(parse_link("Open,,a=1").is_ok());
    }

    #[test]
    fn a_link_flag_without_key_value_pairs_or_caption_is_refused() {
        assert!(parse_link("Open,INFO,oops").is_err());
        assert!(parse_link("Open,INFO,=v").is_err());
        assert!(parse_link("Open,INFO,a=1,a=2").is_err());
        assert!(parse_link(",INFO,a=1").is_err());
    }

    #[test]
    fn a_direct_link_keeps_commas_in_its_url_and_needs_http() {
        let LegacyButton::DirectLink(data) =
            parse_direct_link("Report,FILE,https://x.example/r?a=1,2").unwrap()
        else {
            panic!("a direct link")
        };
        assert_eq!(data.direct_link, "https://x.example/r?a=1,2");
        assert_eq!(data.icon_name.as_deref(), Some("FILE"));
        assert!(parse_direct_link("Report,FILE").is_err());
        assert!(parse_direct_link("Report,FILE,ftp://x.example").is_err());
        assert!(parse_direct_link("Report,FILE,/relative").is_err());
    }

    #[test]
    fn pairs_need_a_key() {
        assert_eq!(
            parse_pair("source=cli=1").unwrap(),
            ("source".into(), "cli=1".into())
        );
        assert!(parse_pair("=x").is_err());
        assert!(parse_pair("x").is_err());
    }
}
