//! Personal data in records shown to a reader without the `pii` scope: phone numbers and
//! the names that go with them (a CONTACT message's `name`) are masked wherever they sit in
//! a record's JSON. Forwarding pushes whole records; only the read API and the live stream
//! mask.

use serde_json::Value;

pub use crate::ingest::normalise::mask_phone;

/// Whether a key names a phone number (`phone`, `phone_number`, `mobile`, ...).
fn is_phone_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("phone") || key.contains("mobile")
}

/// A name fit for a reader without `pii`: its first character, the rest masked.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Whether JSON text may hold something [`mask`] would change: most records hold no phone,
/// and are then written out without being parsed.
pub fn may_hold_phone(json: &str) -> bool {
    let lower = json.to_ascii_lowercase();
    lower.contains("phone") || lower.contains("mobile")
}

/// Masks every phone number in `value`, and the `name` beside one; true when anything
/// changed.
pub fn mask(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let beside_phone = map
                .iter()
                .any(|(k, v)| is_phone_key(k) && (v.is_string() || v.is_number()));
            let mut changed = false;
            for (k, v) in map.iter_mut() {
                let phone = is_phone_key(k);
                match v {
                    Value::String(s) if phone => {
                        *s = mask_phone(s);
                        changed = true;
                    }
                    Value::Number(n) if phone => {
                        *v = Value::String(mask_phone(&n.to_string()));
                        changed = true;
                    }
                    Value::String(s) if beside_phone && k == "name" => {
                        *s = mask_name(s);
                        changed = true;
                    }
                    other => changed |= mask(other),
                }
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |c, item| mask(item) | c),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phones_and_the_names_beside_them_are_masked_anywhere() {
        let mut v = json!({
            "contact": {"phone": "+989121234567", "name": "Ali Rezaei"},
            "list": [{"phone_number": 9121234567_i64}],
            "name": "a post title",
        });
        assert!(mask(&mut v));
        assert_eq!(v["contact"]["phone"], "+989*******67");
        assert_eq!(v["contact"]["name"], "A*********");
        assert_eq!(v["list"][0]["phone_number"], "9121****67");
        assert_eq!(
            v["name"], "a post title",
            "a name with no phone beside it stays"
        );
        let mut plain = json!({"text": "hello"});
        assert!(!mask(&mut plain));
    }
}
