//! `migrate` through the real binary: engine, SQLite and memory stores.
#![allow(clippy::unwrap_used)]

mod common;

use common::{one_line_error, Sandbox};
use predicates::prelude::*;

fn seed(s: &Sandbox, store: &str) {
    for (ns, key) in [
        ("default", "a.1"),
        ("default", "a.2"),
        ("default", "b.1"),
        ("tenant", "t.1"),
    ] {
        s.ok(&["--store", store, "-n", ns, "set", key, "v", "--meta", "m=1"]);
    }
}

#[test]
fn migrate_copies_every_namespace_and_prints_the_report() {
    let s = Sandbox::new();
    let src = s.engine("src");
    seed(&s, &src);
    let dst = s.sqlite("dst.db");
    s.run(&["--store", &src, "migrate", "--to", &dst, "--all-namespaces"])
        .success()
        .stdout(predicate::str::starts_with("copied 4 records"))
        .stderr("");
    s.run(&["--store", &dst, "namespaces"])
        .success()
        .stdout("default\ntenant\n");
    assert_eq!(
        s.json(&["--store", &dst, "get", "a.1"], 0)["metadata"]["m"],
        "1"
    );
    // Again, keeping what is there: everything is skipped.
    let doc = s.json(
        &[
            "--store",
            &src,
            "migrate",
            "--to",
            &dst,
            "--all-namespaces",
            "--overwrite",
            "never",
        ],
        0,
    );
    assert_eq!(doc["copied"], 0);
    assert_eq!(doc["skipped"], 4);
    assert_eq!(doc["completed"], true);
    assert_eq!(doc["error"], serde_json::Value::Null);
}

#[test]
fn migrate_by_pattern_namespace_list_batch_and_dry_run() {
    let s = Sandbox::new();
    let src = s.engine("src");
    seed(&s, &src);
    let dst = s.sqlite("dst.db");
    let doc = s.json(
        &[
            "--store",
            &src,
            "migrate",
            "--to",
            &dst,
            "--pattern",
            "a.*",
            "--batch-size",
            "1",
            "--dry-run",
        ],
        0,
    );
    assert_eq!(doc["copied"], 2);
    assert_eq!(doc["dry_run"], true);
    s.run(&["--store", &dst, "count"]).success().stdout("0\n");
    s.ok(&[
        "--store",
        &src,
        "migrate",
        "--to",
        &dst,
        "--namespaces",
        "tenant",
    ]);
    s.run(&["--store", &dst, "namespaces"])
        .success()
        .stdout("tenant\n");
}

#[test]
fn migrate_resumes_after_a_key() {
    let s = Sandbox::new();
    let src = s.engine("src");
    seed(&s, &src);
    let dst = s.sqlite("dst.db");
    let doc = s.json(
        &[
            "--store",
            &src,
            "migrate",
            "--to",
            &dst,
            "--resume-after",
            "a.1",
        ],
        0,
    );
    assert_eq!(doc["copied"], 2);
    assert_eq!(doc["last"]["key"], "b.1");
    s.run(&["--store", &dst, "keys"])
        .success()
        .stdout("a.2\nb.1\n");
    s.ok(&[
        "--store",
        &src,
        "migrate",
        "--to",
        &dst,
        "--all-namespaces",
        "--resume-namespace",
        "tenant",
        "--resume-after",
        "t.0",
    ]);
    s.run(&["--store", &dst, "-n", "tenant", "keys"])
        .success()
        .stdout("t.1\n");
}

#[test]
fn migrate_to_a_config_file_ignores_the_environment() {
    let s = Sandbox::new();
    let src = s.engine("src");
    seed(&s, &src);
    let db = s.p("cfg.db");
    std::fs::write(
        s.path("target.toml"),
        format!("[store]\nbackend = \"sqlite\"\n\n[sqlite]\npath = {db:?}\n"),
    )
    .unwrap();
    s.kv()
        .args([
            "--store",
            &src,
            "migrate",
            "--to-config",
            &s.p("target.toml"),
        ])
        .env("KV_STORE_URL", "memory:")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("copied 3 records"));
    s.run(&["--store", &format!("sqlite:{db}"), "count"])
        .success()
        .stdout("3\n");
}

#[test]
fn migrate_refuses_bad_input_before_opening_the_target() {
    let s = Sandbox::new();
    let src = s.engine("src");
    seed(&s, &src);
    s.run(&["--store", &src, "migrate"]).code(2);
    s.run(&[
        "--store",
        &src,
        "migrate",
        "--to",
        "memory:",
        "--to-config",
        "x.toml",
    ])
    .code(2);
    s.run(&[
        "--store",
        &src,
        "migrate",
        "--to",
        &s.sqlite("x.db"),
        "--pattern",
        "a.{",
    ])
    .code(2)
    .stderr(one_line_error(&["invalid pattern"]));
    assert!(!s.path("x.db").exists());
    s.run(&["--store", &src, "migrate", "--to", "bogus:x"])
        .code(2)
        .stderr(one_line_error(&["bogus"]));
    s.run(&["--store", &src, "migrate", "--to-config", &s.p("none.toml")])
        .code(2)
        .stderr(one_line_error(&["none.toml"]));
    s.run(&[
        "--store",
        &src,
        "migrate",
        "--to",
        "memory:",
        "--batch-size",
        "0",
    ])
    .code(2);
    s.run(&[
        "--store",
        &src,
        "migrate",
        "--to",
        "memory:",
        "--namespaces",
        "a.b",
    ])
    .code(2)
    .stderr(one_line_error(&["invalid namespace"]));
}

#[test]
fn migrate_into_the_locked_source_folder_is_exit_3() {
    let s = Sandbox::new();
    let src = s.engine("src");
    seed(&s, &src);
    s.run(&["--store", &src, "migrate", "--to", &src])
        .code(3)
        .stderr(one_line_error(&["cannot open store", "locked"]));
}
