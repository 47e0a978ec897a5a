//! Tags are `key:value` strings. Criteria are tag lists that must all be present.

use std::collections::BTreeSet;

/// A set of tags, ordered so answers and error messages are stable.
pub type TagSet = BTreeSet<String>;

/// The tags every command and cluster gets on load, so criteria can pin one.
pub fn system_tags(id: &str, name: &str, version: &str) -> [String; 3] {
    [format!("_id:{id}"), format!("_name:{name}"), format!("_version:{version}")]
}

/// Whether `tag` is one of the system tags (`_id:`, `_name:`, `_version:`).
pub fn is_system_tag(tag: &str) -> bool {
    ["_id:", "_name:", "_version:"].iter().any(|prefix| tag.starts_with(prefix))
}

/// True when `tags` carries every tag in `criteria`.
pub fn carries_all<'a>(tags: &TagSet, criteria: impl IntoIterator<Item = &'a String>) -> bool {
    criteria.into_iter().all(|tag| tags.contains(tag))
}
