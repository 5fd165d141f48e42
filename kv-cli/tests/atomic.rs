//! `incr`, `append`, `cas` through the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{one_line_error, Sandbox};
use serde_json::json;

#[test]
fn incr_starts_at_zero_and_takes_negative_deltas() {
    let s = Sandbox::new();
    s.run(&["incr", "hits"]).success().stdout("1\n");
    s.run(&["incr", "hits", "10"]).success().stdout("11\n");
    s.run(&["incr", "hits", "-20"]).success().stdout("-9\n");
    assert_eq!(
        s.json(&["incr", "hits", "-1"], 0),
        json!({ "key": "hits", "value": -10 })
    );
    s.run(&["get", "hits"]).success().stdout("-10\n");
}

#[test]
fn incr_on_text_or_past_i64_exits_2() {
    let s = Sandbox::new();
    s.ok(&["set", "name", "ann"]);
    s.run(&["incr", "name"])
        .code(2)
        .stderr(one_line_error(&["type mismatch", "name"]));
    s.ok(&["set", "big", "9223372036854775807", "--int"]);
    s.run(&["incr", "big"])
        .code(2)
        .stderr(one_line_error(&["overflow", "big"]));
    s.run(&["incr", "n", "1.5"]).code(2);
}

#[test]
fn append_adds_text_or_file_bytes_and_prints_the_length() {
    let s = Sandbox::new();
    s.run(&["append", "log", "hello"]).success().stdout("5\n");
    s.run(&["append", "log", " world"]).success().stdout("11\n");
    s.run(&["get", "log"]).success().stdout("hello world\n");
    std::fs::write(s.path("tail.bin"), [1u8, 2, 3]).unwrap();
    s.ok(&["set", "bin", "--file", &s.p("tail.bin")]);
    assert_eq!(
        s.json(&["append", "bin", "--file", &s.p("tail.bin")], 0),
        json!({ "key": "bin", "length": 6 })
    );
    s.ok(&["set", "num", "1", "--int"]);
    s.run(&["append", "num", "x"])
        .code(2)
        .stderr(one_line_error(&["type mismatch"]));
}

#[test]
fn cas_swaps_only_when_the_value_matches() {
    let s = Sandbox::new();
    s.ok(&["set", "state", "idle"]);
    s.run(&["cas", "state", "busy", "done"])
        .code(1)
        .stdout("not swapped\n");
    s.run(&["cas", "state", "idle", "busy"])
        .success()
        .stdout("swapped\n");
    s.run(&["get", "state"]).success().stdout("busy\n");
    // Values are read as the type of the current value...
    s.ok(&["set", "n", "5", "--int"]);
    s.run(&["cas", "n", "5", "6"]).success();
    assert_eq!(s.json(&["get", "n"], 0)["value"], 6);
    s.run(&["cas", "n", "-1", "0"]).code(1);
    s.run(&["cas", "n", "six", "7"])
        .code(2)
        .stderr(one_line_error(&["EXPECTED", "six", "--type"]));
    // ...unless --type says otherwise.
    s.run(&["cas", "n", "6", "seven", "--type", "string"])
        .code(1);
    // --absent: only when the key does not exist.
    assert_eq!(
        s.json(&["cas", "fresh", "--absent", "v"], 0),
        json!({ "key": "fresh", "swapped": true })
    );
    s.run(&["cas", "fresh", "--absent", "w"]).code(1);
    s.run(&["cas", "fresh", "only-one"]).code(2);
    s.run(&["cas", "fresh", "--absent", "a", "b"]).code(2);
}
