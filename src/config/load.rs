//! Loading: the layers in order, secrets from files, and where each setting came from.

use super::*;

impl Settings {
    /// Loads the layers in order and validates the result.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(config_file, &std::env::vars().collect())
    }

    /// [`Settings::load`] with the environment given as a map (for tests).
    pub fn load_from(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        Self::load_described(config_file, env).map(|(settings, _)| settings)
    }

    /// [`Settings::load_from`], and every effective setting with the layer it came from and
    /// secrets masked (what `kenar-hook config check` prints).
    pub fn load_described(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<(Settings, Vec<Effective>), ConfigError> {
        if let Some(path) = config_file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "--config {}: file not found",
                    path.display()
                )));
            }
        }
        // A file named by --config (KENAR_HOOK_CONFIG) replaces the working directory's: in
        // a container the working directory may be writable by the service, and a file
        // planted there must not become a settings layer.
        let files: Vec<PathBuf> = match config_file {
            Some(path) => vec![path.to_path_buf()],
            None if Path::new(LOCAL_FILE).is_file() => vec![PathBuf::from(LOCAL_FILE)],
            None => Vec::new(),
        };
        let defaults =
            Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        let mut builder = defaults.clone();
        let mut file_layers = Vec::new();
        for path in &files {
            builder = builder.add_source(File::from(path.as_path()).required(true));
            let one = Config::builder()
                .add_source(File::from(path.as_path()).required(true))
                .build()
                .map_err(|e| ConfigError(readable(&e.to_string())))?;
            file_layers.push((path.clone(), as_table(&one)));
        }
        let builder = environment_layer(builder, env)?;
        let env_layer = as_table(
            &environment_layer(Config::builder(), env)?
                .build()
                .map_err(|e| ConfigError(e.to_string()))?,
        );
        let config = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        refuse_unknown_keys(&config, config_file, env)?;
        let layers = Layers {
            defaults: as_table(
                &defaults
                    .build_cloned()
                    .map_err(|e| ConfigError(e.to_string()))?,
            ),
            files: file_layers,
            env: env_layer,
        };
        let config = secrets_from_files(config, &layers)?;
        if let Some(rust_log) = env.get("RUST_LOG").filter(|v| !v.trim().is_empty()) {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(rust_log) {
                return Err(ConfigError(format!(
                    "RUST_LOG: not a valid filter: {e} (got {rust_log:?}; expected e.g. info or kenar_hook=debug,info)"
                )));
            }
        }
        let mut settings: Settings = config
            .clone()
            .try_deserialize()
            .map_err(|e| ConfigError(readable(&e.to_string())))?;
        settings.files = files;
        settings.apply_database_password()?;
        settings.place_default_database();
        settings.validate()?;
        let described = describe(&config, &layers, &settings, env);
        Ok((settings, described))
    }

    /// `database.password` goes into the PostgreSQL URL here, so a password with `@`, `/`
    /// or `%` needs no escaping by hand.
    pub(super) fn apply_database_password(&mut self) -> Result<(), ConfigError> {
        let Some(password) = self.database.password.take() else {
            return Ok(());
        };
        let fail = |problem: &str| Err(ConfigError(format!("database.password: {problem}")));
        if password.expose_secret().is_empty() {
            return fail("must not be empty when set");
        }
        if !matches!(self.database_kind(), Ok(DatabaseKind::Postgres)) {
            return fail("is only for a postgres:// database.url");
        }
        let Ok(mut url) = url::Url::parse(self.database.url.expose_secret()) else {
            return Err(ConfigError(
                "database.url: not a valid URL (got a postgres:// value that does not parse)"
                    .to_owned(),
            ));
        };
        if url.password().is_some() {
            return fail("database.url holds a password too; give it in one place only");
        }
        if url.set_password(Some(password.expose_secret())).is_err() {
            return fail("database.url has no host to attach the password to");
        }
        self.database.url = SecretString::from(url.to_string());
        Ok(())
    }

    /// `server.data_dir` holds the SQLite file too: the default database follows it.
    pub(super) fn place_default_database(&mut self) {
        if self.database.url.expose_secret() == DEFAULT_DATABASE_URL
            && self.server.data_dir != Path::new("data")
        {
            let file = self.server.data_dir.join("kenar-hook.db");
            self.database.url = SecretString::from(format!("sqlite://{}", file.display()));
        }
    }
}

/// Adds the environment variables (and `DATABASE_URL`) to `builder`.
pub(super) fn environment_layer(
    mut builder: config::ConfigBuilder<config::builder::DefaultState>,
    env: &HashMap<String, String>,
) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
    // Values stay text (a key "0123" must not become the number 123); the config crate
    // turns text into numbers and booleans where a setting's type asks for one. List
    // settings are split here.
    let vars: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .filter(|(k, _)| !LIST_KEYS.iter().any(|key| **k == variable_of(key)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(Some(vars)),
    );
    for key in LIST_KEYS {
        if let Some(value) = env.get(&variable_of(key)) {
            let items: Vec<String> = match value.trim() {
                "" => Vec::new(),
                v => v.split(',').map(|s| s.trim().to_owned()).collect(),
            };
            builder = builder
                .set_override(*key, items)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
    }
    // DATABASE_URL is the convention of most tooling; the prefixed variable still wins.
    if !env.contains_key("KENAR_HOOK__DATABASE__URL") {
        if let Some(url) = env.get("DATABASE_URL") {
            builder = builder
                .set_override("database.url", url.as_str())
                .map_err(|e| ConfigError(e.to_string()))?;
        }
    }
    Ok(builder)
}

/// The environment variable of a setting: `server.listen` → `KENAR_HOOK__SERVER__LISTEN`.
pub(super) fn variable_of(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

/// What the files and the environment set, apart from the built-in defaults.
pub(super) struct Layers {
    defaults: Table,
    files: Vec<(PathBuf, Table)>,
    env: Table,
}

impl Layers {
    /// Where `key` was set last: the environment, a file, or nowhere (a default).
    pub(super) fn source(&self, key: &str, env: &HashMap<String, String>) -> String {
        if lookup(&self.env, key).is_some() {
            let variable = variable_of(key);
            return if env.contains_key(&variable) {
                format!("env {variable}")
            } else if key == "database.url" && env.contains_key("DATABASE_URL") {
                "env DATABASE_URL".to_owned()
            } else {
                "env".to_owned()
            };
        }
        match self
            .files
            .iter()
            .rev()
            .find(|(_, table)| self.file_sets(table, key))
        {
            Some((path, _)) => format!("file {}", path.display()),
            None => "default".to_owned(),
        }
    }

    /// Whether a file sets `key` to something other than its built-in default (the shipped
    /// config/default.toml repeats every default, and sets nothing by doing so).
    fn file_sets(&self, table: &Table, key: &str) -> bool {
        match (lookup(table, key), lookup(&self.defaults, key)) {
            (None, _) => false,
            (Some(value), Some(default)) => toml_value(value) != toml_value(default),
            (Some(_), None) => true,
        }
    }

    fn sets(&self, key: &str) -> bool {
        lookup(&self.env, key).is_some() || self.files.iter().any(|(_, t)| self.file_sets(t, key))
    }
}

pub(super) fn lookup<'a>(table: &'a Table, key: &str) -> Option<&'a config::Value> {
    let (first, rest) = match key.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (key, None),
    };
    let value = table.get(first)?;
    match (rest, &value.kind) {
        (None, _) => Some(value),
        (Some(rest), config::ValueKind::Table(inner)) => lookup(inner, rest),
        (Some(_), _) => None,
    }
}

/// Reads every `<secret>_file` setting into its secret.
pub(super) fn secrets_from_files(config: Config, layers: &Layers) -> Result<Config, ConfigError> {
    let table = as_table(&config);
    let mut builder = Config::builder().add_source(config);
    for key in SECRET_KEYS {
        let Some(value) = lookup(&table, &format!("{key}_file")) else {
            continue;
        };
        let (path, text) = read_secret_file(key, value, layers.sets(key))?;
        let result = if LIST_KEYS.contains(key) {
            builder.set_override(*key, secret_lines(&text))
        } else {
            let secret = text.trim_end_matches(['\n', '\r']);
            if secret.trim().is_empty() {
                return Err(ConfigError(format!("{key}_file: {path} is empty")));
            }
            builder.set_override(*key, secret.to_owned())
        };
        builder = result.map_err(|e| ConfigError(e.to_string()))?;
    }
    // The secrets of `[[forward.endpoints]]` entries, the same way.
    if let Some(config::ValueKind::Array(entries)) =
        lookup(&table, "forward.endpoints").map(|v| &v.kind)
    {
        for (i, entry) in entries.iter().enumerate() {
            let config::ValueKind::Table(entry) = &entry.kind else {
                continue;
            };
            for (field, list) in [("secret", false), ("previous_secrets", true)] {
                let Some(path) = entry.get(&format!("{field}_file")) else {
                    continue;
                };
                let key = format!("forward.endpoints[{i}].{field}");
                let (path, text) = read_secret_file(&key, path, entry.contains_key(field))?;
                let items = secret_lines(&text);
                let result = if list {
                    builder.set_override(&key, items)
                } else {
                    match items.as_slice() {
                        [one] => builder.set_override(&key, one.clone()),
                        _ => {
                            return Err(ConfigError(format!(
                                "{key}_file: {path} must hold the secret on one line"
                            )));
                        }
                    }
                };
                builder = result.map_err(|e| ConfigError(e.to_string()))?;
            }
        }
    }
    // And the tokens of `[[api.clients]]` entries.
    if let Some(config::ValueKind::Array(entries)) = lookup(&table, "api.clients").map(|v| &v.kind)
    {
        for (i, entry) in entries.iter().enumerate() {
            let config::ValueKind::Table(entry) = &entry.kind else {
                continue;
            };
            let Some(path) = entry.get("token_file") else {
                continue;
            };
            let key = format!("api.clients[{i}].token");
            let (path, text) = read_secret_file(&key, path, entry.contains_key("token"))?;
            match secret_lines(&text).as_slice() {
                [one] => {
                    builder = builder
                        .set_override(&key, one.clone())
                        .map_err(|e| ConfigError(e.to_string()))?;
                }
                _ => {
                    return Err(ConfigError(format!(
                        "{key}_file: {path} must hold the token on one line"
                    )));
                }
            }
        }
    }
    builder.build().map_err(|e| ConfigError(e.to_string()))
}

/// The path in `<key>_file` and the text of that file; refused when `key` is also set.
pub(super) fn read_secret_file(
    key: &str,
    path: &config::Value,
    also_set: bool,
) -> Result<(String, String), ConfigError> {
    let path = path
        .clone()
        .into_string()
        .map_err(|_| ConfigError(format!("{key}_file: expected the path of a file")))?;
    if also_set {
        return Err(ConfigError(format!(
            "{key}_file: {key} is set too; give the secret in one place only"
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError(format!("{key}_file: cannot read {path}: {}", io_reason(&e))))?;
    Ok((path, text))
}

/// A secrets file's items: one a line, blank lines skipped.
pub(super) fn secret_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Table fields that hold secrets inside lists of tables (`[[forward.endpoints]]`).
pub(super) const SECRET_FIELDS: &[&str] = &["secret", "previous_secrets", "token"];

/// An operating system error without its code number: "permission denied".
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.split_once(" (os error") {
        Some((reason, _)) => reason.to_owned(),
        None => text,
    };
    text.to_lowercase()
}
