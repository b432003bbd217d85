//! JSON parsing that keeps bodies Divar may really send: strings with lone UTF-16 surrogate
//! escapes (`"\ud800"`), which serde_json rejects, are parsed with each lone surrogate read
//! as U+FFFD. The raw body is always stored unchanged beside the parsed value.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parses a JSON body, tolerating lone surrogate escapes inside strings.
pub fn parse_json(body: &[u8]) -> Result<Value, serde_json::Error> {
    parse_as(body)
}

/// Parses a JSON body as a `T`, tolerating lone surrogate escapes inside strings. A small
/// `T` reads what it names and skips the rest without building it.
pub fn parse_as<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(first) => match replace_lone_surrogates(body) {
            Some(fixed) => serde_json::from_slice(&fixed),
            None => Err(first),
        },
    }
}

/// Returns a copy of `body` with every lone surrogate escape inside a string replaced by
/// `\ufffd`, or `None` when there is none. Each replacement has the same length as the
/// escape it replaces, so byte offsets in error messages stay true.
pub fn replace_lone_surrogates(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = body.to_vec();
    let mut changed = false;
    let mut in_string = false;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if !in_string {
            in_string = b == b'"';
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = false;
                i += 1;
            }
            b'\\' if body.get(i + 1) == Some(&b'u') => {
                let Some(unit) = hex4(body, i + 2) else {
                    i += 2;
                    continue;
                };
                if (0xD800..0xDC00).contains(&unit) {
                    let low = (body.get(i + 6) == Some(&b'\\') && body.get(i + 7) == Some(&b'u'))
                        .then(|| hex4(body, i + 8))
                        .flatten();
                    if low.is_some_and(|l| (0xDC00..0xE000).contains(&l)) {
                        i += 12;
                    } else {
                        out[i..i + 6].copy_from_slice(b"\\ufffd");
                        changed = true;
                        i += 6;
                    }
                } else if (0xDC00..0xE000).contains(&unit) {
                    out[i..i + 6].copy_from_slice(b"\\ufffd");
                    changed = true;
                    i += 6;
                } else {
                    i += 6;
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    changed.then_some(out)
}

fn hex4(body: &[u8], at: usize) -> Option<u16> {
    let digits = body.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u16::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_high_surrogate_becomes_replacement_character() {
        let v = parse_json(br#"{"t":"a\ud800b"}"#).unwrap();
        assert_eq!(v["t"], "a\u{fffd}b");
    }

    #[test]
    fn lone_low_surrogate_becomes_replacement_character() {
        let v = parse_json(br#"{"t":"\udc00"}"#).unwrap();
        assert_eq!(v["t"], "\u{fffd}");
    }

    #[test]
    fn valid_surrogate_pair_is_kept() {
        let v = parse_json(br#"{"t":"\ud83d\ude00 \ud800"}"#).unwrap();
        assert_eq!(v["t"], "\u{1f600} \u{fffd}");
    }

    #[test]
    fn escaped_backslash_before_u_is_not_an_escape() {
        assert!(replace_lone_surrogates(br#"{"t":"\\ud800"}"#).is_none());
    }

    #[test]
    fn surrogates_outside_strings_are_left_to_the_parser() {
        assert!(parse_json(br#"{"t": \ud800}"#).is_err());
    }

    #[test]
    fn invalid_json_is_still_an_error() {
        assert!(parse_json(b"{not json").is_err());
    }
}
