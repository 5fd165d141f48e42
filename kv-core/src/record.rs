//! [`Record`]: what a backend stores, and its binary codec.
//!
//! A record is one key in one namespace: the encoded value bytes, the system
//! metadata and the user metadata. Backends that store opaque blobs (the
//! engine, object stores) use [`Record::encode_body`]: a format-version byte
//! followed by a MessagePack (rmp-serde) array of `[value, system, user]`.
//! The namespace and key are not in the body; they are where the body is
//! stored. Table backends may store the fields in columns instead.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{shorten, Error, Result};
use crate::metadata::{Metadata, SystemMetadata, UserMetadata};
use crate::value::{Value, ValueType};

/// The current record body format.
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// One stored key.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The namespace the key lives in (shared: the records of one scan
    /// hold one allocation).
    pub namespace: Arc<str>,
    /// The normalised key.
    pub key: String,
    /// The encoded value ([`Value::encode`]).
    pub value: Vec<u8>,
    /// Fields kept by the store.
    pub meta: SystemMetadata,
    /// Fields kept for the caller.
    pub user: UserMetadata,
}

/// The parts of a record a plain `get` needs, as returned by
/// [`Backend::read_value`](crate::Backend::read_value).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue {
    /// The encoded value.
    pub value: Vec<u8>,
    /// CRC32 of `value` as stored.
    pub checksum: u32,
    /// When the record expires.
    pub expires_at: Option<Timestamp>,
}

impl StoredValue {
    /// Whether the record is expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        matches!(self.expires_at, Some(t) if now >= t)
    }

    /// Verifies the checksum and decodes the value; `namespace` and `key`
    /// name the record in a corruption error.
    pub fn decode(&self, namespace: &str, key: &str) -> Result<Value> {
        decode_checked(&self.value, self.checksum, namespace, key)
    }
}

fn verify_checksum(value: &[u8], checksum: u32, namespace: &str, key: &str) -> Result<()> {
    let actual = crc32fast::hash(value);
    if actual != checksum {
        return Err(Error::Corruption {
            location: format!("{namespace}/{}", shorten(key)),
            reason: format!(
                "value checksum mismatch: stored {checksum:08x}, computed {actual:08x}"
            ),
        });
    }
    Ok(())
}

fn decode_checked(value: &[u8], checksum: u32, namespace: &str, key: &str) -> Result<Value> {
    verify_checksum(value, checksum, namespace, key)?;
    Value::decode(value).map_err(|e| Error::Corruption {
        location: format!("{namespace}/{}", shorten(key)),
        reason: e.to_string(),
    })
}

#[derive(Serialize)]
struct BodyRef<'a> {
    #[serde(with = "serde_bytes")]
    value: &'a [u8],
    meta: &'a SystemMetadata,
    user: &'a UserMetadata,
}

#[derive(Serialize)]
struct MetaRef<'a> {
    meta: &'a SystemMetadata,
    user: &'a UserMetadata,
}

#[derive(Deserialize)]
struct MetaBody {
    meta: SystemMetadata,
    user: UserMetadata,
}

#[derive(Deserialize)]
struct Body {
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
    meta: SystemMetadata,
    user: UserMetadata,
}

impl Record {
    /// Builds a fresh record (version 1) for `value` written at `now`.
    pub fn new(
        namespace: impl Into<Arc<str>>,
        key: impl Into<String>,
        value: &Value,
        value_type: ValueType,
        now: Timestamp,
    ) -> Record {
        let encoded = value.encode();
        Record {
            namespace: namespace.into(),
            key: key.into(),
            meta: SystemMetadata {
                created_at: now,
                updated_at: now,
                expires_at: None,
                version: 1,
                size: value.payload_len() as u64,
                checksum: crc32fast::hash(&encoded),
                content_type: None,
                value_type,
                accessed_at: None,
            },
            value: encoded,
            user: UserMetadata::new(),
        }
    }

    /// Replaces the value, keeping size and checksum consistent.
    pub fn set_value(&mut self, value: &Value) {
        self.value = value.encode();
        self.meta.size = value.payload_len() as u64;
        self.meta.checksum = crc32fast::hash(&self.value);
    }

    /// When the record expires.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.meta.expires_at
    }

    /// Whether the record is expired at `now` (`now >= expires_at`).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        matches!(self.meta.expires_at, Some(t) if now >= t)
    }

    /// The record's version.
    pub fn version(&self) -> u64 {
        self.meta.version
    }

    /// Checks the value bytes against the stored checksum.
    pub fn verify(&self) -> Result<()> {
        verify_checksum(&self.value, self.meta.checksum, &self.namespace, &self.key)
    }

    /// Verifies the checksum and decodes the value.
    pub fn decode_value(&self) -> Result<Value> {
        decode_checked(&self.value, self.meta.checksum, &self.namespace, &self.key)
    }

    /// The parts of the record a plain `get` needs.
    pub fn stored_value(&self) -> StoredValue {
        StoredValue {
            value: self.value.clone(),
            checksum: self.meta.checksum,
            expires_at: self.meta.expires_at,
        }
    }

    /// The metadata as returned to callers.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            system: self.meta.clone(),
            user: self.user.clone(),
        }
    }

    /// Encodes value and metadata (not namespace and key) as one body.
    pub fn encode_body(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.value.len() + 64);
        out.push(RECORD_FORMAT_VERSION);
        rmp_serde::encode::write(
            &mut out,
            &BodyRef {
                value: &self.value,
                meta: &self.meta,
                user: &self.user,
            },
        )
        .map_err(|e| Error::codec(format!("cannot encode record: {e}")))?;
        Ok(out)
    }

    /// Encodes the metadata alone (format byte, then MessagePack of
    /// `[system, user]`), for backends that keep the value bytes apart.
    pub fn encode_meta(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        out.push(RECORD_FORMAT_VERSION);
        rmp_serde::encode::write(
            &mut out,
            &MetaRef {
                meta: &self.meta,
                user: &self.user,
            },
        )
        .map_err(|e| Error::codec(format!("cannot encode record metadata: {e}")))?;
        Ok(out)
    }

    /// Rebuilds a record from its value bytes and metadata written by
    /// [`encode_meta`](Self::encode_meta).
    pub fn from_parts(
        namespace: impl Into<Arc<str>>,
        key: impl Into<String>,
        value: Vec<u8>,
        meta: &[u8],
    ) -> Result<Record> {
        let namespace = namespace.into();
        let key = key.into();
        let corrupt = |reason: String| Error::Corruption {
            location: format!("{namespace}/{}", shorten(&key)),
            reason,
        };
        let (&version, rest) = meta
            .split_first()
            .ok_or_else(|| corrupt("empty record metadata".into()))?;
        if version != RECORD_FORMAT_VERSION {
            return Err(corrupt(format!(
                "unknown record format version {version} (this build reads {RECORD_FORMAT_VERSION})"
            )));
        }
        let body: MetaBody = rmp_serde::from_slice(rest)
            .map_err(|e| corrupt(format!("record metadata does not decode: {e}")))?;
        Ok(Record {
            namespace,
            key,
            value,
            meta: body.meta,
            user: body.user,
        })
    }

    /// Decodes a body written by [`encode_body`](Self::encode_body).
    pub fn decode_body(
        namespace: impl Into<Arc<str>>,
        key: impl Into<String>,
        body: &[u8],
    ) -> Result<Record> {
        let namespace = namespace.into();
        let key = key.into();
        let corrupt = |reason: String| Error::Corruption {
            location: format!("{namespace}/{}", shorten(&key)),
            reason,
        };
        let (&version, rest) = body
            .split_first()
            .ok_or_else(|| corrupt("empty record body".into()))?;
        if version != RECORD_FORMAT_VERSION {
            return Err(corrupt(format!(
                "unknown record format version {version} (this build reads {RECORD_FORMAT_VERSION})"
            )));
        }
        let body: Body = rmp_serde::from_slice(rest)
            .map_err(|e| corrupt(format!("record body does not decode: {e}")))?;
        Ok(Record {
            namespace,
            key,
            value: body.value,
            meta: body.meta,
            user: body.user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Record {
        let mut r = Record::new(
            "ns",
            "a.b",
            &Value::String("hello".into()),
            ValueType::String,
            Timestamp::from_millis(1000),
        );
        r.meta.expires_at = Some(Timestamp::from_millis(5000));
        r.meta.content_type = Some("text/plain".into());
        r.user = json!({"tags": ["x"], "n": 1.5})
            .as_object()
            .cloned()
            .unwrap_or_default();
        r
    }

    #[test]
    fn body_round_trips() {
        let r = sample();
        let body = r.encode_body().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body[0], RECORD_FORMAT_VERSION);
        let back = Record::decode_body("ns", "a.b", &body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, r);
    }

    #[test]
    fn parts_round_trip() {
        let r = sample();
        let meta = r.encode_meta().unwrap_or_else(|e| panic!("{e}"));
        let back = Record::from_parts("ns", "a.b", r.value.clone(), &meta)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, r);
        assert!(Record::from_parts("ns", "k", vec![], &[9]).is_err());
    }

    #[test]
    fn unknown_version_and_garbage_are_corruption() {
        let mut body = sample().encode_body().unwrap_or_else(|e| panic!("{e}"));
        body[0] = 9;
        assert!(matches!(
            Record::decode_body("ns", "k", &body),
            Err(Error::Corruption { .. })
        ));
        assert!(Record::decode_body("ns", "k", &[RECORD_FORMAT_VERSION, 0xc1]).is_err());
        assert!(Record::decode_body("ns", "k", &[]).is_err());
    }

    #[test]
    fn checksum_mismatch_is_corruption() {
        let mut r = sample();
        assert!(r.decode_value().is_ok());
        r.value[1] ^= 0x20;
        match r.decode_value() {
            Err(Error::Corruption { location, .. }) => assert_eq!(location, "ns/a.b"),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn expiry_is_inclusive() {
        let r = sample();
        assert!(!r.is_expired(Timestamp::from_millis(4999)));
        assert!(r.is_expired(Timestamp::from_millis(5000)));
    }
}
