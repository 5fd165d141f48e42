//! What the tool prints: plain text for people, one JSON document for
//! scripts (`--json`), and the renderings of values, entries, times and
//! durations both use.
//!
//! Values in JSON output are tagged the way export files tag them: `value`
//! holds strings, numbers, booleans, `null` and JSON as themselves, bytes as
//! standard base64, and non-finite floats as `"NaN"`, `"inf"`, `"-inf"`;
//! `encoding` says which (`null`, `bool`, `int`, `float`, `string`, `json`,
//! `bytes`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value as J};

use dataknobs_kv::{Entry, Value};

use crate::error::CliError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Where and how a command prints its answer.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// Machine output: one JSON document on stdout.
    pub json: bool,
}

impl Printer {
    /// Writes `text` and a newline to stdout.
    pub fn line(&self, text: &str) -> Result<(), CliError> {
        self.raw(format!("{text}\n").as_bytes())
    }

    /// Writes each item on its own line, buffered.
    pub fn lines<I, S>(&self, items: I) -> Result<(), CliError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for item in items {
            out.write_all(item.as_ref().as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| CliError::io("writing to stdout", &e))?;
        }
        out.flush()
            .map_err(|e| CliError::io("writing to stdout", &e))
    }

    /// Writes bytes to stdout as they are.
    pub fn raw(&self, bytes: &[u8]) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| CliError::io("writing to stdout", &e))
    }

    /// Writes one JSON document (compact, on one line) to stdout.
    pub fn doc(&self, doc: &J) -> Result<(), CliError> {
        self.line(&doc.to_string())
    }

    /// Writes `doc` in JSON mode, `text` otherwise (nothing when `text` is
    /// `None`).
    pub fn answer(&self, doc: J, text: Option<&str>) -> Result<(), CliError> {
        if self.json {
            self.doc(&doc)
        } else if let Some(text) = text {
            self.line(text)
        } else {
            Ok(())
        }
    }
}

/// Writes a note for people to stderr (not found, next-page hints). Write
/// errors are ignored: a note is never worth failing for.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Whether stdout is a terminal (and so raw bytes should not go there).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// `value` as tagged JSON: the value and its encoding name.
pub fn value_json(value: &Value) -> (J, &'static str) {
    let json = match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None if f.is_nan() => J::from("NaN"),
            None if *f > 0.0 => J::from("inf"),
            None => J::from("-inf"),
        },
        Value::String(s) => J::from(s.as_str()),
        Value::Json(j) => j.clone(),
        Value::Bytes(b) => J::from(B64.encode(b)),
    };
    (json, value.kind())
}

/// An entry as a JSON object: key, value, encoding, type, content type,
/// version, size, times (milliseconds since the Unix epoch) and user
/// metadata.
pub fn entry_json(entry: &Entry) -> J {
    let (value, encoding) = value_json(&entry.value);
    let s = &entry.metadata.system;
    json!({
        "key": entry.key,
        "value": value,
        "encoding": encoding,
        "type": s.value_type.name(),
        "content_type": s.content_type,
        "version": s.version,
        "size": s.size,
        "created_at": s.created_at.as_millis(),
        "updated_at": s.updated_at.as_millis(),
        "expires_at": s.expires_at.map(|t| t.as_millis()),
        "metadata": entry.metadata.user,
    })
}

/// A value as `get` prints it for people: strings as they are, JSON
/// pretty-printed, numbers and booleans as text. Bytes are handled by the
/// caller.
pub fn value_plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Json(j) => serde_json::to_string_pretty(j).unwrap_or_else(|_| j.to_string()),
        other => other.to_string(),
    }
}

/// A value on one line among others (`scan`): strings quoted, JSON
/// compact, bytes as a size summary.
pub fn value_inline(value: &Value, content_type: Option<&str>) -> String {
    match value {
        Value::String(s) => J::from(s.as_str()).to_string(),
        Value::Bytes(b) => bytes_summary(b.len(), content_type),
        Value::Json(j) => j.to_string(),
        other => other.to_string(),
    }
}

/// `<12 bytes>` or `<12 bytes, image/png>`.
pub fn bytes_summary(len: usize, content_type: Option<&str>) -> String {
    match content_type {
        Some(ct) => format!("<{len} bytes, {ct}>"),
        None => format!("<{len} bytes>"),
    }
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC
/// (`2024-01-01T00:00:00.000Z`).
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

/// A duration for people: `250ms`, `42s`, `5m 3s`, `2h 5m`, `3d 4h`
/// (rounded up to the second from one second on).
pub fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis().max(1));
    }
    let total = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (days, hours, mins, secs) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (mins, "m"), (secs, "s")]
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

/// Seconds as a float with millisecond precision, for JSON.
pub fn seconds(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// `s` quoted for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-:/@%+=".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(1_704_067_200_123), "2024-01-01T00:00:00.123Z");
        assert_eq!(time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_millis(41_200)), "42s");
        assert_eq!(duration(Duration::from_secs(303)), "5m 3s");
        assert_eq!(duration(Duration::from_secs(7200)), "2h");
        assert_eq!(duration(Duration::from_secs(90_061)), "1d 1h");
    }

    #[test]
    fn values_render_for_json_and_people() {
        assert_eq!(
            value_json(&Value::Bytes(b"hi".to_vec())),
            (J::from("aGk="), "bytes")
        );
        assert_eq!(value_json(&Value::Float(f64::NAN)).0, J::from("NaN"));
        assert_eq!(value_inline(&Value::from("a b"), None), "\"a b\"");
        assert_eq!(
            value_inline(&Value::Bytes(vec![0; 3]), Some("image/png")),
            "<3 bytes, image/png>"
        );
        assert_eq!(value_plain(&Value::from("a b")), "a b");
    }
}
