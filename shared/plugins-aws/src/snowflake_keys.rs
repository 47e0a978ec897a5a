//! Snowflake private keys kept in AWS: `ssm:<parameter>` (a SecureString, decrypted) or
//! `secretsmanager:<secret id>` (the secret string), besides files. The key's text never
//! appears in an error or a log: errors name the reference only.

use async_trait::async_trait;
use heimdall_plugins_snowflake::{FileKeyLoader, PrivateKeyLoader, PrivateKeyPem, PrivateKeyRef};
use heimdall_ports::PluginError;

/// Loads Snowflake keys from files, SSM Parameter Store and Secrets Manager.
pub struct AwsKeyLoader {
    ssm: aws_sdk_ssm::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl AwsKeyLoader {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { ssm: aws_sdk_ssm::Client::new(sdk), secrets: aws_sdk_secretsmanager::Client::new(sdk) }
    }
}

fn not_usable(reference: &PrivateKeyRef, why: &str) -> PluginError {
    PluginError::InvalidContext(format!("`private_key` `{reference}`: {why}"))
}

#[async_trait]
impl PrivateKeyLoader for AwsKeyLoader {
    fn check(&self, _reference: &PrivateKeyRef) -> Result<(), String> {
        Ok(())
    }

    async fn load(&self, reference: &PrivateKeyRef) -> Result<PrivateKeyPem, PluginError> {
        match reference {
            PrivateKeyRef::File(_) => FileKeyLoader.load(reference).await,
            PrivateKeyRef::SsmParameter(name) => {
                let output = self.ssm.get_parameter().name(name).with_decryption(true).send().await.map_err(|error| {
                    match error.as_service_error() {
                        Some(e) if e.is_parameter_not_found() => not_usable(reference, "no such parameter"),
                        Some(_) => not_usable(reference, "SSM refused to read it (check the parameter and the role's rights)"),
                        None => PluginError::Unavailable(format!("SSM GetParameter {reference}: {}", heimdall_ports::error_chain(&error))),
                    }
                })?;
                let value = output.parameter().and_then(|p| p.value()).ok_or_else(|| not_usable(reference, "the parameter has no value"))?;
                Ok(PrivateKeyPem::new(value.to_owned()))
            }
            PrivateKeyRef::SecretsManager(id) => {
                let output = self.secrets.get_secret_value().secret_id(id).send().await.map_err(|error| {
                    match error.as_service_error() {
                        Some(e) if e.is_resource_not_found_exception() => not_usable(reference, "no such secret"),
                        Some(_) => not_usable(reference, "Secrets Manager refused to read it (check the secret and the role's rights)"),
                        None => PluginError::Unavailable(format!(
                            "Secrets Manager GetSecretValue {reference}: {}",
                            heimdall_ports::error_chain(&error)
                        )),
                    }
                })?;
                let value = output.secret_string().ok_or_else(|| not_usable(reference, "the secret has no string value"))?;
                Ok(PrivateKeyPem::new(value.to_owned()))
            }
        }
    }
}
