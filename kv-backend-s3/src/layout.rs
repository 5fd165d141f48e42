//! Where each record lives: object names built from namespace and key, and
//! back.
//!
//! ```text
//! {prefix}/{enc(namespace)}/{enc(key) in chunks of 200 characters, '/' between}!
//! ```
//!
//! `enc` is the order-preserving encoding of [`crate::codec`]. The key's
//! encoding is cut into path segments of [`CHUNK`] characters (the last one
//! shorter or equal) so that no file name exceeds what local file systems
//! allow (255 bytes), and ends with the terminator `!`:
//!
//! - `!` sorts below every character of the alphabet and below `/`, so an
//!   object name that is a proper prefix of another sorts first, exactly as
//!   the shorter key does: listing order is key order;
//! - the last segment always ends with `!` and no other segment does, so no
//!   object name is ever the "directory" of another — a file and a folder
//!   of the same name cannot both exist on a local file system.
//!
//! Probe objects (see [`crate::cas`]) live under `{prefix}/.kv-probe/`,
//! which never decodes as a namespace (`.` is not in the alphabet).

use kv_core::{Error, KeyRule};
use object_store::path::Path;

use crate::codec;

/// Characters per key segment.
pub const CHUNK: usize = 200;

/// Ends the last segment of every record's object name.
pub const TERMINATOR: char = '!';

/// Longest object name S3 accepts, in bytes.
pub const MAX_OBJECT_NAME: usize = 1024;

/// Longest namespace (in bytes) assumed when declaring the key limit in
/// [`Capabilities::max_key_len`](kv_core::Capabilities::max_key_len):
/// a key of that length fits under any namespace up to this long. Longer
/// namespaces still work; their longest keys are checked on each write.
pub const ASSUMED_NAMESPACE_LEN: usize = 64;

/// Longest file name on common local file systems: the namespace's
/// encoding is one path segment, so it must fit.
pub const MAX_SEGMENT: usize = 255;

/// Longest namespace this backend holds, in bytes (its encoding fills
/// [`MAX_SEGMENT`] characters).
pub const MAX_NAMESPACE_LEN: usize = codec::max_decoded_len(MAX_SEGMENT);

/// The folder of probe objects, under the prefix.
pub const PROBE_FOLDER: &str = ".kv-probe";

/// Object names under one prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The prefix as an object path (may be the root).
    prefix: Path,
}

/// Length of `{chunks of encoded}!` for an encoding of `len` characters.
fn key_part_len(len: usize) -> usize {
    len + len.div_ceil(CHUNK).saturating_sub(1) + 1
}

impl Layout {
    /// A layout under `prefix` (`""` for the bucket's root). Leading and
    /// trailing `/` are ignored; empty segments, `.`/`..` segments and
    /// control characters are refused.
    pub fn new(prefix: &str) -> Result<Layout, Error> {
        let prefix = Path::parse(prefix).map_err(|e| {
            Error::config(
                "s3.prefix",
                format!("{prefix:?} is not a valid object prefix: {e}"),
            )
        })?;
        let layout = Layout { prefix };
        if layout.max_key_len(ASSUMED_NAMESPACE_LEN) == 0 {
            return Err(Error::config(
                "s3.prefix",
                format!(
                    "the prefix is {} bytes long and leaves no room for keys in {MAX_OBJECT_NAME}-byte object names",
                    layout.prefix.as_ref().len()
                ),
            ));
        }
        Ok(layout)
    }

    /// The prefix.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Bytes the prefix takes in an object name, with its `/`.
    fn prefix_len(&self) -> usize {
        match self.prefix.as_ref().len() {
            0 => 0,
            n => n + 1,
        }
    }

    /// Longest key (in bytes) whose object name fits in
    /// [`MAX_OBJECT_NAME`] bytes under a namespace of `namespace_len` bytes.
    pub fn max_key_len(&self, namespace_len: usize) -> usize {
        let fixed = self.prefix_len() + codec::encoded_len(namespace_len) + 1;
        let Some(room) = MAX_OBJECT_NAME.checked_sub(fixed) else {
            return 0;
        };
        // The longest encoding whose chunked form fits, then the longest
        // key whose encoding is no longer.
        let mut chars = room;
        while chars > 0 && key_part_len(chars) > room {
            chars -= 1;
        }
        codec::max_decoded_len(chars)
    }

    /// Checks that a namespace's encoding fits in one path segment.
    fn check_namespace(&self, namespace: &str) -> Result<(), Error> {
        if namespace.len() > MAX_NAMESPACE_LEN {
            return Err(Error::InvalidNamespace {
                namespace: namespace.to_owned(),
                rule: KeyRule::TooLong {
                    len: namespace.len(),
                    max: MAX_NAMESPACE_LEN,
                },
            });
        }
        Ok(())
    }

    /// The folder holding a namespace's records.
    pub fn namespace_path(&self, namespace: &str) -> Result<Path, Error> {
        self.check_namespace(namespace)?;
        Ok(self.prefix.clone().join(codec::encode(namespace).as_str()))
    }

    /// The object name of `key` in `namespace`, or `None` when it would be
    /// longer than [`MAX_OBJECT_NAME`] (such an object cannot exist).
    pub fn object_path(&self, namespace: &str, key: &str) -> Result<Option<Path>, Error> {
        let ns = self.namespace_path(namespace)?;
        let name = chunked(&codec::encode(key), true);
        if ns.as_ref().len() + 1 + name.len() > MAX_OBJECT_NAME {
            return Ok(None);
        }
        Ok(Some(parse(format!("{}/{name}", ns.as_ref()))))
    }

    /// Like [`object_path`](Self::object_path), but a name too long is an
    /// [`Error::InvalidKey`] naming the longest key that fits in this
    /// namespace: for writes, before any I/O.
    pub fn object_path_for_write(&self, namespace: &str, key: &str) -> Result<Path, Error> {
        self.object_path(namespace, key)?.ok_or_else(|| {
            let max = self.max_key_len(namespace.len());
            Error::InvalidKey {
                key: shorten(key),
                rule: KeyRule::TooLong {
                    len: key.len(),
                    max,
                },
            }
        })
    }

    /// The listing offset for keys `>= key` (or `> key` when `exclusive`):
    /// every object of a key in that range sorts strictly after it, every
    /// other one at or before it. It is the key's name without its
    /// terminator (or with it, when exclusive), cut to the longest name S3
    /// takes — a shorter offset only lists a little more, which the caller
    /// filters out.
    pub fn offset(&self, namespace_path: &Path, key: &str, exclusive: bool) -> Path {
        let mut name = format!(
            "{}/{}",
            namespace_path.as_ref(),
            chunked(&codec::encode(key), exclusive)
        );
        if name.len() > MAX_OBJECT_NAME {
            name.truncate(MAX_OBJECT_NAME);
            // Never end on a '/': an empty segment does not parse.
            while name.ends_with('/') {
                name.pop();
            }
        }
        parse(name)
    }

    /// The key of a listed object under `namespace_path`: `None` for
    /// objects that are not records of this layout (foreign files, probe
    /// objects); [`Error::Corruption`] for a record name that does not
    /// decode.
    pub fn key_of(&self, namespace_path: &Path, location: &Path) -> Result<Option<String>, Error> {
        let Some(parts) = location.prefix_match(namespace_path) else {
            return Ok(None);
        };
        let parts: Vec<_> = parts.collect();
        let Some((last, rest)) = parts.split_last() else {
            return Ok(None);
        };
        let Some(last) = last.as_ref().strip_suffix(TERMINATOR) else {
            return Ok(None);
        };
        if last.is_empty() || last.len() > CHUNK || rest.iter().any(|p| p.as_ref().len() != CHUNK) {
            return Ok(None);
        }
        let mut encoded = String::with_capacity(rest.len() * CHUNK + last.len());
        for p in rest {
            encoded.push_str(p.as_ref());
        }
        encoded.push_str(last);
        codec::decode(&encoded, location.as_ref()).map(Some)
    }

    /// The namespace named by a folder listed under the prefix; `None`
    /// for folders that are not namespaces of this layout.
    pub fn namespace_of(&self, folder: &Path) -> Option<String> {
        let mut parts = folder.prefix_match(&self.prefix)?;
        let name = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        codec::decode(name.as_ref(), folder.as_ref()).ok()
    }

    /// A probe object's name.
    pub fn probe_path(&self, id: &str) -> Path {
        self.prefix.clone().join(PROBE_FOLDER).join(id)
    }
}

/// `encoded` cut into [`CHUNK`]-character segments joined by `/`, with the
/// terminator when `terminated`.
fn chunked(encoded: &str, terminated: bool) -> String {
    let mut out = String::with_capacity(key_part_len(encoded.len()));
    // The encoding is ASCII, so byte chunks are character chunks.
    for (i, chunk) in encoded.as_bytes().chunks(CHUNK).enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(chunk.iter().map(|&b| char::from(b)));
    }
    if terminated {
        out.push(TERMINATOR);
    }
    out
}

/// Parses a name built from a valid prefix and alphabet characters.
fn parse(name: String) -> Path {
    // Every part is a parsed prefix part or alphabet characters, so this
    // cannot fail; fall back to the encoding constructor, which is total.
    match Path::parse(&name) {
        Ok(p) => p,
        Err(_) => Path::from(name),
    }
}

/// Shortens a key for an error message.
fn shorten(key: &str) -> String {
    const MAX: usize = 120;
    if key.len() <= MAX {
        return key.to_owned();
    }
    let mut end = MAX;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &key[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn path(l: &Layout, ns: &str, key: &str) -> Path {
        l.object_path(ns, key).unwrap().unwrap()
    }

    #[test]
    fn names_look_as_documented() {
        let l = Layout::new("kv/app").unwrap();
        assert_eq!(path(&l, "default", "a").as_ref(), "kv/app/O5KaNMKgS-/NF!");
        let long = "k".repeat(400);
        let p = path(&l, "ns", &long);
        let parts: Vec<_> = p.parts().collect();
        // kv, app, ns, then 534 characters in 200 + 200 + 134 (+ '!').
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[3].as_ref().len(), CHUNK);
        assert_eq!(parts[4].as_ref().len(), CHUNK);
        assert!(parts[5].as_ref().ends_with('!'));
        let ns = l.namespace_path("ns").unwrap();
        assert_eq!(l.key_of(&ns, &p).unwrap().as_deref(), Some(long.as_str()));
        assert_eq!(
            l.namespace_of(&l.prefix().clone().join(codec::encode("ns").as_str())),
            Some("ns".into())
        );
        assert_eq!(l.namespace_of(&l.prefix().clone().join(PROBE_FOLDER)), None);
    }

    #[test]
    fn root_prefix_and_bad_prefixes() {
        let l = Layout::new("").unwrap();
        assert!(!path(&l, "n", "k").as_ref().starts_with('/'));
        assert!(Layout::new("/a/b/").is_ok());
        assert!(Layout::new("a//b").is_err());
        assert!(Layout::new("a/../b").is_err());
        assert!(Layout::new(&"p".repeat(1000)).is_err());
    }

    #[test]
    fn key_limit_is_exact() {
        for prefix in ["", "p", "some/longer/prefix-for-tests", &"x".repeat(300)] {
            let l = Layout::new(prefix).unwrap();
            for ns_len in [1, 7, 64, 100, MAX_NAMESPACE_LEN] {
                let ns = "n".repeat(ns_len);
                let max = l.max_key_len(ns_len);
                assert!(l.object_path(&ns, &"k".repeat(max)).unwrap().is_some());
                assert!(l.object_path(&ns, &"k".repeat(max + 1)).unwrap().is_none());
                let fitted = path(&l, &ns, &"k".repeat(max));
                assert!(fitted.as_ref().len() <= MAX_OBJECT_NAME);
            }
        }
        // With the root prefix and a 64-byte namespace, about 700 bytes.
        assert_eq!(Layout::new("").unwrap().max_key_len(64), 699);
    }

    #[test]
    fn long_namespaces_are_refused_and_long_keys_named() {
        let l = Layout::new("p").unwrap();
        assert!(l.namespace_path(&"n".repeat(MAX_NAMESPACE_LEN)).is_ok());
        assert!(matches!(
            l.namespace_path(&"n".repeat(MAX_NAMESPACE_LEN + 1)),
            Err(Error::InvalidNamespace { .. })
        ));
        let ns = "n".repeat(150);
        let key = "k".repeat(700);
        match l.object_path_for_write(&ns, &key) {
            Err(Error::InvalidKey {
                rule: KeyRule::TooLong { len: 700, max },
                ..
            }) => assert_eq!(max, l.max_key_len(150)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_key_ending_a_chunk_and_its_extension_do_not_collide() {
        // 150 bytes encode to exactly 200 characters: one full segment.
        let l = Layout::new("p").unwrap();
        let short = "a".repeat(150);
        let long = format!("{short}.b");
        let (ps, pl) = (path(&l, "n", &short), path(&l, "n", &long));
        assert!(ps < pl);
        assert!(!pl.as_ref().starts_with(&format!("{}/", ps.as_ref())));
    }

    #[test]
    fn foreign_objects_are_skipped() {
        let l = Layout::new("p").unwrap();
        let ns = l.namespace_path("n").unwrap();
        let n = codec::encode("n");
        let full = codec::encode(&"a".repeat(150));
        assert_eq!(full.len(), CHUNK);
        for foreign in [
            format!("p/{n}/readme.txt"),
            format!("p/{n}/NF"),
            format!("p/{n}/abc/NF!"),
            format!("p/{n}/!"),
            format!("p/{n}/{full}"),
            "p/other/NF!".to_owned(),
        ] {
            let path = Path::parse(&foreign).unwrap();
            assert_eq!(l.key_of(&ns, &path).unwrap(), None, "{foreign}");
        }
        // Laid out as a record, but not a valid encoding: corruption.
        let bad = Path::parse(format!("p/{n}/N!")).unwrap();
        assert!(matches!(l.key_of(&ns, &bad), Err(Error::Corruption { .. })));
        let good = Path::parse(format!("p/{n}/{full}/NF!")).unwrap();
        assert_eq!(l.key_of(&ns, &good).unwrap(), Some("a".repeat(151)));
    }

    fn keys() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z./%+:@#?*\\\\é日🔑]{1,40}",
            "[ab]{140,160}",
            "[ab]{290,310}",
            "[a-c]{1,3}".prop_map(|s| s.repeat(100)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn listing_order_is_key_order(a in keys(), b in keys()) {
            let l = Layout::new("pre/fix").unwrap();
            let (pa, pb) = (path(&l, "ns", &a), path(&l, "ns", &b));
            prop_assert_eq!(a.cmp(&b), pa.as_ref().cmp(pb.as_ref()));
            prop_assert_eq!(a.cmp(&b), pa.cmp(&pb));
            let ns = l.namespace_path("ns").unwrap();
            prop_assert_eq!(l.key_of(&ns, &pa).unwrap(), Some(a.clone()));
        }

        #[test]
        fn offsets_split_keys_exactly(a in keys(), bound in keys()) {
            let l = Layout::new("pre").unwrap();
            let ns = l.namespace_path("ns").unwrap();
            let pa = path(&l, "ns", &a);
            let inclusive = l.offset(&ns, &bound, false);
            let exclusive = l.offset(&ns, &bound, true);
            prop_assert_eq!(a >= bound, pa > inclusive);
            prop_assert_eq!(a > bound, pa > exclusive);
        }
    }
}
