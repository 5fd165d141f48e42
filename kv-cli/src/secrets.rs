//! The secrets of the configs this run opened, so that no message the tool
//! prints can hold one — even if a driver's error were to quote a URL.
//!
//! The library already keeps secrets out of its errors; this is the
//! second line: every error line goes through [`scrub`] before printing.

use std::sync::{Mutex, PoisonError};

use dataknobs_kv::config::redact_url;
use dataknobs_kv::StoreConfig;

/// (text to hide, what to print instead).
static SECRETS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Passwords shorter than this are only hidden inside their URL: hiding a
/// one-letter password everywhere would garble every message.
const MIN_BARE_SECRET: usize = 4;

fn add(text: &str, replacement: &str) {
    if text.is_empty() || text == replacement {
        return;
    }
    let mut list = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if !list.iter().any(|(t, _)| t == text) {
        list.push((text.to_owned(), replacement.to_owned()));
        // Longest first, so a URL is replaced before the password inside it.
        list.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    }
}

fn add_bare(secret: &str) {
    if secret.chars().count() >= MIN_BARE_SECRET {
        add(secret, "***");
        let decoded = percent_decode(secret);
        if decoded != secret {
            add(&decoded, "***");
        }
    }
}

/// A URL that may hold a password (`scheme://user:password@host/…`).
pub fn register_url(url: &str) {
    let redacted = redact_url(url);
    if redacted == url {
        return;
    }
    add(url, &redacted);
    if let Some(password) = url_password(url) {
        add_bare(password);
    }
}

/// Every secret a config holds.
pub fn register_config(config: &StoreConfig) {
    if let Some(url) = &config.store.url {
        register_url(url);
    }
    if let Some(url) = &config.postgres.url {
        register_url(url.expose());
    }
    if let Some(password) = &config.postgres.password {
        add_bare(password.expose());
    }
    if let Some(secret) = &config.s3.secret_access_key {
        add_bare(secret.expose());
    }
}

/// `message` with every registered secret hidden, on one line.
pub fn scrub(message: &str) -> String {
    let mut out = message.to_owned();
    let list = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    for (text, replacement) in list.iter() {
        if out.contains(text.as_str()) {
            out = out.replace(text.as_str(), replacement);
        }
    }
    one_line(&out)
}

/// Joins the lines of `s` with spaces and trims it.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The password of a `scheme://user:password@host/…` URL.
fn url_password(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(&authority[colon + 1..at])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_passwords_are_hidden() {
        register_url("postgres://ada:s3cr%40t!@db.example/app");
        let msg = "cannot reach postgres://ada:s3cr%40t!@db.example/app; password s3cr@t! refused";
        let out = scrub(msg);
        assert!(!out.contains("s3cr"), "{out}");
        assert!(out.contains("postgres://ada:***@db.example/app"), "{out}");
    }

    #[test]
    fn short_passwords_are_hidden_in_their_url_only() {
        register_url("postgres://kv:x@127.0.0.1:1/db");
        let out = scrub("error at postgres://kv:x@127.0.0.1:1/db: x marks the spot");
        assert_eq!(
            out,
            "error at postgres://kv:***@127.0.0.1:1/db: x marks the spot"
        );
    }

    #[test]
    fn messages_become_one_line() {
        assert_eq!(one_line("a\n  b\tc\n"), "a b c");
    }
}
