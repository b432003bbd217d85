//! Unknown keys and variables, refused with the nearest known name as a suggestion.

use super::*;

/// Settings that have no line of their own in `config/default.toml` (they are unset, or
/// lists of tables, by default).
pub(super) const OPTIONAL_KEYS: &[&str] = &[
    "database.password",
    "divar.api_key",
    "ingest.writers",
    "callback.fallback_url",
    "callback.signing_key",
    "callback.rules",
    "oauth.client_id",
    "oauth.client_secret",
    "oauth.redirect_url",
    "forward.endpoints",
    "api.clients",
    "metrics.token",
];

/// Settings that were replaced, and what to write instead.
const REPLACED: &[(&str, &str)] = &[(
    "api.trust_forwarded_for",
    "list the addresses of your reverse proxies in server.trusted_proxies instead \
     (e.g. trusted_proxies = [\"127.0.0.1/32\"]): X-Forwarded-For is then read only from them",
)];

/// The keys of one `[[callback.rules]]` entry; `data` holds the button's own keys.
pub(super) const RULE_KEYS: &[&str] = &[
    "name",
    "source",
    "version",
    "post_token",
    "side",
    "data",
    "url",
    "text_message",
];

/// Settings that are lists of tables, and the keys each entry may have.
pub(super) const LIST_TABLES: &[(&str, &[&str])] = &[
    ("callback.rules", RULE_KEYS),
    ("forward.endpoints", ENDPOINT_KEYS),
    ("api.clients", clients::CLIENT_KEYS),
];

pub(super) type Table = config::Map<String, config::Value>;

pub(super) fn as_table(config: &Config) -> Table {
    config.clone().try_deserialize().unwrap_or_default()
}

/// A misspelt or misplaced key is refused, not ignored: an ignored `sidee` in a rule once
/// made the rule match every click. The known keys are those of the built-in defaults.
pub(super) fn refuse_unknown_keys(
    config: &Config,
    config_file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<(), ConfigError> {
    let known = Config::builder()
        .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
        .build()
        .map(|c| as_table(&c))
        .unwrap_or_default();
    let all_known = known_keys();
    let mut unknown: Vec<String> = Vec::new();
    find_unknown(&as_table(config), &known, "", &mut unknown);
    let Some(key) = unknown.into_iter().next() else {
        return Ok(());
    };
    if let Some((_, instead)) = REPLACED.iter().find(|(old, _)| *old == key) {
        return Err(ConfigError(format!(
            "{key}: no longer a setting; {instead}"
        )));
    }
    // Values lose their origin on the way here: a variable of this name, else the file.
    let variable = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
    let from = if env.contains_key(&variable) {
        format!(", from {variable}")
    } else {
        let file = config_file.unwrap_or(Path::new("config/default.toml"));
        format!(", in {}", file.display())
    };
    let hint = closest(&key, &all_known)
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    Err(ConfigError(format!("{key}: unknown setting{hint}{from}")))
}

/// Every setting's name, list entries apart: the built-in defaults' keys, the optional
/// ones, and each secret's `_file` form.
pub(super) fn known_keys() -> Vec<String> {
    let known = Config::builder()
        .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
        .build()
        .map(|c| as_table(&c))
        .unwrap_or_default();
    let mut keys: Vec<String> = Vec::new();
    list_keys(&known, "", &mut keys);
    keys.extend(OPTIONAL_KEYS.iter().map(|k| (*k).to_owned()));
    keys.extend(SECRET_KEYS.iter().map(|k| format!("{k}_file")));
    keys
}

/// Variables with the prefix that are read, but are no setting.
pub(super) const OTHER_VARIABLES: &[&str] = &[
    "KENAR_HOOK_CONFIG",
    "KENAR_HOOK_ACCESS_TOKEN",
    "KENAR_HOOK_TEST_DATABASE_URL",
    "KENAR_HOOK_BIN",
];

/// A warning for each `KENAR_HOOK_…` variable that nothing reads (`KENAR_HOOK_API__TOKENS`,
/// one underscore short), naming the variable, never its value, and the nearest real one.
/// A `KENAR_HOOK__…` variable naming no setting is an error instead ([`Settings::load`]).
pub fn unknown_variables(env: &HashMap<String, String>) -> Vec<String> {
    let mut known: Vec<String> = known_keys().iter().map(|k| variable_of(k)).collect();
    known.extend(OTHER_VARIABLES.iter().map(|v| (*v).to_owned()));
    let mut names: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with(&format!("{ENV_PREFIX}_")))
        .filter(|k| !k.starts_with(&format!("{ENV_PREFIX}__")))
        .filter(|k| !known.contains(k))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let upper = name.to_uppercase();
            let hint = known
                .iter()
                .map(|k| (k, edit_distance(&upper, k)))
                .min_by_key(|(_, d)| *d)
                .filter(|(_, d)| *d <= upper.len() / 4 + 1)
                .map(|(k, _)| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            format!("{name} matches no setting and is ignored{hint}")
        })
        .collect()
}

pub(super) fn list_keys(table: &Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = format!("{prefix}{k}");
        match &v.kind {
            config::ValueKind::Table(t) => list_keys(t, &format!("{path}."), out),
            _ => out.push(path),
        }
    }
}

pub(super) fn find_unknown(table: &Table, known: &Table, prefix: &str, out: &mut Vec<String>) {
    let mut keys: Vec<_> = table.keys().collect();
    keys.sort();
    for k in keys {
        let value = &table[k];
        let path = format!("{prefix}{k}");
        if let Some((_, allowed)) = LIST_TABLES.iter().find(|(list, _)| *list == path) {
            if let config::ValueKind::Array(entries) = &value.kind {
                for (i, entry) in entries.iter().enumerate() {
                    if let config::ValueKind::Table(entry) = &entry.kind {
                        let mut fields: Vec<_> = entry.keys().collect();
                        fields.sort();
                        for field in fields {
                            if !allowed.contains(&field.as_str()) {
                                out.push(format!("{path}[{i}].{field}"));
                            }
                        }
                    }
                }
            }
            continue;
        }
        match known.get(k) {
            Some(known_value) => {
                if let (config::ValueKind::Table(inner), config::ValueKind::Table(known_inner)) =
                    (&value.kind, &known_value.kind)
                {
                    find_unknown(inner, known_inner, &format!("{path}."), out);
                }
            }
            None if OPTIONAL_KEYS.contains(&path.as_str()) => {}
            None if path
                .strip_suffix("_file")
                .is_some_and(|k| SECRET_KEYS.contains(&k)) => {}
            // An unknown section is reported by its keys, so `[serverr] listen` points at
            // `server.listen`.
            None => match &value.kind {
                config::ValueKind::Table(inner) if !inner.is_empty() => {
                    list_keys(inner, &format!("{path}."), out)
                }
                _ => out.push(path),
            },
        }
    }
}

/// The known key nearest to `key` by edit distance, when it is near enough to be a typo.
pub(super) fn closest(key: &str, known: &[String]) -> Option<String> {
    let entry_fields = LIST_TABLES
        .iter()
        .find(|(list, _)| key.starts_with(&format!("{list}[")))
        .map(|(_, fields)| *fields);
    let entry_field = key.rsplit_once("].").map(|(_, f)| f);
    let candidates: Vec<String> = match (entry_field, entry_fields) {
        (Some(_), Some(fields)) => fields.iter().map(|f| (*f).to_owned()).collect(),
        _ => known.to_vec(),
    };
    let target = entry_field.unwrap_or(key);
    let (best, distance) = candidates
        .iter()
        .map(|k| (k, edit_distance(target, k)))
        .min_by_key(|(_, d)| *d)?;
    let best = known
        .iter()
        .find(|k| *k == best)
        .map(String::as_str)
        .or_else(|| {
            entry_fields
                .unwrap_or_default()
                .iter()
                .copied()
                .find(|f| f == best)
        });
    if distance <= target.len().max(4) / 3 + 1 {
        if let Some(best) = best {
            return Some(best.to_owned());
        }
    }
    if entry_fields.is_some() {
        return None;
    }
    same_leaf(key, known)
}

/// The known keys with the same last part as `key`, in their sections' order in the
/// defaults: a setting put in the wrong section (`listen` at the top, `[api] listen`) is
/// too far from its real name by spelling, but not by name.
pub(super) fn same_leaf(key: &str, known: &[String]) -> Option<String> {
    let leaf = key.rsplit('.').next()?;
    let section_at = |k: &str| {
        let section = k.split('.').next().unwrap_or(k);
        DEFAULTS_TOML
            .find(&format!("[{section}]"))
            .unwrap_or(usize::MAX)
    };
    let mut found: Vec<&String> = known
        .iter()
        .filter(|k| k.as_str() != key && k.rsplit('.').next() == Some(leaf))
        .collect();
    found.sort_by_key(|k| section_at(k));
    found.truncate(3);
    (!found.is_empty()).then(|| {
        found
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    })
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            previous = current;
        }
    }
    row[b.len()]
}
