//! `ttl`, `expire`, `persist`, `cleanup` through the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{one_line_error, Sandbox};
use serde_json::json;

#[test]
fn ttl_tells_persistent_expiring_and_missing_keys_apart() {
    let s = Sandbox::new();
    s.ok(&["set", "p", "v"]);
    s.ok(&["set", "e", "v", "--ttl", "5m"]);
    s.run(&["ttl", "p"]).success().stdout("persistent\n");
    let out = s.ok(&["ttl", "e"]);
    assert!(
        out == "expires in 5m\n" || out == "expires in 4m 59s\n",
        "{out}"
    );
    s.run(&["ttl", "missing"])
        .code(1)
        .stderr(one_line_error(&["not found", "missing"]));
    assert_eq!(
        s.json(&["ttl", "p"], 0),
        json!({ "key": "p", "ttl": "persistent", "seconds": null })
    );
}

#[test]
fn expire_then_persist() {
    let s = Sandbox::new();
    s.ok(&["set", "k", "v"]);
    s.ok(&["expire", "k", "90s"]);
    let secs = s.json(&["ttl", "k"], 0)["seconds"].as_f64().unwrap();
    assert!(secs > 80.0 && secs <= 90.0, "{secs}");
    assert_eq!(
        s.json(&["persist", "k"], 0),
        json!({ "key": "k", "persisted": true })
    );
    s.run(&["ttl", "k"]).success().stdout("persistent\n");
    // Persisting a key without expiry is fine; a missing key is exit 1.
    s.run(&["persist", "k"])
        .success()
        .stdout("the key had no expiry\n");
    s.run(&["persist", "nope"]).code(1);
    s.run(&["expire", "nope", "10"]).code(1);
    s.run(&["expire", "k", "soon"])
        .code(2)
        .stderr(one_line_error(&["TTL", "soon"]));
}

#[test]
fn expired_keys_vanish_and_cleanup_removes_them() {
    let s = Sandbox::new();
    s.ok(&["set", "short", "v", "--ttl", "300ms"]);
    s.ok(&["set", "long", "v"]);
    std::thread::sleep(Duration::from_millis(400));
    s.run(&["get", "short"]).code(1);
    s.run(&["keys"]).success().stdout("long\n");
    let out = s.ok(&["cleanup"]);
    assert!(
        out.starts_with("removed ") && out.ends_with(" expired keys\n"),
        "{out}"
    );
    assert!(s.json(&["cleanup"], 0)["removed"].is_u64());
    s.run(&["count"]).success().stdout("1\n");
}
