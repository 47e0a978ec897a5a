use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Status of a command or a cluster. Lower case in the config file (`active`), upper case on
/// the wire (`ACTIVE`), as in Heimdall; either case is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceStatus {
    #[default]
    Active,
    Inactive,
    Deleted,
}

impl ResourceStatus {
    pub const ALL: [ResourceStatus; 3] =
        [ResourceStatus::Active, ResourceStatus::Inactive, ResourceStatus::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Active => "ACTIVE",
            ResourceStatus::Inactive => "INACTIVE",
            ResourceStatus::Deleted => "DELETED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for ResourceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResourceStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown status `{text}`: use active, inactive or deleted"
            ))
        })
    }
}
