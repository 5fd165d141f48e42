//! Global behaviour of the real binary: help, usage errors, store
//! selection (URL, config file, environment), unreachable servers, and
//! machine-readable errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{one_line_error, Sandbox};
use predicates::prelude::*;

const COMMANDS: [&str; 20] = [
    "get",
    "set",
    "del",
    "exists",
    "keys",
    "scan",
    "ttl",
    "expire",
    "persist",
    "incr",
    "append",
    "cas",
    "meta",
    "count",
    "cleanup",
    "export",
    "import",
    "migrate",
    "stats",
    "namespaces",
];

#[test]
fn help_lists_every_command_with_a_description() {
    let s = Sandbox::new();
    let out = s.ok(&["--help"]);
    for cmd in COMMANDS {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("{cmd} missing from --help:\n{out}"));
        assert!(line.trim_start().len() > cmd.len() + 10, "{line}");
    }
    for cmd in COMMANDS {
        s.run(&[cmd, "--help"]).success();
    }
    s.run(&["meta", "set", "--help"]).success();
    s.run(&["--version"])
        .success()
        .stdout(predicate::str::starts_with("kv "));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let s = Sandbox::new();
    let cases: [(&[&str], &str); 7] = [
        (&["frobnicate"], "frobnicate"),
        (&["get"], "<KEY>"),
        (&["get", "k", "--bogus"], "--bogus"),
        (
            &["--store", "memory:", "--config", "kv.toml", "get", "k"],
            "cannot be used with",
        ),
        (
            &["get", "k", "--store", "memory:", "--config", "kv.toml"],
            "cannot be used with",
        ),
        (&["incr", "k", "abc"], "abc"),
        (&["import", "--format", "xml"], "xml"),
    ];
    for (args, needle) in cases {
        s.run(args)
            .code(2)
            .stdout("")
            .stderr(one_line_error(&[needle]));
    }
    s.run(&[]).code(2);
}

#[test]
fn store_urls_select_the_backend() {
    let s = Sandbox::new();
    // memory: lives as long as one invocation.
    s.run(&["--store", "memory:", "incr", "n"])
        .success()
        .stdout("1\n");
    s.run(&["--store", "memory:", "get", "n"]).code(1);
    let db = s.sqlite("kv.db");
    s.ok(&["--store", &db, "set", "k", "in sqlite"]);
    s.run(&["-s", &db, "get", "k"])
        .success()
        .stdout("in sqlite\n");
    assert!(s.path("kv.db").is_file());
    s.run(&["get", "k"]).code(1);
    s.run(&["--store", "redis://localhost", "get", "k"])
        .code(2)
        .stderr(one_line_error(&["redis"]));
    s.run(&["--store", "nonsense", "get", "k"]).code(2);
}

#[test]
fn config_files_select_store_and_namespace() {
    let s = Sandbox::new();
    let db = s.p("cfg.db");
    std::fs::write(
        s.path("kv.toml"),
        format!("[store]\nbackend = \"sqlite\"\nnamespace = \"ops\"\n\n[sqlite]\npath = {db:?}\n"),
    )
    .unwrap();
    s.ok(&["--config", &s.p("kv.toml"), "set", "k", "v"]);
    s.run(&["--store", &format!("sqlite:{db}"), "-n", "ops", "get", "k"])
        .success()
        .stdout("v\n");
    std::fs::write(
        s.path("kv.json"),
        format!(r#"{{"store": {{"url": "sqlite:{db}"}}}}"#),
    )
    .unwrap();
    s.run(&["-c", &s.p("kv.json"), "-n", "ops", "get", "k"])
        .success()
        .stdout("v\n");
}

#[test]
fn malformed_config_files_exit_2_naming_file_and_field() {
    let s = Sandbox::new();
    let cases = [
        ("unknown.toml", "[store]\nbackedn = \"memory\"\n", "backedn"),
        ("syntax.toml", "[store\n", "syntax.toml"),
        ("value.toml", "[store]\nbackend = \"redis\"\n", "redis"),
        ("limit.toml", "[store]\nmax_key_len = 0\n", "max_key_len"),
        ("bad.json", "{\"store\": [}", "bad.json"),
        ("kv.yaml", "store: {}\n", ".yaml"),
    ];
    for (name, text, needle) in cases {
        std::fs::write(s.path(name), text).unwrap();
        s.run(&["--config", &s.p(name), "get", "k"])
            .code(2)
            .stdout("")
            .stderr(one_line_error(&[needle]));
    }
    s.run(&["--config", &s.p("absent.toml"), "get", "k"])
        .code(2)
        .stderr(one_line_error(&["absent.toml"]));
}

#[test]
fn environment_overrides_apply_and_flags_win() {
    let s = Sandbox::new();
    let db = s.sqlite("env.db");
    s.kv()
        .args(["set", "k", "from env"])
        .env("KV_STORE_URL", &db)
        .env("KV_NAMESPACE", "envns")
        .assert()
        .success();
    s.run(&["--store", &db, "-n", "envns", "get", "k"])
        .success()
        .stdout("from env\n");
    // --store and --namespace win over the environment.
    s.kv()
        .args(["--store", "memory:", "-n", "default", "get", "k"])
        .env("KV_STORE_URL", &db)
        .env("KV_NAMESPACE", "envns")
        .assert()
        .code(1);
    s.kv()
        .args(["get", "k"])
        .env("KV_MAX_KEY_LEN", "lots")
        .assert()
        .code(2)
        .stderr(one_line_error(&["KV_MAX_KEY_LEN"]));
}

#[test]
fn an_unreachable_server_is_exit_3_quickly_and_the_password_stays_hidden() {
    let s = Sandbox::new();
    let url = "postgres://kv:hunter2secret@127.0.0.1:1/db";
    let started = Instant::now();
    s.run(&["--store", url, "--connect-timeout", "1", "get", "k"])
        .code(3)
        .stdout("")
        .stderr(one_line_error(&[
            "cannot open store",
            "postgres://kv:***@127.0.0.1:1/db",
        ]))
        .stderr(predicate::str::contains("hunter2secret").not());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // The same through a config file with its own connect timeout.
    std::fs::write(
        s.path("pg.toml"),
        format!(
            "[store]\nbackend = \"postgres\"\n\n[postgres]\nurl = {url:?}\nconnect_timeout = 1\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let doc = s.json(&["--config", &s.p("pg.toml"), "keys"], 3);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(doc["error"]["exit_code"], 3);
    assert_eq!(doc["error"]["kind"], "backend");
    assert!(!doc.to_string().contains("hunter2secret"), "{doc}");

    // A migration target that cannot be reached.
    s.run(&[
        "--store",
        "memory:",
        "--connect-timeout",
        "1",
        "migrate",
        "--to",
        url,
    ])
    .code(3)
    .stderr(one_line_error(&["cannot open store"]))
    .stderr(predicate::str::contains("hunter2secret").not());
}

#[test]
fn json_mode_reports_errors_as_one_document() {
    let s = Sandbox::new();
    let doc = s.json(&["keys", "[x"], 2);
    assert_eq!(doc["error"]["kind"], "invalid_pattern");
    assert!(doc["error"]["message"].as_str().unwrap().contains("[x"));
    let doc = s.json(&["set", "k", "v", "--ttl", "never"], 2);
    assert_eq!(doc["error"]["kind"], "usage");
}

#[test]
fn closing_stdout_early_is_not_an_error() {
    let s = Sandbox::new();
    for i in 0..50 {
        s.ok(&["--store", &s.sqlite("p.db"), "set", &format!("k.{i}"), "v"]);
    }
    // `kv keys | head -1`: a reader that goes away is fine.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("kv"))
        .args(["--store", &s.sqlite("p.db"), "export"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}
