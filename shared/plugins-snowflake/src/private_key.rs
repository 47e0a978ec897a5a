//! Where a cluster's private key lives, and loading it.
//!
//! The cluster context holds a reference (`private_key`), never the key: config files and the
//! job store are read by many, the key by this plugin only. A reference is a file path now
//! (`/path/key.p8`, `file:///path/key.p8`); `ssm:<parameter>` and `secretsmanager:<secret id>`
//! are recognised so that a crate with AWS clients can load them through its own
//! [`PrivateKeyLoader`] (see [`crate::SnowflakePlugin::with_key_loader`]). [`FileKeyLoader`],
//! the default, refuses them as "not supported in this build".
//!
//! Key text lives only in [`PrivateKeyPem`], whose `Debug` is redacted and which has no
//! `Display` or `Serialize`, so it cannot reach a log line, an error or a result by accident.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use heimdall_ports::PluginError;

/// A PEM key file is about 1.7 KiB; anything far larger is not one (and is not read whole).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Where a private key lives: the cluster context's `private_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateKeyRef {
    /// An absolute path to a PEM file (`/path/key.p8` or `file:///path/key.p8`).
    File(PathBuf),
    /// An SSM parameter (`ssm:/snowflake/key`), for a loader with AWS clients.
    SsmParameter(String),
    /// A Secrets Manager secret, by name or ARN (`secretsmanager:snowflake-key`).
    SecretsManager(String),
}

const REFERENCE_FORMS: &str = "an absolute path to a PKCS#8 PEM file (`/path/key.p8` or `file:///path/key.p8`), `ssm:<parameter>` or `secretsmanager:<secret id>`";

impl FromStr for PrivateKeyRef {
    type Err = String;

    /// Parses a reference. Errors never repeat the text: a key pasted here by mistake must not
    /// travel on in a config error.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains("-----BEGIN") || text.contains('\n') {
            return Err(format!(
                "`private_key` must say where the key is, not hold the key itself: use {REFERENCE_FORMS}"
            ));
        }
        if let Some(name) = text.strip_prefix("ssm:") {
            return non_empty(name, "ssm:").map(Self::SsmParameter);
        }
        if let Some(id) = text.strip_prefix("secretsmanager:") {
            return non_empty(id, "secretsmanager:").map(Self::SecretsManager);
        }
        // `file:///path` has an empty host; `file://host/path` names another machine.
        let path = text.strip_prefix("file://").unwrap_or(text);
        if path.starts_with('/') && path.len() > 1 {
            return Ok(Self::File(PathBuf::from(path)));
        }
        Err(format!("`private_key` must be {REFERENCE_FORMS}"))
    }
}

fn non_empty(rest: &str, prefix: &str) -> Result<String, String> {
    if rest.trim().is_empty() {
        Err(format!("`private_key` `{prefix}` needs a name after the colon"))
    } else {
        Ok(rest.to_owned())
    }
}

impl TryFrom<String> for PrivateKeyRef {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl<'de> serde::Deserialize<'de> for PrivateKeyRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A reference is a location, not a secret: it may be shown in messages.
impl fmt::Display for PrivateKeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::SsmParameter(name) => write!(f, "ssm:{name}"),
            Self::SecretsManager(id) => write!(f, "secretsmanager:{id}"),
        }
    }
}

/// The text of a PEM private key. Deliberately without `Display`, `Serialize` or `Clone`;
/// `Debug` prints `PrivateKeyPem(<redacted>)`.
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The key text, for the one place that parses it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// Turns a [`PrivateKeyRef`] into key text. Implement it in a crate with AWS clients to add
/// `ssm:` and `secretsmanager:` (delegating [`PrivateKeyRef::File`] to [`FileKeyLoader`]).
#[async_trait]
pub trait PrivateKeyLoader: Send + Sync {
    /// Whether this loader can load `reference` at all: checked when the config loads, so an
    /// unsupported kind is reported then rather than at the first job. Must not do I/O.
    fn check(&self, reference: &PrivateKeyRef) -> Result<(), String>;

    /// Loads the key. Errors name the reference, never the key.
    async fn load(&self, reference: &PrivateKeyRef) -> Result<PrivateKeyPem, PluginError>;
}

/// Loads keys from files; refuses the kinds that need AWS clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileKeyLoader;

#[async_trait]
impl PrivateKeyLoader for FileKeyLoader {
    fn check(&self, reference: &PrivateKeyRef) -> Result<(), String> {
        match reference {
            PrivateKeyRef::File(_) => Ok(()),
            other => Err(format!(
                "`private_key` `{other}`: {} references are not supported in this build; use a file path",
                kind_name(other)
            )),
        }
    }

    async fn load(&self, reference: &PrivateKeyRef) -> Result<PrivateKeyPem, PluginError> {
        self.check(reference).map_err(PluginError::InvalidContext)?;
        match reference {
            PrivateKeyRef::File(path) => read_key_file(path).await,
            // `check` refused the others above.
            _ => Err(PluginError::InvalidContext(format!("`private_key` `{reference}` cannot be loaded"))),
        }
    }
}

/// A PEM block of `label` around `body`, for tests: built from its parts so that scanners for
/// committed keys do not take test data for a key.
#[cfg(test)]
pub(crate) fn fake_pem(label: &str, body: &str) -> String {
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

fn kind_name(reference: &PrivateKeyRef) -> &'static str {
    match reference {
        PrivateKeyRef::File(_) => "file",
        PrivateKeyRef::SsmParameter(_) => "`ssm:`",
        PrivateKeyRef::SecretsManager(_) => "`secretsmanager:`",
    }
}

async fn read_key_file(path: &Path) -> Result<PrivateKeyPem, PluginError> {
    use std::io::ErrorKind;

    let shown = path.display();
    let io_error = |error: std::io::Error| match error.kind() {
        // A missing or unreadable file is a config problem; retrying will not fix it.
        ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::IsADirectory => {
            PluginError::InvalidContext(format!("`private_key`: cannot read {shown}: {error}"))
        }
        _ => PluginError::Unavailable(format!("`private_key`: cannot read {shown}: {error}")),
    };
    let metadata = tokio::fs::metadata(path).await.map_err(io_error)?;
    if !metadata.is_file() || metadata.len() > MAX_KEY_FILE_BYTES {
        return Err(PluginError::InvalidContext(format!(
            "`private_key`: {shown} is not a PEM key file (not a regular file of at most {MAX_KEY_FILE_BYTES} bytes)"
        )));
    }
    let bytes = tokio::fs::read(path).await.map_err(io_error)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| PluginError::InvalidContext(format!("`private_key`: {shown} is not a PEM text file")))?;
    Ok(PrivateKeyPem::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_in_every_supported_form() {
        let cases = [
            ("/keys/sf.p8", PrivateKeyRef::File("/keys/sf.p8".into())),
            ("file:///keys/sf.p8", PrivateKeyRef::File("/keys/sf.p8".into())),
            ("ssm:/snowflake/key", PrivateKeyRef::SsmParameter("/snowflake/key".into())),
            ("secretsmanager:sf-key", PrivateKeyRef::SecretsManager("sf-key".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<PrivateKeyRef>().unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn relative_paths_remote_files_and_empty_names_are_refused_naming_the_field() {
        for text in ["keys/sf.p8", "file://host/keys/sf.p8", "ssm:", "secretsmanager: ", "", "/"] {
            let message = text.parse::<PrivateKeyRef>().unwrap_err();
            assert!(message.contains("`private_key`"), "{text}: {message}");
        }
    }

    #[test]
    fn a_key_pasted_in_place_of_its_location_is_refused_without_repeating_it() {
        // GIVEN the key text itself where its location belongs
        let pasted = fake_pem("PRIVATE KEY", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC");
        // WHEN it is parsed
        let message = pasted.parse::<PrivateKeyRef>().unwrap_err();
        // THEN the error says what to do and holds none of the key
        assert!(message.contains("not hold the key itself"), "{message}");
        assert!(!message.contains("MIIEvQ"), "{message}");
    }

    #[test]
    fn key_text_is_redacted_in_debug_output() {
        let pem = PrivateKeyPem::new(fake_pem("PRIVATE KEY", "SECRETBYTES"));
        assert_eq!(format!("{pem:?}"), "PrivateKeyPem(<redacted>)");
    }

    #[tokio::test]
    async fn aws_references_are_not_supported_by_the_file_loader() {
        for reference in [PrivateKeyRef::SsmParameter("/k".into()), PrivateKeyRef::SecretsManager("k".into())] {
            let message = FileKeyLoader.check(&reference).unwrap_err();
            assert!(message.contains("not supported in this build"), "{message}");
            let error = FileKeyLoader.load(&reference).await.unwrap_err();
            assert!(
                matches!(&error, PluginError::InvalidContext(m) if m.contains("not supported in this build")),
                "{error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_key_file_is_an_invalid_context_naming_the_path() {
        let error = FileKeyLoader.load(&PrivateKeyRef::File("/nonexistent/sf.p8".into())).await.unwrap_err();
        assert!(matches!(&error, PluginError::InvalidContext(m) if m.contains("/nonexistent/sf.p8")), "{error:?}");
    }

    #[tokio::test]
    async fn a_key_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sf.p8");
        std::fs::write(&path, fake_pem("PRIVATE KEY", "abc")).unwrap();
        let pem = FileKeyLoader.load(&PrivateKeyRef::File(path)).await.unwrap();
        assert_eq!(pem.expose(), fake_pem("PRIVATE KEY", "abc"));
    }
}
