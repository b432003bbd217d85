//! Timestamps as Divar sends them: integers, numeric strings, floats or RFC 3339 strings, in
//! an unstated unit (docs/divar-protocol.md §3.1, §3.2).

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Parses a timestamp value. Numbers are read in the unit their magnitude implies:
/// ≥ 1e17 nanoseconds, ≥ 1e14 microseconds, ≥ 1e11 milliseconds, otherwise seconds.
/// `null`, `""` and `0` (the proto3 zero value) mean "absent" and give `Ok(None)`.
pub fn parse_timestamp(value: &Value) -> Result<Option<DateTime<Utc>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                from_integer(i)
            } else if let Some(f) = n.as_f64() {
                from_float(f)
            } else {
                Err(format!("{n} is out of range"))
            }
        }
        Value::String(s) => parse_timestamp_str(s),
        other => Err(format!(
            "expected a number or a string, found {}",
            kind(other)
        )),
    }
}

/// Parses a timestamp written as a string: a number, or RFC 3339 with up to nine fractional
/// digits.
pub fn parse_timestamp_str(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(i) = s.parse::<i64>() {
        return from_integer(i);
    }
    if let Ok(f) = s.parse::<f64>() {
        return from_float(f);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| format!("{s:?} is neither a number nor RFC 3339 ({e})"))
}

fn from_integer(i: i64) -> Result<Option<DateTime<Utc>>, String> {
    if i == 0 {
        return Ok(None);
    }
    if i < 0 {
        return Err(format!("{i} is before 1970"));
    }
    let micros = match i {
        i if i >= 100_000_000_000_000_000 => i / 1_000,
        i if i >= 100_000_000_000_000 => i,
        i if i >= 100_000_000_000 => i * 1_000,
        i => i * 1_000_000,
    };
    at_micros(micros, i)
}

fn at_micros(micros: i64, sent: impl std::fmt::Display) -> Result<Option<DateTime<Utc>>, String> {
    DateTime::from_timestamp_micros(micros)
        .map(Some)
        .ok_or_else(|| format!("{sent} is out of range"))
}

fn from_float(f: f64) -> Result<Option<DateTime<Utc>>, String> {
    if !f.is_finite() || f < 0.0 {
        return Err(format!("{f} is not a valid time"));
    }
    let micros = if f >= 1e17 {
        f / 1e3
    } else if f >= 1e14 {
        f
    } else if f >= 1e11 {
        f * 1e3
    } else {
        f * 1e6
    };
    // Already in microseconds: going through `from_integer` would apply the unit rule a
    // second time (float seconds below 1e8 were read as milliseconds).
    at_micros((micros.round() as i64).max(1), f)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn micros(v: Value) -> i64 {
        parse_timestamp(&v).unwrap().unwrap().timestamp_micros()
    }

    #[test]
    fn units_are_detected_from_magnitude() {
        assert_eq!(
            micros(json!(1_741_508_067_315_000_i64)),
            1_741_508_067_315_000
        );
        assert_eq!(
            micros(json!(1_741_508_067_315_000_123_i64)),
            1_741_508_067_315_000
        );
        assert_eq!(micros(json!(1_741_508_067_315_i64)), 1_741_508_067_315_000);
        assert_eq!(micros(json!(1_741_508_067)), 1_741_508_067_000_000);
    }

    #[test]
    fn numeric_strings_and_floats_are_accepted() {
        assert_eq!(micros(json!("1741508219515000")), 1_741_508_219_515_000);
        assert_eq!(micros(json!(1_741_508_067.5)), 1_741_508_067_500_000);
        assert_eq!(micros(json!("1741508067.5")), 1_741_508_067_500_000);
        // Early times in float seconds: the unit rule applies once.
        assert_eq!(micros(json!(50_000_000.25)), 50_000_000_250_000);
        assert_eq!(micros(json!("1000.5")), 1_000_500_000);
    }

    #[test]
    fn rfc3339_with_nine_fraction_digits_is_accepted() {
        assert_eq!(
            micros(json!("2025-03-09T08:27:47.815000Z")),
            1_741_508_867_815_000
        );
        assert_eq!(
            micros(json!("2025-03-09T11:57:47.815000123+03:30")),
            1_741_508_867_815_000
        );
    }

    #[test]
    fn empty_values_mean_absent() {
        assert_eq!(parse_timestamp(&json!("")).unwrap(), None);
        assert_eq!(parse_timestamp(&json!(null)).unwrap(), None);
        assert_eq!(parse_timestamp(&json!(0)).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_timestamp(&json!("yesterday")).is_err());
        assert!(parse_timestamp(&json!(true)).is_err());
        assert!(parse_timestamp(&json!(-5)).is_err());
    }
}
