//! Keys and namespaces: validation and normalisation.
//!
//! A key is a UTF-8 path of 1..=1024 bytes (limit configurable) made of
//! non-empty segments joined by `.`: `app.config.database.host`. No empty
//! segment, no ASCII control character, no whitespace. Keys are
//! case-sensitive unless the store folds them to lower case. Keys order by
//! their bytes.
//!
//! A namespace follows the same rules as one key segment (so it holds no
//! `.`), with a limit of [`MAX_NAMESPACE_LEN`] bytes.

use std::borrow::Cow;
use std::fmt;

use crate::error::{shorten, Error, KeyRule, Result};

/// Default maximum key length in bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 1024;

/// Maximum namespace length in bytes.
pub const MAX_NAMESPACE_LEN: usize = 255;

/// The namespace used when none is chosen.
pub const DEFAULT_NAMESPACE: &str = "default";

/// How keys are checked and normalised by a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRules {
    /// Maximum key length in bytes, after normalisation. Default 1024.
    pub max_len: usize,
    /// Fold keys, namespaces and patterns to lower case. Default `false`.
    pub case_insensitive: bool,
}

impl Default for KeyRules {
    fn default() -> Self {
        KeyRules {
            max_len: DEFAULT_MAX_KEY_LEN,
            case_insensitive: false,
        }
    }
}

impl KeyRules {
    /// Checks `key` and returns its normalised form (borrowed when nothing
    /// changed).
    pub fn normalize<'a>(&self, key: &'a str) -> Result<Cow<'a, str>> {
        let normalized = self.fold(key);
        check_path(&normalized, self.max_len, false).map_err(|rule| Error::InvalidKey {
            key: shorten(key),
            rule,
        })?;
        Ok(normalized)
    }

    /// Checks a namespace name and returns its normalised form.
    pub fn normalize_namespace<'a>(&self, namespace: &'a str) -> Result<Cow<'a, str>> {
        let normalized = self.fold(namespace);
        check_path(&normalized, MAX_NAMESPACE_LEN, true).map_err(|rule| {
            Error::InvalidNamespace {
                namespace: shorten(namespace),
                rule,
            }
        })?;
        Ok(normalized)
    }

    /// Folds `s` to lower case when the rules are case-insensitive.
    pub fn fold<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if self.case_insensitive && s.chars().any(|c| c.is_uppercase()) {
            Cow::Owned(s.to_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    }
}

/// Byte classes for the ASCII fast path of [`check_path`].
const OK: u8 = 0;
const DOT: u8 = 1;
const SPACE: u8 = 2;
const CONTROL: u8 = 3;
const NON_ASCII: u8 = 4;

const fn byte_classes() -> [u8; 256] {
    let mut t = [OK; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'.' => DOT,
            // ASCII whitespace that is also a control character is
            // reported as whitespace: the more useful of the two names.
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => SPACE,
            0x00..=0x1f | 0x7f => CONTROL,
            0x80..=0xff => NON_ASCII,
            _ => OK,
        };
        b += 1;
    }
    t
}

static CLASSES: [u8; 256] = byte_classes();

/// Checks the path rules; `single_segment` forbids dots (namespaces).
fn check_path(s: &str, max: usize, single_segment: bool) -> std::result::Result<(), KeyRule> {
    if s.is_empty() {
        return Err(KeyRule::Empty);
    }
    if s.len() > max {
        return Err(KeyRule::TooLong { len: s.len(), max });
    }
    let bytes = s.as_bytes();
    let mut segment_start = true;
    let mut i = 0;
    while i < bytes.len() {
        match CLASSES[usize::from(bytes[i])] {
            OK => segment_start = false,
            DOT => {
                if single_segment {
                    return Err(KeyRule::DotInNamespace { position: i });
                }
                if segment_start {
                    return Err(KeyRule::EmptySegment { position: i });
                }
                segment_start = true;
            }
            SPACE => return Err(KeyRule::Whitespace { position: i }),
            CONTROL => return Err(KeyRule::ControlCharacter { position: i }),
            _ => {
                // Non-ASCII: decode one char. `s` is valid UTF-8 and `i` a
                // char boundary, so the slice always yields a char.
                let c = s[i..].chars().next().unwrap_or('\u{FFFD}');
                if c.is_whitespace() {
                    return Err(KeyRule::Whitespace { position: i });
                }
                segment_start = false;
                i += c.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    if segment_start {
        return Err(KeyRule::EmptySegment {
            position: bytes.len(),
        });
    }
    Ok(())
}

/// A validated key, for callers that want to check a key once and keep it.
///
/// ```
/// use kv_core::Key;
/// let key = Key::new("app.config.database.host")?;
/// assert_eq!(key.segments().count(), 4);
/// assert!(Key::new("app..host").is_err());
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// Validates `key` with the default rules (case-sensitive, 1024 bytes).
    pub fn new(key: impl AsRef<str>) -> Result<Self> {
        Self::with_rules(key, &KeyRules::default())
    }

    /// Validates and normalises `key` with the given rules.
    pub fn with_rules(key: impl AsRef<str>, rules: &KeyRules) -> Result<Self> {
        Ok(Key(rules.normalize(key.as_ref())?.into_owned()))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// The parent key (`a.b` for `a.b.c`), or `None` for a one-segment key.
    pub fn parent(&self) -> Option<&str> {
        self.0.rfind('.').map(|i| &self.0[..i])
    }

    /// Consumes the key, returning the string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validates a namespace name with the default rules.
pub fn validate_namespace(namespace: &str) -> Result<()> {
    KeyRules::default()
        .normalize_namespace(namespace)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(key: &str) -> KeyRule {
        match KeyRules::default().normalize(key) {
            Err(Error::InvalidKey { rule, .. }) => rule,
            other => panic!("expected InvalidKey for {key:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_hierarchical_keys() {
        for k in [
            "a",
            "app.config.database.host",
            "user:123:name",
            "logs.2024-01-01",
            "ключ.値",
            "a-b_c.d/e",
        ] {
            assert!(KeyRules::default().normalize(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn rejects_each_rule_with_position() {
        assert_eq!(rule_of(""), KeyRule::Empty);
        assert_eq!(rule_of(".a"), KeyRule::EmptySegment { position: 0 });
        assert_eq!(rule_of("a."), KeyRule::EmptySegment { position: 2 });
        assert_eq!(rule_of("a..b"), KeyRule::EmptySegment { position: 2 });
        assert_eq!(rule_of("a b"), KeyRule::Whitespace { position: 1 });
        assert_eq!(rule_of("a\tb"), KeyRule::Whitespace { position: 1 });
        assert_eq!(rule_of("a\u{00a0}b"), KeyRule::Whitespace { position: 1 });
        assert_eq!(
            rule_of("a\u{0}b"),
            KeyRule::ControlCharacter { position: 1 }
        );
        assert_eq!(
            rule_of("ab\u{7f}"),
            KeyRule::ControlCharacter { position: 2 }
        );
        let long = "k".repeat(1025);
        assert_eq!(
            rule_of(&long),
            KeyRule::TooLong {
                len: 1025,
                max: 1024
            }
        );
        assert!(KeyRules::default().normalize(&"k".repeat(1024)).is_ok());
    }

    #[test]
    fn case_insensitive_folds() {
        let rules = KeyRules {
            case_insensitive: true,
            ..KeyRules::default()
        };
        assert_eq!(
            rules.normalize("App.Config").unwrap_or_default(),
            "app.config"
        );
        assert!(matches!(
            rules.normalize("app.config"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn namespaces_are_single_segments() {
        let rules = KeyRules::default();
        assert!(rules.normalize_namespace("tenant_a").is_ok());
        assert!(matches!(
            rules.normalize_namespace("a.b"),
            Err(Error::InvalidNamespace {
                rule: KeyRule::DotInNamespace { position: 1 },
                ..
            })
        ));
        assert!(rules.normalize_namespace("").is_err());
    }

    #[test]
    fn key_helpers() {
        let k = Key::new("a.b.c").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.parent(), Some("a.b"));
        assert_eq!(k.segments().collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
