//! Settings errors as people read them: `key: problem`, with a secret never shown.

use super::{SECRET_FIELDS, SECRET_KEYS};

/// The config crate's message as `key: problem`, the way every other settings error reads:
/// `invalid type: string "lots", expected an integer for key `x.y` in the environment`
/// becomes `x.y: got "lots"; expected an integer (from the environment)`.
pub(super) fn readable(message: &str) -> String {
    if let Some(at) = message.find("TOML parse error at ") {
        return toml_error(&message[at..]);
    }
    if let Some(field) = message
        .strip_prefix("missing configuration field \"")
        .and_then(|m| m.strip_suffix('"'))
    {
        return missing(field);
    }
    let Some((problem, rest)) = message.split_once(" for key `") else {
        return message.to_owned();
    };
    let Some((key, tail)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let key = &dotted(key);
    let problem = match problem
        .strip_prefix("invalid type: ")
        .and_then(|p| p.split_once(", expected "))
    {
        // A secret given in the wrong shape is named by its kind, never echoed: the message
        // lands in terminals, CI output and container logs.
        Some((got, expected)) if is_secret(key) => {
            let kind = got.split_whitespace().next().unwrap_or(got);
            format!("got a {kind} (not shown: a secret); expected {expected}")
        }
        Some((got, expected)) => {
            let got = got.strip_prefix("string ").unwrap_or(got);
            format!("got {got}; expected {expected}")
        }
        None => problem.to_owned(),
    };
    let tail = tail.trim();
    let tail = tail.strip_prefix("in ").unwrap_or(tail);
    if tail.is_empty() {
        format!("{key}: {problem}")
    } else {
        format!("{key}: {problem} (from {tail})")
    }
}

/// A key as the config crate writes it (`forward.endpoints[0]secret`) with its dots.
fn dotted(field: &str) -> String {
    let mut key = String::with_capacity(field.len() + 2);
    let mut after_index = false;
    for c in field.chars() {
        if after_index && c != '.' && c != '[' {
            key.push('.');
        }
        after_index = c == ']';
        key.push(c);
    }
    key
}

/// Whether a setting (`api.tokens[0]`, `forward.endpoints[1].secret`, ...) holds a secret.
fn is_secret(key: &str) -> bool {
    let mut plain = String::with_capacity(key.len());
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => plain.push(c),
            _ => {}
        }
    }
    let leaf = plain.rsplit('.').next().unwrap_or(&plain);
    SECRET_KEYS.contains(&plain.as_str()) || SECRET_FIELDS.contains(&leaf)
}

/// A settings file that is not valid TOML, as position and problem only: the parser quotes
/// the offending line, which may hold a secret.
fn toml_error(message: &str) -> String {
    let mut lines = message.lines();
    let at = lines.next().unwrap_or(message).trim_end();
    // The quoted source: `  |`, `1 | tokens = [...]` and the caret line under it.
    let quoted = |l: &str| {
        l.split_once('|')
            .is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()))
    };
    let problem: Vec<&str> = lines
        .map(str::trim)
        .filter(|l| !l.is_empty() && !quoted(l))
        .collect();
    if problem.is_empty() {
        at.to_owned()
    } else {
        format!("{at}: {}", problem.join("; "))
    }
}

/// A required setting that is absent. The config crate writes the field of a list entry
/// without its dot (`forward.endpoints[0]secret`); a secret may come from a file instead.
pub(super) fn missing(field: &str) -> String {
    let key = dotted(field);
    if is_secret(&key) {
        format!("{key}: missing; set it, or {key}_file to the path of a file that holds it")
    } else {
        format!("{key}: missing")
    }
}
