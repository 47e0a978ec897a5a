/// `s3://bucket/key` (or `s3a://`) → (bucket, key); `None` when it is not one.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://").or_else(|| uri.strip_prefix("s3a://"))?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

/// `prefix` and `name` joined with exactly one `/`.
pub fn join(prefix: &str, name: &str) -> String {
    format!("{}/{}", prefix.trim_end_matches('/'), name.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_split_into_bucket_and_key() {
        assert_eq!(parse_s3_uri("s3://lake/db/t/metadata/v3.json"), Some(("lake", "db/t/metadata/v3.json")));
        assert_eq!(parse_s3_uri("https://lake/x"), None);
        assert_eq!(parse_s3_uri("s3://lake/"), None);
    }

    #[test]
    fn joining_never_doubles_or_drops_the_slash() {
        assert_eq!(join("s3://b/queries/", "/j.sql"), "s3://b/queries/j.sql");
        assert_eq!(join("s3://b/queries", "j.sql"), "s3://b/queries/j.sql");
    }
}
