//! Text filters of the listings (`name`, `username`, `version`, `command`, `cluster`, `id`), as
//! Heimdall matches them with SQL `like`: `%` stands for any run of characters, `_` for any one
//! character; text without either matches itself exactly. A filter the platform sets itself
//! (a caller's own user name) is always [`TextFilter::Exact`], whatever characters it holds.

use std::fmt;

/// One text filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextFilter {
    Exact(String),
    /// A `like` pattern: `%` any run, `_` any one character.
    Pattern(String),
}

impl TextFilter {
    /// What a client sent: a pattern if it holds `%` or `_`, else exact.
    pub fn from_client(text: &str) -> Self {
        if text.contains(['%', '_']) { TextFilter::Pattern(text.to_owned()) } else { TextFilter::Exact(text.to_owned()) }
    }

    /// The text as given.
    pub fn text(&self) -> &str {
        match self {
            TextFilter::Exact(text) | TextFilter::Pattern(text) => text,
        }
    }

    /// The exact value, when this is no pattern.
    pub fn exact(&self) -> Option<&str> {
        match self {
            TextFilter::Exact(text) => Some(text),
            TextFilter::Pattern(_) => None,
        }
    }

    /// What every match starts with: the text before the first wildcard.
    pub fn literal_prefix(&self) -> &str {
        match self {
            TextFilter::Exact(text) => text,
            TextFilter::Pattern(text) => &text[..text.find(['%', '_']).unwrap_or(text.len())],
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            TextFilter::Exact(text) => text == value,
            TextFilter::Pattern(pattern) => like(&pattern.chars().collect::<Vec<_>>(), &value.chars().collect::<Vec<_>>()),
        }
    }
}

impl fmt::Display for TextFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl From<&str> for TextFilter {
    /// An exact filter (the platform's own, never a client's text).
    fn from(text: &str) -> Self {
        TextFilter::Exact(text.to_owned())
    }
}

impl From<String> for TextFilter {
    fn from(text: String) -> Self {
        TextFilter::Exact(text)
    }
}

/// SQL `like` without escapes: iterative, with one backtrack point (the last `%`), so it
/// stays linear-ish on hostile patterns.
fn like(pattern: &[char], value: &[char]) -> bool {
    let (mut p, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && (pattern[p] == '_' || (pattern[p] != '%' && pattern[p] == value[v])) {
            p += 1;
            v += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, v));
            p += 1;
        } else if let Some((star_p, star_v)) = star {
            p = star_p + 1;
            v = star_v + 1;
            star = Some((star_p, star_v + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_any_run_and_underscore_any_one_character() {
        let ping = TextFilter::from_client("ping%");
        assert!(ping.matches("ping") && ping.matches("ping-0.0.1") && !ping.matches("a-ping"));
        let middle = TextFilter::from_client("%etl%");
        assert!(middle.matches("nightly-etl-eu") && middle.matches("etl") && !middle.matches("el"));
        let one = TextFilter::from_client("v_");
        assert!(one.matches("v1") && !one.matches("v") && !one.matches("v12"));
        assert!(TextFilter::from_client("a%b%c").matches("a-x-b-y-c") && !TextFilter::from_client("a%b%c").matches("a-c-b"));
        assert_eq!(TextFilter::from_client("ping%").literal_prefix(), "ping");
        assert_eq!(TextFilter::from_client("%x").literal_prefix(), "");
    }

    #[test]
    fn text_without_wildcards_and_the_platforms_own_filters_are_exact() {
        assert_eq!(TextFilter::from_client("ping"), TextFilter::Exact("ping".into()));
        let own: TextFilter = "test_user".into();
        assert!(own.matches("test_user") && !own.matches("testXuser"), "a user name with `_` stays exact");
        assert!(TextFilter::from_client("test_user").matches("testXuser"), "a client's `_` is a wildcard, as in Heimdall");
    }
}
