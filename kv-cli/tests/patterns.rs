//! `keys`, `scan`, `count`, `namespaces`, `stats`, and namespaces through
//! the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{one_line_error, Sandbox};
use serde_json::json;

fn seeded() -> Sandbox {
    let s = Sandbox::new();
    for key in [
        "users.2.name",
        "users.10.name",
        "users.1.name",
        "app.port",
        "app",
    ] {
        s.ok(&["set", key, "v"]);
    }
    s
}

#[test]
fn keys_are_sorted_one_per_line_and_filtered_by_pattern() {
    let s = seeded();
    s.run(&["keys", "users.*.name"])
        .success()
        .stdout("users.1.name\nusers.10.name\nusers.2.name\n");
    s.run(&["keys"])
        .success()
        .stdout("app\napp.port\nusers.1.name\nusers.10.name\nusers.2.name\n");
    s.run(&["keys", "app.**"]).success().stdout("app.port\n");
    s.run(&["keys", "nothing.*"]).success().stdout("");
    let doc = s.json(&["keys", "{app,app.port}"], 0);
    assert_eq!(
        doc,
        json!({ "pattern": "{app,app.port}", "count": 2, "keys": ["app", "app.port"] })
    );
}

#[test]
fn invalid_patterns_exit_2_with_the_position() {
    let s = seeded();
    for cmd in [
        vec!["keys", "users.[0-9"],
        vec!["scan", "users.[0-9"],
        vec!["count", "users.[0-9"],
        vec!["export", "--pattern", "users.[0-9"],
    ] {
        s.run(&cmd).code(2).stdout("").stderr(one_line_error(&[
            "invalid pattern",
            "users.[0-9",
            "position",
        ]));
    }
    s.run(&["keys", "{a,b"])
        .code(2)
        .stderr(one_line_error(&["unclosed"]));
}

#[test]
fn scan_pages_through_entries_with_a_cursor() {
    let s = seeded();
    s.ok(&["set", "app.port", "8080", "--int"]);
    s.run(&["scan", "app.**"])
        .success()
        .stdout("app.port = 8080\n");
    let first = s.run(&["scan", "users.**", "--limit", "2"]).success();
    let out = String::from_utf8(first.get_output().stdout.clone()).unwrap();
    assert_eq!(out, "users.1.name = \"v\"\nusers.10.name = \"v\"\n");
    let err = String::from_utf8(first.get_output().stderr.clone()).unwrap();
    assert_eq!(err, "more: --cursor users.10.name\n");
    s.run(&[
        "scan",
        "users.**",
        "--limit",
        "2",
        "--cursor",
        "users.10.name",
    ])
    .success()
    .stdout("users.2.name = \"v\"\n");

    let doc = s.json(&["scan", "users.**", "--limit", "2"], 0);
    assert_eq!(doc["cursor"], "users.10.name");
    assert_eq!(doc["entries"].as_array().unwrap().len(), 2);
    assert_eq!(doc["entries"][0]["key"], "users.1.name");
    assert_eq!(doc["entries"][0]["value"], "v");
    assert_eq!(doc["entries"][0]["version"], 1);
    let last = s.json(&["scan", "users.**", "--cursor", "users.10.name"], 0);
    assert_eq!(last["cursor"], serde_json::Value::Null);
    s.run(&["scan", "--limit", "0"]).code(2);
}

#[test]
fn count_counts_the_namespace_or_a_pattern() {
    let s = seeded();
    s.run(&["count"]).success().stdout("5\n");
    s.run(&["count", "users.**"]).success().stdout("3\n");
    assert_eq!(
        s.json(&["count", "app*"], 0),
        json!({ "pattern": "app*", "count": 1 })
    );
}

#[test]
fn namespaces_keep_keys_apart() {
    let s = Sandbox::new();
    s.ok(&["set", "k", "in-default"]);
    s.ok(&["--namespace", "tenant_a", "set", "k", "in-a"]);
    s.ok(&["set", "k", "in-b", "-n", "tenant_b"]);
    s.run(&["get", "k"]).success().stdout("in-default\n");
    s.run(&["-n", "tenant_a", "get", "k"])
        .success()
        .stdout("in-a\n");
    s.run(&["get", "k", "--namespace", "tenant_b"])
        .success()
        .stdout("in-b\n");
    s.run(&["-n", "tenant_c", "get", "k"])
        .code(1)
        .stderr(one_line_error(&["tenant_c"]));
    s.run(&["namespaces"])
        .success()
        .stdout("default\ntenant_a\ntenant_b\n");
    assert_eq!(
        s.json(&["namespaces"], 0),
        json!({ "namespaces": ["default", "tenant_a", "tenant_b"] })
    );
    s.run(&["-n", "bad.ns", "get", "k"])
        .code(2)
        .stderr(one_line_error(&["invalid namespace", "bad.ns"]));
}

#[test]
fn stats_show_the_handle_and_the_backend() {
    let s = seeded();
    let out = s.ok(&["stats"]);
    assert!(out.contains("namespace:       default"), "{out}");
    assert!(out.contains("backend: engine"), "{out}");
    let doc = s.json(&["stats"], 0);
    assert_eq!(doc["namespace"], "default");
    assert_eq!(doc["backend"]["backend"], "engine");
    assert!(doc["backend"]["fields"].is_object());
    let doc = s.json(&["--store", "memory:", "stats"], 0);
    assert_eq!(doc["backend"]["backend"], "memory");
}

#[test]
fn compact_reclaims_space_and_keeps_every_key() {
    let s = seeded();
    for i in 0..3 {
        s.ok(&["set", "app.port", &i.to_string()]);
    }
    // Each `kv` is a new process: the engine's figures of what is on disk.
    let field = |s: &Sandbox, name: &str| {
        s.json(&["stats"], 0)["backend"]["fields"][name]
            .as_u64()
            .unwrap()
    };
    assert_eq!(field(&s, "snapshot_bytes"), 0, "no snapshot before compact");
    assert!(field(&s, "wal_bytes") > 0);
    let out = s.ok(&["compact"]);
    assert!(out.starts_with("compacted in "), "{out}");
    let doc = s.json(&["compact"], 0);
    assert_eq!(doc["compacted"], true);
    assert!(field(&s, "snapshot_bytes") > 0, "compact writes a snapshot");
    assert_eq!(
        s.ok(&["keys", "**"]),
        "app\napp.port\nusers.1.name\nusers.10.name\nusers.2.name\n"
    );
    assert_eq!(s.ok(&["get", "app.port"]), "2\n");

    let db = s.sqlite("compact.db");
    s.ok(&["--store", &db, "set", "a.b", "1"]);
    s.ok(&["--store", &db, "del", "a.b"]);
    s.ok(&["--store", &db, "set", "a.c", "2"]);
    s.ok(&["--store", &db, "compact"]);
    assert_eq!(s.ok(&["--store", &db, "keys", "**"]), "a.c\n");
    s.ok(&["--store", "memory:", "compact"]);
}
