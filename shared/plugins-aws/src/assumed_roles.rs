//! Clusters in other accounts: a cluster's `role_arn` is assumed (STS AssumeRole, with the
//! platform's own credentials) for the calls made on that cluster. One credentials provider per
//! role, made on first use and kept: it renews the role's credentials before they expire.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::SharedCredentialsProvider;

/// The session name the assumed role's CloudTrail entries carry.
const SESSION_NAME: &str = "heimdall";

/// Clients of one kind, for the platform's own role and for each role a cluster names.
pub struct RoleClients<C> {
    base: aws_config::SdkConfig,
    own: C,
    make: fn(&aws_config::SdkConfig) -> C,
    assumed: Mutex<HashMap<String, C>>,
}

impl<C: Clone> RoleClients<C> {
    pub fn new(base: &aws_config::SdkConfig, make: fn(&aws_config::SdkConfig) -> C) -> Self {
        Self { base: base.clone(), own: make(base), make, assumed: Mutex::new(HashMap::new()) }
    }

    /// The client acting as `role_arn`, or as the platform itself when there is none.
    pub async fn client(&self, role_arn: Option<&str>) -> C {
        let Some(role_arn) = role_arn else { return self.own.clone() };
        if let Some(client) = self.lock().get(role_arn) {
            return client.clone();
        }
        let provider = AssumeRoleProvider::builder(role_arn).session_name(SESSION_NAME).configure(&self.base).build().await;
        let config = self.base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
        let client = (self.make)(&config);
        self.lock().entry(role_arn.to_owned()).or_insert(client).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, C>> {
        self.assumed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Checks a `role_arn` setting's shape, so a typo fails at config load, not at a job's first call.
pub fn validate_role_arn(role_arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "iam", "", account, resource] if account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) && resource.starts_with("role/") => Ok(()),
        _ => Err(format!("`role_arn` `{role_arn}` is not an IAM role ARN such as arn:aws:iam::123456789012:role/heimdall-reader")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_checked_for_their_shape() {
        validate_role_arn("arn:aws:iam::123456789012:role/heimdall-reader").unwrap();
        validate_role_arn("arn:aws-cn:iam::123456789012:role/path/reader").unwrap();
        for bad in ["heimdall-reader", "arn:aws:iam::1234:role/x", "arn:aws:s3:::bucket", "arn:aws:iam::123456789012:user/bob"] {
            assert!(validate_role_arn(bad).unwrap_err().contains("is not an IAM role ARN"), "{bad}");
        }
    }
}
