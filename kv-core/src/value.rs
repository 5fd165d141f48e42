//! Typed values and their byte encoding.
//!
//! A [`Value`] is what a caller stores; a [`ValueType`] says what it means
//! (`Document` and `Image` are bytes with a MIME content type). Values are
//! encoded to bytes by [`Value::encode`] for storage: one tag byte followed by
//! the payload (see the table on [`Value::encode`]); the record checksum is
//! taken over these bytes.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A stored value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value (JSON `null`).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer; the type `increment` works on.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    String(String),
    /// A JSON document.
    Json(serde_json::Value),
    /// Raw bytes (also documents and images, with a content type).
    Bytes(Vec<u8>),
}

const TAG_NULL: u8 = 0;
const TAG_BOOL: u8 = 1;
const TAG_INT: u8 = 2;
const TAG_FLOAT: u8 = 3;
const TAG_STRING: u8 = 4;
const TAG_JSON: u8 = 5;
const TAG_BYTES: u8 = 6;

impl Value {
    /// The first byte of the [`encode`](Self::encode)d values that this
    /// piece may be appended to (`append`'s rule: a string piece to a
    /// string or bytes, a bytes piece to bytes); empty for any other
    /// piece. For backends that append to the encoding in place
    /// ([`Backend::append_in_place`](crate::Backend::append_in_place)).
    pub fn append_target_tags(&self) -> &'static [u8] {
        match self {
            Value::String(_) => &[TAG_STRING, TAG_BYTES],
            Value::Bytes(_) => &[TAG_BYTES],
            _ => &[],
        }
    }

    /// A JSON value from any `Serialize` type.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
        serde_json::to_value(value)
            .map(Value::Json)
            .map_err(|e| Error::codec(format!("cannot serialize value as JSON: {e}")))
    }

    /// The type a value of this variant gets when none is given.
    pub fn default_type(&self) -> ValueType {
        match self {
            Value::Null | Value::Json(_) => ValueType::Json,
            Value::Bool(_) => ValueType::Boolean,
            Value::Int(_) | Value::Float(_) => ValueType::Number,
            Value::String(_) => ValueType::String,
            Value::Bytes(_) => ValueType::Binary,
        }
    }

    /// The variant's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Json(_) => "json",
            Value::Bytes(_) => "bytes",
        }
    }

    /// The string, if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is an `Int` or a `Float`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The bytes, if this is `Bytes`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as JSON (bytes become an array of numbers).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Json(j) => j.clone(),
            Value::Bytes(b) => serde_json::Value::from(b.clone()),
        }
    }

    /// Converts into any `DeserializeOwned` type, through JSON.
    ///
    /// `key` is only used in the error.
    pub fn deserialize<T: DeserializeOwned>(self, key: &str) -> Result<T> {
        let found = self.kind();
        let json = match self {
            Value::Json(j) => j,
            other => other.to_json(),
        };
        serde_json::from_value(json).map_err(|e| Error::TypeMismatch {
            key: key.to_owned(),
            operation: "get_as".into(),
            expected: std::any::type_name::<T>().to_owned(),
            found: format!("{found} ({e})"),
        })
    }

    /// Length of the payload in bytes (UTF-8 length of a string, length of
    /// bytes, of JSON text, 8 for numbers, 1 for a bool, 0 for null).
    pub fn payload_len(&self) -> usize {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 8,
            Value::String(s) => s.len(),
            Value::Json(j) => serde_json::to_vec(j).map(|v| v.len()).unwrap_or(0),
            Value::Bytes(b) => b.len(),
        }
    }

    /// Encodes the value: one tag byte, then the payload.
    ///
    /// | tag | variant | payload |
    /// |---|---|---|
    /// | 0 | `Null` | none |
    /// | 1 | `Bool` | one byte, 0 or 1 |
    /// | 2 | `Int` | 8 bytes, little-endian two's complement |
    /// | 3 | `Float` | 8 bytes, little-endian IEEE 754 bits |
    /// | 4 | `String` | UTF-8 bytes |
    /// | 5 | `Json` | compact JSON text |
    /// | 6 | `Bytes` | the bytes |
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.payload_len_hint());
        match self {
            Value::Null => out.push(TAG_NULL),
            Value::Bool(b) => {
                out.push(TAG_BOOL);
                out.push(u8::from(*b));
            }
            Value::Int(i) => {
                out.push(TAG_INT);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::String(s) => {
                out.push(TAG_STRING);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Json(j) => {
                out.push(TAG_JSON);
                // Writing a serde_json::Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut out, j);
            }
            Value::Bytes(b) => {
                out.push(TAG_BYTES);
                out.extend_from_slice(b);
            }
        }
        out
    }

    fn payload_len_hint(&self) -> usize {
        match self {
            Value::Json(_) => 64,
            other => other.payload_len(),
        }
    }

    /// Decodes bytes written by [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Value> {
        let (&tag, payload) = bytes
            .split_first()
            .ok_or_else(|| Error::codec("empty encoded value"))?;
        let fixed8 = |p: &[u8]| -> Result<[u8; 8]> {
            p.try_into()
                .map_err(|_| Error::codec(format!("expected 8 payload bytes, found {}", p.len())))
        };
        Ok(match tag {
            TAG_NULL if payload.is_empty() => Value::Null,
            TAG_BOOL if payload.len() == 1 && payload[0] <= 1 => Value::Bool(payload[0] == 1),
            TAG_INT => Value::Int(i64::from_le_bytes(fixed8(payload)?)),
            TAG_FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(fixed8(payload)?))),
            TAG_STRING => Value::String(
                String::from_utf8(payload.to_vec())
                    .map_err(|e| Error::codec(format!("string value is not UTF-8: {e}")))?,
            ),
            TAG_JSON => Value::Json(
                serde_json::from_slice(payload)
                    .map_err(|e| Error::codec(format!("JSON value does not parse: {e}")))?,
            ),
            TAG_BYTES => Value::Bytes(payload.to_vec()),
            _ => {
                return Err(Error::codec(format!(
                    "unknown value tag {tag} or bad payload length {}",
                    payload.len()
                )))
            }
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => f.write_str(s),
            Value::Json(j) => write!(f, "{j}"),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::String(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::Json(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// What a value means, kept in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueType {
    /// Text (`Value::String`).
    String,
    /// Structured JSON (`Value::Json` or `Value::Null`), or any value stored
    /// with `ValueType::Json` explicitly.
    Json,
    /// Raw bytes (`Value::Bytes`).
    Binary,
    /// `Value::Int` or `Value::Float`.
    Number,
    /// `Value::Bool`.
    Boolean,
    /// Bytes with a document MIME type (`application/pdf`, ...).
    Document,
    /// Bytes with an image MIME type (`image/png`, ...).
    Image,
    /// An application-defined type name; any value.
    Custom(String),
}

impl ValueType {
    /// Every type but `Custom`.
    pub const BUILT_IN: [ValueType; 7] = [
        ValueType::String,
        ValueType::Json,
        ValueType::Binary,
        ValueType::Number,
        ValueType::Boolean,
        ValueType::Document,
        ValueType::Image,
    ];

    /// Whether a value of this variant may carry this type.
    pub fn accepts(&self, value: &Value) -> bool {
        match self {
            ValueType::String => matches!(value, Value::String(_)),
            ValueType::Number => matches!(value, Value::Int(_) | Value::Float(_)),
            ValueType::Boolean => matches!(value, Value::Bool(_)),
            ValueType::Binary | ValueType::Document | ValueType::Image => {
                matches!(value, Value::Bytes(_))
            }
            ValueType::Json | ValueType::Custom(_) => true,
        }
    }

    /// Whether this type needs a content type (documents and images).
    pub fn needs_content_type(&self) -> bool {
        matches!(self, ValueType::Document | ValueType::Image)
    }

    /// The type's name: `string`, `json`, `binary`, `number`, `boolean`,
    /// `document`, `image`, or `custom:NAME`.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow;
        match self {
            ValueType::String => Cow::Borrowed("string"),
            ValueType::Json => Cow::Borrowed("json"),
            ValueType::Binary => Cow::Borrowed("binary"),
            ValueType::Number => Cow::Borrowed("number"),
            ValueType::Boolean => Cow::Borrowed("boolean"),
            ValueType::Document => Cow::Borrowed("document"),
            ValueType::Image => Cow::Borrowed("image"),
            ValueType::Custom(n) => Cow::Owned(format!("custom:{n}")),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for ValueType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "string" => ValueType::String,
            "json" => ValueType::Json,
            "binary" => ValueType::Binary,
            "number" => ValueType::Number,
            "boolean" => ValueType::Boolean,
            "document" => ValueType::Document,
            "image" => ValueType::Image,
            other => match other.strip_prefix("custom:") {
                Some(name) if !name.is_empty() => ValueType::Custom(name.to_owned()),
                _ => {
                    return Err(Error::invalid_argument(
                        "value_type",
                        format!("unknown value type {other:?}"),
                    ))
                }
            },
        })
    }
}

impl Serialize for ValueType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for ValueType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trips_every_variant() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::Int(42),
            Value::Float(-1.5),
            Value::Float(f64::INFINITY),
            Value::String("héllo".into()),
            Value::String(String::new()),
            Value::Json(serde_json::json!({"a": [1, 2, {"b": null}]})),
            Value::Bytes(vec![0, 255, 10]),
            Value::Bytes(vec![]),
        ];
        for v in values {
            let decoded = Value::decode(&v.encode()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(decoded, v);
        }
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(Value::decode(&[]).is_err());
        assert!(Value::decode(&[99]).is_err());
        assert!(Value::decode(&[TAG_INT, 1, 2]).is_err());
        assert!(Value::decode(&[TAG_STRING, 0xff]).is_err());
        assert!(Value::decode(&[TAG_BOOL, 7]).is_err());
    }

    #[test]
    fn value_types_parse_and_check() {
        for t in ValueType::BUILT_IN
            .into_iter()
            .chain([ValueType::Custom("geo".into())])
        {
            assert_eq!(t.name().parse::<ValueType>().ok(), Some(t.clone()));
        }
        assert!("nope".parse::<ValueType>().is_err());
        assert!(ValueType::Image.accepts(&Value::Bytes(vec![1])));
        assert!(!ValueType::Image.accepts(&Value::String("x".into())));
        assert!(ValueType::Number.accepts(&Value::Float(1.0)));
    }

    #[test]
    fn deserialize_through_json() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct User {
            name: String,
        }
        let v = Value::Json(serde_json::json!({"name": "ada"}));
        let u: User = v.deserialize("k").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.name, "ada");
        let n: i64 = Value::Int(5)
            .deserialize("k")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 5);
        let bad = Value::String("x".into()).deserialize::<i64>("k");
        assert!(matches!(bad, Err(Error::TypeMismatch { .. })));
    }
}
