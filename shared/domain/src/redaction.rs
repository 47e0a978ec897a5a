//! What the catalog API may show of a command's or cluster's context: never a secret, for any
//! caller. Values under secret-like keys become `"***"` unless they are references to where the
//! secret is kept (`ssm:…`, `secretsmanager:…`, `file://…`, an absolute path), which tell an
//! operator where to look and give a reader nothing; every shell `env` value is hidden too.

use serde_json::{Map, Value};

/// What a hidden value is replaced by.
pub const HIDDEN: &str = "***";

/// Key fragments that mark a value as secret (compared case-insensitively, anywhere in the key).
const SECRET_KEY_PARTS: [&str; 8] =
    ["password", "passwd", "secret", "token", "private_key", "api_key", "apikey", "credential"];

/// Whether a context key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// Whether `text` says where a secret is rather than being one.
pub fn is_secret_reference(text: &str) -> bool {
    ["ssm:", "secretsmanager:", "file://", "arn:aws:secretsmanager:", "arn:aws:ssm:"].iter().any(|p| text.starts_with(p))
        || (text.starts_with('/') && !text.contains(char::is_whitespace))
}

/// `context` with every secret hidden; `plugin` tells whether `env` holds process variables.
pub fn redact_context(context: &Value, plugin: Option<&str>) -> Value {
    match context {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                let shown = if key == "env" && plugin == Some("shell") {
                    hide_all_values(value)
                } else if is_secret_key(key) {
                    hide_unless_reference(value)
                } else {
                    redact_context(value, None)
                };
                out.insert(key.clone(), shown);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|item| redact_context(item, None)).collect()),
        other => other.clone(),
    }
}

fn hide_unless_reference(value: &Value) -> Value {
    match value {
        Value::String(text) if is_secret_reference(text) => value.clone(),
        Value::Null => Value::Null,
        _ => Value::String(HIDDEN.into()),
    }
}

fn hide_all_values(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.keys().map(|k| (k.clone(), Value::String(HIDDEN.into()))).collect()),
        _ => Value::String(HIDDEN.into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_hidden_at_any_depth_and_references_stay() {
        let context = json!({
            "account": "acme",
            "private_key": "ssm:/heimdall/snowflake/key",
            "password": "hunter2",
            "nested": {"api_token": "abc", "Client-Secret": {"value": "x"}, "list": [{"apiKey": "k"}]},
            "warehouse": "wh",
            "key_file": "/etc/heimdall/key.pem",
            "credentials": "/run/secrets/creds",
        });
        let shown = redact_context(&context, Some("snowflake"));
        assert_eq!(shown["account"], "acme");
        assert_eq!(shown["private_key"], "ssm:/heimdall/snowflake/key");
        assert_eq!(shown["password"], HIDDEN);
        assert_eq!(shown["nested"]["api_token"], HIDDEN);
        assert_eq!(shown["nested"]["Client-Secret"], HIDDEN);
        assert_eq!(shown["nested"]["list"][0]["apiKey"], HIDDEN);
        assert_eq!(shown["credentials"], "/run/secrets/creds");
        assert!(!shown.to_string().contains("hunter2") && !shown.to_string().contains("\"abc\""));
    }

    #[test]
    fn every_shell_env_value_is_hidden_but_its_names_stay() {
        let context = json!({"command": ["/bin/echo"], "env": {"LC_ALL": "C", "DB_URL": "postgres://u:p@h/db"}});
        let shown = redact_context(&context, Some("shell"));
        assert_eq!(shown["env"], json!({"LC_ALL": HIDDEN, "DB_URL": HIDDEN}));
        assert_eq!(shown["command"], json!(["/bin/echo"]));
    }
}
