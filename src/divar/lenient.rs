//! Serde helpers for fields whose JSON type varies between Divar's sources: 64-bit integers
//! as numbers or strings (proto3 JSON), ids as strings or numbers, booleans as `true` or
//! `"true"` (docs/divar-protocol.md §3.3–§3.6).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

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
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            serde::de::Error::custom(format!("expected a non-negative integer, found {n}"))
        })?),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!("expected a non-negative integer, found {s:?}"))
        })?),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected an integer, found {other}"
            )));
        }
    })
}

/// An optional signed integer that may arrive as a number or a numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            Some(n.as_i64().ok_or_else(|| {
                serde::de::Error::custom(format!("expected an integer, found {n}"))
            })?)
        }
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            Some(s.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("expected an integer, found {s:?}"))
            })?)
        }
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected an integer, found {other}"
            )));
        }
    })
}

/// An optional float that may arrive as a number or a numeric string.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            s.trim()
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("expected a number, found {s:?}")))?,
        ),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a number, found {other}"
            )));
        }
    })
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
