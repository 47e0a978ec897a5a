//! SigV4 for an API Gateway that uses IAM auth: every request signed for `execute-api` with
//! the standard credential chain (environment, profile, SSO, container or instance role) and
//! the region of `AWS_REGION` or the profile.

use std::time::SystemTime;

use anyhow::{Context, anyhow};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;

/// Signs requests as whoever the credential chain finds.
#[derive(Debug, Clone)]
pub struct SigV4Signer {
    credentials: Credentials,
    region: String,
}

impl SigV4Signer {
    /// Loads the credentials and region once, for the whole command.
    pub async fn from_environment() -> anyhow::Result<Self> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let region = config.region().map(|r| r.to_string()).context("--sigv4 needs a region: set AWS_REGION or a profile's region")?;
        let provider = config.credentials_provider().context("--sigv4 found no AWS credentials provider")?;
        let credentials = provider.provide_credentials().await.map_err(|error| anyhow!("--sigv4 found no AWS credentials: {error}"))?;
        Ok(Self { credentials, region })
    }

    pub fn new(credentials: Credentials, region: impl Into<String>) -> Self {
        Self { credentials, region: region.into() }
    }

    /// The headers to add (`authorization`, `x-amz-date`, and the session token if any).
    pub fn headers(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8], at: SystemTime) -> anyhow::Result<Vec<(String, String)>> {
        let identity = self.credentials.clone().into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .context("Failed to set up SigV4 signing")?
            .into();
        let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
            .context("Failed to read the request to sign")?;
        let (instructions, _) = sign(request, &params).context("Failed to sign the request")?.into_parts();
        Ok(instructions.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn a_request_is_signed_for_execute_api_in_the_region() {
        let signer = SigV4Signer::new(Credentials::new("AKIDEXAMPLE", "secret", Some("session".into()), None, "test"), "eu-west-1");
        let at = UNIX_EPOCH + Duration::from_secs(1_795_572_000);
        let headers = signer.headers("GET", "https://api.example.com/api/v1/jobs?limit=5", &[("host", "api.example.com")], b"", at).unwrap();
        let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let authorization = find("authorization").unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-1/execute-api/aws4_request"), "{authorization}");
        assert_eq!(find("x-amz-date"), Some("20261125T020000Z"));
        assert_eq!(find("x-amz-security-token"), Some("session"));
        // Another body, another signature.
        let other = signer.headers("GET", "https://api.example.com/api/v1/jobs?limit=5", &[("host", "api.example.com")], b"x", at).unwrap();
        assert_ne!(other.iter().find(|(n, _)| n == "authorization").unwrap().1, authorization);
    }
}
