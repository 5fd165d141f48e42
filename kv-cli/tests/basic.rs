//! `get`, `set`, `del`, `exists` through the real binary, on the default
//! store (the engine in `./kv-data`), across invocations.
#![allow(clippy::unwrap_used)]

mod common;

use common::{one_line_error, Sandbox};
use serde_json::json;

#[test]
fn set_then_get_prints_the_value_plainly_from_the_default_engine_store() {
    let s = Sandbox::new();
    s.run(&["set", "app.name", "demo"]).success().stdout("");
    s.run(&["get", "app.name"]).success().stdout("demo\n");
    assert!(s.path("kv-data").is_dir(), "default store is ./kv-data");
}

#[test]
fn get_of_a_missing_key_exits_1_with_a_note() {
    let s = Sandbox::new();
    s.run(&["get", "no.such.key"])
        .code(1)
        .stdout("")
        .stderr(one_line_error(&["not found", "no.such.key"]));
    let doc = s.json(&["get", "no.such.key"], 1);
    assert_eq!(doc, json!({ "key": "no.such.key", "found": false }));
}

#[test]
fn typed_values_are_stored_with_their_types() {
    let s = Sandbox::new();
    s.ok(&["set", "t.int", "-42", "--int"]);
    s.ok(&["set", "t.float", "2.5", "--type", "float"]);
    s.ok(&["set", "t.bool", "true", "--bool"]);
    s.ok(&["set", "t.json", r#"{"a":[1,2]}"#, "--json"]);
    s.ok(&["set", "t.null", "--type", "null"]);
    s.ok(&["set", "t.bytes", "hi", "--type", "bytes"]);
    s.ok(&["set", "t.str", "42"]);
    let cases = [
        ("t.int", json!(-42), "int"),
        ("t.float", json!(2.5), "float"),
        ("t.bool", json!(true), "bool"),
        ("t.json", json!({"a": [1, 2]}), "json"),
        ("t.null", json!(null), "null"),
        ("t.bytes", json!("aGk="), "bytes"),
        ("t.str", json!("42"), "string"),
    ];
    for (key, value, encoding) in cases {
        let doc = s.json(&["get", key], 0);
        assert_eq!(doc["value"], value, "{key}");
        assert_eq!(doc["encoding"], encoding, "{key}");
        assert_eq!(doc["found"], true);
    }
    s.run(&["get", "t.json"])
        .success()
        .stdout("{\n  \"a\": [\n    1,\n    2\n  ]\n}\n");
    s.run(&["get", "t.float"]).success().stdout("2.5\n");
}

#[test]
fn json_before_set_is_machine_output_and_after_set_parses_the_value() {
    let s = Sandbox::new();
    let doc = s.json(&["set", "k", "[1]"], 0);
    assert_eq!(doc, json!({ "key": "k", "written": true }));
    assert_eq!(s.json(&["get", "k"], 0)["encoding"], "string");
    s.run(&["set", "k", "[1]", "--json"]).success().stdout("");
    assert_eq!(s.json(&["get", "k"], 0)["value"], json!([1]));
    // `--json` after other commands is machine output too.
    let out = s.ok(&["get", "k", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["encoding"], "json");
}

#[test]
fn set_with_ttl_metadata_and_content_type() {
    let s = Sandbox::new();
    s.ok(&[
        "set",
        "doc.readme",
        "hello",
        "--ttl",
        "1h",
        "--meta",
        "owner=ann",
        "--meta",
        "tags:=[\"a\",\"b\"]",
        "--content-type",
        "text/plain",
    ]);
    let meta = s.json(&["meta", "get", "doc.readme"], 0);
    assert_eq!(meta["user"], json!({ "owner": "ann", "tags": ["a", "b"] }));
    assert_eq!(meta["system"]["content_type"], "text/plain");
    assert!(meta["system"]["expires_at"].is_i64());
    let ttl = s.json(&["ttl", "doc.readme"], 0);
    let secs = ttl["seconds"].as_f64().unwrap();
    assert!(secs > 3500.0 && secs <= 3600.0, "{secs}");
    // A plain set clears the TTL and keeps the metadata; --keep-ttl keeps it.
    s.ok(&["set", "doc.readme", "v2", "--ttl", "10m"]);
    s.ok(&["set", "doc.readme", "v3", "--keep-ttl"]);
    assert_eq!(s.json(&["ttl", "doc.readme"], 0)["ttl"], "expires");
    s.ok(&["set", "doc.readme", "v4"]);
    s.run(&["ttl", "doc.readme"])
        .success()
        .stdout("persistent\n");
    assert_eq!(
        s.json(&["meta", "get", "doc.readme"], 0)["user"]["owner"],
        "ann"
    );
}

#[test]
fn set_file_stores_bytes_and_get_returns_them_raw() {
    let s = Sandbox::new();
    let bytes: Vec<u8> = (0..=255u8).collect();
    std::fs::write(s.path("blob.bin"), &bytes).unwrap();
    s.ok(&[
        "set",
        "img.logo",
        "--file",
        &s.p("blob.bin"),
        "--content-type",
        "image/png",
    ]);
    // stdout is a pipe here: the bytes come out as they are.
    let out = s
        .run(&["get", "img.logo"])
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(out, bytes);
    s.ok(&["get", "img.logo", "--output", &s.p("copy.bin")]);
    assert_eq!(std::fs::read(s.path("copy.bin")).unwrap(), bytes);
    let meta = s.json(&["meta", "get", "img.logo"], 0);
    assert_eq!(meta["system"]["value_type"], "image");
    assert_eq!(meta["system"]["content_type"], "image/png");
    assert_eq!(meta["system"]["size"], 256);
    // A file read as text, and stdin.
    std::fs::write(s.path("v.json"), r#"{"x": 1}"#).unwrap();
    s.ok(&["set", "cfg", "--file", &s.p("v.json"), "--json"]);
    assert_eq!(s.json(&["get", "cfg"], 0)["value"], json!({"x": 1}));
    s.kv()
        .args(["set", "from.stdin", "--file", "-", "--type", "string"])
        .write_stdin("piped text")
        .assert()
        .success();
    s.run(&["get", "from.stdin"])
        .success()
        .stdout("piped text\n");
}

#[test]
fn set_nx_and_if_version_exit_1_when_the_condition_is_false() {
    let s = Sandbox::new();
    s.run(&["set", "lock", "a", "--nx"]).success();
    s.run(&["set", "lock", "b", "--nx"])
        .code(1)
        .stderr(one_line_error(&["already exists"]));
    assert_eq!(
        s.json(&["set", "lock", "b", "--nx"], 1),
        json!({ "key": "lock", "written": false })
    );
    s.run(&["set", "lock", "c", "--if-version", "7"]).code(1);
    s.run(&["set", "lock", "c", "--if-version", "1"]).success();
    s.run(&["get", "lock"]).success().stdout("c\n");
}

#[test]
fn del_and_exists_exit_1_for_missing_keys() {
    let s = Sandbox::new();
    s.ok(&["set", "a.b", "1"]);
    s.run(&["exists", "a.b"]).success().stdout("true\n");
    assert_eq!(
        s.json(&["exists", "a.b"], 0),
        json!({ "key": "a.b", "exists": true })
    );
    s.run(&["del", "a.b"]).success();
    s.run(&["exists", "a.b"]).code(1).stdout("false\n");
    s.run(&["del", "a.b"])
        .code(1)
        .stderr(one_line_error(&["not found", "a.b"]));
}

#[test]
fn invalid_keys_exit_2_with_one_line_naming_the_key() {
    let s = Sandbox::new();
    for cmd in [
        vec!["get", "a..b"],
        vec!["set", "a..b", "v"],
        vec!["del", "a..b"],
        vec!["exists", "a..b"],
        vec!["ttl", "a..b"],
        vec!["incr", "a..b"],
        vec!["meta", "get", "a..b"],
    ] {
        s.run(&cmd).code(2).stdout("").stderr(one_line_error(&[
            "invalid key",
            "a..b",
            "empty segment",
        ]));
    }
    s.run(&["set", ".lead", "v"]).code(2);
    s.run(&["set", "has space", "v"])
        .code(2)
        .stderr(one_line_error(&["whitespace"]));
    let doc = s.json(&["get", "a..b"], 2);
    assert_eq!(doc["error"]["kind"], "invalid_key");
    assert_eq!(doc["error"]["exit_code"], 2);
}

#[test]
fn bad_values_and_options_exit_2_naming_the_argument() {
    let s = Sandbox::new();
    let cases: [(&[&str], &str); 8] = [
        (&["set", "k", "abc", "--int"], "not a 64-bit integer"),
        (&["set", "k", "x", "--float"], "not a number"),
        (&["set", "k", "maybe", "--bool"], "not a boolean"),
        (&["set", "k", "{", "--json"], "not valid JSON"),
        (&["set", "k", "v", "--ttl", "0"], "--ttl"),
        (&["set", "k", "v", "--ttl", "5 years"], "--ttl"),
        (&["set", "k", "v", "--meta", "novalue"], "--meta"),
        (&["set", "k", "v", "--value-type", "bogus"], "--value-type"),
    ];
    for (args, needle) in cases {
        s.run(args).code(2).stderr(one_line_error(&[needle]));
    }
    s.run(&["set", "k"])
        .code(2)
        .stderr(one_line_error(&["needs a VALUE"]));
    s.run(&["set", "k", "--file", "no-such-file"])
        .code(2)
        .stderr(one_line_error(&["no-such-file"]));
    s.run(&["get", "k"]).code(1);
}
