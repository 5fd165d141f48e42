//! Per-key metadata: system fields kept by the store, user fields kept for
//! the caller, and filters over user fields for `find_by_metadata`.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::value::ValueType;

/// User metadata: a JSON object.
pub type UserMetadata = serde_json::Map<String, serde_json::Value>;

/// Reserved user-metadata field: a TTL in seconds, lifted into
/// [`SystemMetadata::expires_at`] on `set`.
pub const RESERVED_TTL: &str = "ttl";
/// Reserved user-metadata field: a MIME type, lifted into
/// [`SystemMetadata::content_type`] on `set`.
pub const RESERVED_CONTENT_TYPE: &str = "content_type";

/// Metadata the store maintains for every key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemMetadata {
    /// When the key was first written (kept across overwrites).
    pub created_at: Timestamp,
    /// When the key was last written.
    pub updated_at: Timestamp,
    /// When the key expires; `None` when it is persistent.
    pub expires_at: Option<Timestamp>,
    /// Starts at 1 and grows by one on every write of the key.
    pub version: u64,
    /// Size of the value's payload in bytes.
    pub size: u64,
    /// CRC32 of the encoded value, verified on every read.
    pub checksum: u32,
    /// MIME type of the value, when known.
    pub content_type: Option<String>,
    /// What the value means.
    pub value_type: ValueType,
    /// When the key was last read; only kept when the store tracks access.
    pub accessed_at: Option<Timestamp>,
}

/// A key's metadata as returned by `get_metadata` and `get_entry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Fields kept by the store.
    pub system: SystemMetadata,
    /// Fields kept for the caller.
    pub user: UserMetadata,
}

/// One condition of a [`MetadataFilter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Condition {
    /// The field exists and equals the JSON value.
    Equals {
        /// Top-level user-metadata field.
        field: String,
        /// The value it must equal.
        value: serde_json::Value,
    },
    /// The field exists (with any value, `null` included).
    Exists {
        /// Top-level user-metadata field.
        field: String,
    },
    /// The field is an array holding the value.
    Contains {
        /// Top-level user-metadata field.
        field: String,
        /// The element it must hold.
        value: serde_json::Value,
    },
}

/// A conjunction of conditions on user-metadata fields.
///
/// ```
/// use kv_core::MetadataFilter;
/// use serde_json::json;
/// let filter = MetadataFilter::new().eq("status", "active").contains("tags", "vip");
/// let meta = json!({"status": "active", "tags": ["vip", "beta"]});
/// assert!(filter.matches(meta.as_object().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetadataFilter {
    /// All must hold.
    pub conditions: Vec<Condition>,
}

impl MetadataFilter {
    /// An empty filter (matches everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds: `field` equals `value`.
    pub fn eq(mut self, field: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.conditions.push(Condition::Equals {
            field: field.into(),
            value: value.into(),
        });
        self
    }

    /// Adds: `field` exists.
    pub fn exists(mut self, field: impl Into<String>) -> Self {
        self.conditions.push(Condition::Exists {
            field: field.into(),
        });
        self
    }

    /// Adds: `field` is an array containing `value`.
    pub fn contains(
        mut self,
        field: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.conditions.push(Condition::Contains {
            field: field.into(),
            value: value.into(),
        });
        self
    }

    /// Whether `user` satisfies every condition.
    pub fn matches(&self, user: &UserMetadata) -> bool {
        self.conditions.iter().all(|c| match c {
            Condition::Equals { field, value } => user.get(field) == Some(value),
            Condition::Exists { field } => user.contains_key(field),
            Condition::Contains { field, value } => match user.get(field) {
                Some(serde_json::Value::Array(items)) => items.contains(value),
                _ => false,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filter_conditions() {
        let meta = json!({"a": 1, "n": null, "tags": ["x", 2]});
        let meta = meta.as_object().cloned().unwrap_or_default();
        assert!(MetadataFilter::new().matches(&meta));
        assert!(MetadataFilter::new().eq("a", 1).matches(&meta));
        assert!(!MetadataFilter::new().eq("a", 2).matches(&meta));
        assert!(!MetadataFilter::new()
            .eq("missing", json!(null))
            .matches(&meta));
        assert!(MetadataFilter::new().exists("n").matches(&meta));
        assert!(MetadataFilter::new().contains("tags", 2).matches(&meta));
        assert!(!MetadataFilter::new().contains("a", 1).matches(&meta));
        assert!(!MetadataFilter::new().eq("a", 1).exists("zz").matches(&meta));
    }
}
