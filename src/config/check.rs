//! What `config check` prints: every effective setting, its layer, secrets masked.

use super::*;

/// One effective setting, as `config check` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// `section.key`.
    pub key: String,
    /// The value as TOML, secrets masked.
    pub value: String,
    /// `default`, `file PATH` or `env VARIABLE`.
    pub source: String,
}

pub(super) const MASK: &str = "\"********\"";

pub(super) fn describe(
    config: &Config,
    layers: &Layers,
    settings: &Settings,
    env: &HashMap<String, String>,
) -> Vec<Effective> {
    let mut keys = Vec::new();
    list_keys(&as_table(config), "", &mut keys);
    keys.sort();
    let table = as_table(config);
    keys.into_iter()
        .map(|key| {
            let value = if key == "database.url" {
                format!("{:?}", masked_url(settings.database.url.expose_secret()))
            } else if SECRET_KEYS.contains(&key.as_str()) {
                match &lookup(&table, &key).map(|v| &v.kind) {
                    Some(config::ValueKind::Array(items)) => {
                        format!("[{}]", vec![MASK; items.len()].join(", "))
                    }
                    _ => MASK.to_owned(),
                }
            } else {
                lookup(&table, &key)
                    .map(|v| render(v, true))
                    .unwrap_or_default()
            };
            let source = layers.source(&key, env);
            Effective { key, value, source }
        })
        .collect()
}

/// A database URL with its password replaced by asterisks.
pub fn masked_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

pub(super) fn toml_value(value: &config::Value) -> String {
    render(value, false)
}

/// A value as TOML; with `masked`, the fields of [`SECRET_FIELDS`] in tables are masked.
pub(super) fn render(value: &config::Value, masked: bool) -> String {
    match &value.kind {
        config::ValueKind::Nil => "\"\"".to_owned(),
        config::ValueKind::String(s) => format!("{s:?}"),
        config::ValueKind::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(|v| render(v, masked))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        config::ValueKind::Table(t) => {
            let mut entries: Vec<_> = t.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "{{ {} }}",
                entries
                    .iter()
                    .map(
                        |(k, v)| match (masked, SECRET_FIELDS.contains(&k.as_str())) {
                            (true, true) => format!("{k} = {MASK}"),
                            _ => format!("{k} = {}", render(v, masked)),
                        }
                    )
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        other => other.to_string(),
    }
}
