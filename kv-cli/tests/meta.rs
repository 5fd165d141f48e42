//! `meta get|set|update` through the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{one_line_error, Sandbox};
use serde_json::json;

#[test]
fn meta_set_replaces_and_update_merges_user_metadata() {
    let s = Sandbox::new();
    s.ok(&["set", "user.1", "ann", "--meta", "role=admin"]);
    s.ok(&["meta", "set", "user.1", "team=core", "level:=3"]);
    let doc = s.json(&["meta", "get", "user.1"], 0);
    assert_eq!(doc["user"], json!({ "team": "core", "level": 3 }));
    assert_eq!(doc["key"], "user.1");
    assert_eq!(doc["namespace"], "default");
    assert_eq!(doc["system"]["version"], 2, "a metadata write is a write");
    s.ok(&["meta", "update", "user.1", "level:=null", "tags:=[\"vip\"]"]);
    let doc = s.json(&["meta", "get", "user.1"], 0);
    assert_eq!(doc["user"], json!({ "team": "core", "tags": ["vip"] }));
    s.ok(&["meta", "set", "user.1", r#"{"only": true}"#]);
    let doc = s.json(&["meta", "get", "user.1"], 0);
    assert_eq!(doc["user"], json!({ "only": true }));
    assert_eq!(
        s.json(&["meta", "update", "user.1", "x=y"], 0),
        json!({ "key": "user.1", "updated": true })
    );
}

#[test]
fn meta_get_prints_fields_for_people() {
    let s = Sandbox::new();
    s.ok(&["set", "k", "hello", "--meta", "owner=ann"]);
    let out = s.ok(&["meta", "get", "k"]);
    for needle in [
        "key:          k",
        "type:         string",
        "size:         5",
        "version:      1",
        "expires_at:   never",
        "user:         {\"owner\":\"ann\"}",
    ] {
        assert!(out.contains(needle), "{needle:?} not in {out}");
    }
    assert!(out.contains("created_at:   20"), "{out}");
}

#[test]
fn meta_on_a_missing_key_exits_1_and_bad_fields_exit_2() {
    let s = Sandbox::new();
    s.run(&["meta", "get", "nope"]).code(1);
    s.run(&["meta", "set", "nope", "a=b"]).code(1);
    s.run(&["meta", "update", "nope", "a=b"]).code(1);
    s.ok(&["set", "k", "v"]);
    s.run(&["meta", "update", "k", "novalue"])
        .code(2)
        .stderr(one_line_error(&["FIELDS", "novalue"]));
    s.run(&["meta", "update", "k", "a:={"]).code(2);
    s.run(&["meta", "set", "k", "[1]"]).code(2);
    s.run(&["meta", "update", "k"]).code(2);
    s.run(&["meta", "update", "k", "ttl=soon"])
        .code(2)
        .stderr(one_line_error(&["ttl"]));
}
