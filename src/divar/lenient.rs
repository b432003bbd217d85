//! Serde helpers for fields whose JSON type varies between Divar's sources: 64-bit integers
//! as numbers or strings (proto3 JSON), ids as strings or numbers, booleans as `true` or
//! `"true"` (docs/divar-protocol.md §3.3–§3.6).

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

/// An optional string that may arrive as a string or a number.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {other}"
            )));
        }
    })
}

/// An optional unsigned integer that may arrive as a number or a numeric string.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    opt_number(d, "a non-negative integer", Number::as_u64)
}

/// An optional signed integer that may arrive as a number or a numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    opt_number(d, "an integer", Number::as_i64)
}

/// An optional float that may arrive as a number or a numeric string.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    opt_number(d, "a number", Number::as_f64)
}

// A number, a numeric string (trimmed; empty means absent) or null.
fn opt_number<'de, D: Deserializer<'de>, T: FromStr>(
    d: D,
    expected: &str,
    of: fn(&Number) -> Option<T>,
) -> Result<Option<T>, D::Error> {
    let bad = |found: &dyn Display| {
        serde::de::Error::custom(format!("expected {expected}, found {found}"))
    };
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => of(&n).map(Some).ok_or_else(|| bad(&n)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(&format_args!("{s:?}"))),
        Some(other) => Err(bad(&other)),
    }
}

/// An optional boolean that may arrive as `true`/`false` or `"true"`/`"false"`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "expected a boolean, found {s:?}"
                )));
            }
        },
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a boolean, found {other}"
            )));
        }
    })
}
