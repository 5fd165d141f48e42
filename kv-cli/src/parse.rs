//! Turning command-line text into store input: durations, typed values and
//! metadata fields. Every failure is a usage error (exit 2) that names the
//! argument and what was wrong with it.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use dataknobs_kv::{UserMetadata, Value};

use crate::cli::ValueKind;
use crate::error::CliError;

/// A duration: a number of seconds (`30`, `1.5`), or a number with a unit
/// (`500ms`, `30s`, `5m`, `2h`, `1d`). Must be more than zero.
pub fn duration(arg: &str, text: &str) -> Result<Duration, CliError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = |why: &str| CliError::usage(format!("{arg} {text:?}: {why}"));
    let n: f64 = number
        .parse()
        .map_err(|_| bad("expected a number with an optional unit: 30, 500ms, 30s, 5m, 2h, 1d"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => return Err(bad(&format!("unknown unit {other:?} (ms, s, m, h, d)"))),
    };
    let d = Duration::try_from_secs_f64(n * scale).map_err(|_| bad("out of range"))?;
    if d.is_zero() {
        return Err(bad("must be more than zero"));
    }
    Ok(d)
}

/// The kind of value `value` is, as `--type` names it.
pub fn kind_of(value: &Value) -> ValueKind {
    match value {
        Value::Null => ValueKind::Null,
        Value::Bool(_) => ValueKind::Bool,
        Value::Int(_) => ValueKind::Int,
        Value::Float(_) => ValueKind::Float,
        Value::String(_) => ValueKind::String,
        Value::Json(_) => ValueKind::Json,
        Value::Bytes(_) => ValueKind::Bytes,
    }
}

/// The `--type` name of a kind.
pub fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::String => "string",
        ValueKind::Int => "int",
        ValueKind::Float => "float",
        ValueKind::Bool => "bool",
        ValueKind::Json => "json",
        ValueKind::Null => "null",
        ValueKind::Bytes => "bytes",
    }
}

/// Reads `text` as a value of `kind`; `arg` names the argument in errors.
pub fn typed(arg: &str, kind: ValueKind, text: &str) -> Result<Value, CliError> {
    let bad = |why: String| CliError::usage(format!("{arg} {:?}: {why}", shorten(text)));
    Ok(match kind {
        ValueKind::String => Value::String(text.to_owned()),
        ValueKind::Bytes => Value::Bytes(text.as_bytes().to_vec()),
        ValueKind::Int => Value::Int(
            text.trim()
                .parse()
                .map_err(|_| bad("is not a 64-bit integer".into()))?,
        ),
        ValueKind::Float => Value::Float(match text.trim() {
            "NaN" | "nan" => f64::NAN,
            "inf" | "+inf" | "infinity" => f64::INFINITY,
            "-inf" | "-infinity" => f64::NEG_INFINITY,
            t => t.parse().map_err(|_| bad("is not a number".into()))?,
        }),
        ValueKind::Bool => Value::Bool(match text.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(bad("is not a boolean (true, false, 1, 0)".into())),
        }),
        ValueKind::Json => Value::Json(
            serde_json::from_str(text).map_err(|e| bad(format!("is not valid JSON: {e}")))?,
        ),
        ValueKind::Null => match text.trim() {
            "" | "null" => Value::Null,
            _ => return Err(bad("--type null takes no value (or \"null\")".into())),
        },
    })
}

/// Reads `kind` from raw bytes (a `--file`): bytes as they are, the other
/// kinds from the bytes as UTF-8 text.
pub fn typed_bytes(arg: &str, kind: ValueKind, bytes: Vec<u8>) -> Result<Value, CliError> {
    if kind == ValueKind::Bytes {
        return Ok(Value::Bytes(bytes));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::usage(format!("{arg}: is not UTF-8 text; use --type bytes")))?;
    typed(arg, kind, &text)
}

/// The bytes of a file, or of stdin for `-`. A missing or unreadable file
/// is a usage error naming it.
pub fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::io("reading stdin", &e))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| CliError::input_file(path, &e))
}

/// User metadata from `k=v` (a string) and `k:=JSON` fields, or from one
/// argument that is a whole JSON object.
pub fn metadata_fields(arg: &str, fields: &[String]) -> Result<UserMetadata, CliError> {
    let mut out = UserMetadata::new();
    if let [only] = fields {
        if only.trim_start().starts_with('{') {
            return match serde_json::from_str(only) {
                Ok(serde_json::Value::Object(map)) => Ok(map),
                Ok(_) => Err(CliError::usage(format!("{arg}: must be a JSON object"))),
                Err(e) => Err(CliError::usage(format!(
                    "{arg} {:?}: is not valid JSON: {e}",
                    shorten(only)
                ))),
            };
        }
    }
    for field in fields {
        let (name, value) = if let Some((k, v)) = field.split_once(":=") {
            let json = serde_json::from_str(v).map_err(|e| {
                CliError::usage(format!(
                    "{arg} {:?}: the part after := is not valid JSON: {e}",
                    shorten(field)
                ))
            })?;
            (k, json)
        } else if let Some((k, v)) = field.split_once('=') {
            (k, serde_json::Value::String(v.to_owned()))
        } else {
            return Err(CliError::usage(format!(
                "{arg} {:?}: expected k=v (string) or k:=JSON",
                shorten(field)
            )));
        };
        if name.is_empty() {
            return Err(CliError::usage(format!(
                "{arg} {:?}: the field name is empty",
                shorten(field)
            )));
        }
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// Long input cut short for error lines.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_zero() {
        assert_eq!(duration("--ttl", "30").ok(), Some(Duration::from_secs(30)));
        assert_eq!(
            duration("--ttl", "500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(duration("--ttl", "5m").ok(), Some(Duration::from_secs(300)));
        assert_eq!(
            duration("--ttl", "1.5h").ok(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            duration("--ttl", "2d").ok(),
            Some(Duration::from_secs(172_800))
        );
        assert!(duration("--ttl", "0").is_err());
        assert!(duration("--ttl", "-5").is_err());
        assert!(duration("--ttl", "5y").is_err());
        assert!(duration("--ttl", "").is_err());
    }

    #[test]
    fn typed_values_parse_or_name_the_problem() {
        assert_eq!(typed("v", ValueKind::Int, "-7").ok(), Some(Value::Int(-7)));
        assert_eq!(
            typed("v", ValueKind::Bool, "true").ok(),
            Some(Value::Bool(true))
        );
        assert_eq!(
            typed("v", ValueKind::Json, "[1,2]").ok(),
            Some(Value::Json(serde_json::json!([1, 2])))
        );
        assert_eq!(typed("v", ValueKind::Null, "").ok(), Some(Value::Null));
        let e = typed("VALUE", ValueKind::Int, "abc")
            .err()
            .map(|e| e.message);
        assert_eq!(e.as_deref(), Some("VALUE \"abc\": is not a 64-bit integer"));
    }

    #[test]
    fn metadata_fields_are_strings_or_json() {
        let m = metadata_fields("--meta", &["a=1".into(), "b:=1".into(), "c=x=y".into()]);
        let m = m.ok().unwrap_or_default();
        assert_eq!(m.get("a"), Some(&serde_json::json!("1")));
        assert_eq!(m.get("b"), Some(&serde_json::json!(1)));
        assert_eq!(m.get("c"), Some(&serde_json::json!("x=y")));
        let m = metadata_fields("FIELDS", &["{\"z\": [1]}".into()]).ok();
        assert_eq!(
            m.and_then(|m| m.get("z").cloned()),
            Some(serde_json::json!([1]))
        );
        assert!(metadata_fields("--meta", &["novalue".into()]).is_err());
        assert!(metadata_fields("--meta", &["=v".into()]).is_err());
        assert!(metadata_fields("--meta", &["k:={".into()]).is_err());
    }
}
