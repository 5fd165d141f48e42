//! `export` and `import` through the real binary, JSON Lines and CSV.
#![allow(clippy::unwrap_used)]

mod common;

use common::{one_line_error, Sandbox};
use predicates::prelude::*;

/// Every value type, metadata, a TTL, bytes with a content type, and a
/// second namespace.
fn seed(s: &Sandbox, store: &str) {
    let set = |args: &[&str]| {
        let mut all = vec!["--store", store, "set"];
        all.extend_from_slice(args);
        s.ok(&all);
    };
    set(&["app.name", "demo", "--meta", "owner=ann"]);
    set(&["app.port", "5432", "--int"]);
    set(&["app.ratio", "0.25", "--float"]);
    set(&["app.on", "false", "--bool"]);
    set(&["app.cfg", r#"{"a":{"b":[1,null]}}"#, "--json"]);
    set(&["app.nothing", "--type", "null"]);
    set(&["app.session", "tok", "--ttl", "1h"]);
    std::fs::write(s.path("logo.png"), [0x89u8, b'P', b'N', b'G', 0, 255]).unwrap();
    set(&[
        "app.logo",
        "--file",
        &s.p("logo.png"),
        "--content-type",
        "image/png",
    ]);
    s.ok(&["--store", store, "-n", "other", "set", "x.y", "in other"]);
}

#[test]
fn export_import_export_round_trip_is_byte_identical() {
    let s = Sandbox::new();
    let engine = s.engine("src");
    seed(&s, &engine);
    s.run(&[
        "--store",
        &engine,
        "export",
        "--all-namespaces",
        "-o",
        &s.p("a.jsonl"),
    ])
    .success()
    .stdout(predicate::str::starts_with("exported 9 records"))
    .stderr("");
    let sqlite = s.sqlite("dst.db");
    s.run(&["--store", &sqlite, "import", &s.p("a.jsonl")])
        .success()
        .stdout(predicate::str::starts_with("imported 9 records"))
        .stderr("");
    let again = s.ok(&["--store", &sqlite, "export", "--all-namespaces"]);
    let first = std::fs::read_to_string(s.path("a.jsonl")).unwrap();
    assert_eq!(first, again);
    assert_eq!(first.lines().count(), 9);
    // Types, metadata, content types and expiry came across.
    let logo = s
        .run(&["--store", &sqlite, "get", "app.logo"])
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(logo, [0x89u8, b'P', b'N', b'G', 0, 255]);
    assert_eq!(
        s.json(&["--store", &sqlite, "get", "app.port"], 0)["value"],
        5432
    );
    assert_eq!(
        s.json(&["--store", &sqlite, "get", "app.name"], 0)["metadata"]["owner"],
        "ann"
    );
    assert_eq!(
        s.json(&["--store", &sqlite, "ttl", "app.session"], 0)["ttl"],
        "expires"
    );
    s.run(&["--store", &sqlite, "-n", "other", "get", "x.y"])
        .success()
        .stdout("in other\n");
}

#[test]
fn export_filters_by_pattern_and_namespace_and_reports_in_json() {
    let s = Sandbox::new();
    let store = s.engine("data");
    seed(&s, &store);
    let out = s.ok(&["--store", &store, "export", "--pattern", "app.p*"]);
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("\"key\":\"app.port\""), "{out}");
    let out = s.ok(&["--store", &store, "export", "--namespaces", "other"]);
    assert!(out.contains("\"namespace\":\"other\""), "{out}");
    let doc = s.json(&["--store", &store, "export", "-o", &s.p("d.jsonl")], 0);
    assert_eq!(doc["records"], 8);
    assert_eq!(doc["format"], "jsonl");
}

#[test]
fn csv_export_and_import_by_extension() {
    let s = Sandbox::new();
    let store = s.engine("data");
    seed(&s, &store);
    s.ok(&[
        "--store",
        &store,
        "export",
        "-o",
        &s.p("d.csv"),
        "--pattern",
        "app.{name,port}",
    ]);
    assert_eq!(
        std::fs::read_to_string(s.path("d.csv")).unwrap(),
        "key,type,value\napp.name,string,demo\napp.port,int,5432\n"
    );
    let out = s.ok(&[
        "--store",
        &store,
        "export",
        "--format",
        "csv",
        "--pattern",
        "app.on",
    ]);
    assert_eq!(out, "key,type,value\napp.on,bool,false\n");
    let target = s.sqlite("csv.db");
    s.ok(&[
        "--store",
        &target,
        "-n",
        "imported",
        "import",
        &s.p("d.csv"),
    ]);
    s.run(&["--store", &target, "-n", "imported", "keys"])
        .success()
        .stdout("app.name\napp.port\n");
    assert_eq!(
        s.json(
            &["--store", &target, "-n", "imported", "get", "app.port"],
            0
        )["value"],
        5432
    );
    s.run(&[
        "--store",
        &store,
        "export",
        "--format",
        "csv",
        "--all-namespaces",
    ])
    .code(2)
    .stderr(one_line_error(&["CSV", "one namespace"]));
}

#[test]
fn a_malformed_jsonl_file_imports_nothing() {
    let s = Sandbox::new();
    let store = s.engine("data");
    seed(&s, &store);
    s.ok(&["--store", &store, "export", "-o", &s.p("good.jsonl")]);
    let mut text = std::fs::read_to_string(s.path("good.jsonl")).unwrap();
    text.push_str("{\"namespace\":\"default\",\"key\":\"late\"}\n");
    std::fs::write(s.path("bad.jsonl"), text).unwrap();
    let target = s.sqlite("t.db");
    s.run(&["--store", &target, "import", &s.p("bad.jsonl")])
        .code(2)
        .stdout("")
        .stderr(one_line_error(&[
            "malformed",
            "bad.jsonl",
            "line 9",
            "nothing was imported",
        ]));
    s.run(&["--store", &target, "count"])
        .success()
        .stdout("0\n");
    // Garbage on stdin too.
    s.kv()
        .args(["--store", &target, "import"])
        .write_stdin("not json\n")
        .assert()
        .code(2)
        .stderr(one_line_error(&["malformed", "stdin", "line 1"]));
    // A malformed CSV row.
    std::fs::write(s.path("bad.csv"), "key,type,value\na,int,1\nb,int,x\n").unwrap();
    s.run(&["--store", &target, "import", &s.p("bad.csv")])
        .code(2)
        .stderr(one_line_error(&["malformed", "CSV line 3"]));
    std::fs::write(s.path("hdr.csv"), "k,v\na,1\n").unwrap();
    s.run(&["--store", &target, "import", &s.p("hdr.csv")])
        .code(2)
        .stderr(one_line_error(&["key,type,value"]));
    s.run(&["--store", &target, "count"])
        .success()
        .stdout("0\n");
    s.run(&["--store", &target, "import", &s.p("missing.jsonl")])
        .code(2)
        .stderr(one_line_error(&["missing.jsonl"]));
}

#[test]
fn import_reads_stdin_with_dry_run_and_overwrite_policies() {
    let s = Sandbox::new();
    let store = s.engine("data");
    seed(&s, &store);
    let dump = s.ok(&["--store", &store, "export"]);
    let target = s.sqlite("t.db");
    let doc: serde_json::Value = serde_json::from_slice(
        &s.kv()
            .args(["--json", "--store", &target, "import", "--dry-run"])
            .write_stdin(dump.clone())
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(doc["records"], 8);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["input"], "stdin");
    s.run(&["--store", &target, "count"])
        .success()
        .stdout("0\n");

    s.kv()
        .args(["--store", &target, "import", "-"])
        .write_stdin(dump.clone())
        .assert()
        .success();
    s.ok(&["--store", &target, "set", "app.name", "changed"]);
    s.kv()
        .args(["--store", &target, "import", "--overwrite", "never"])
        .write_stdin(dump.clone())
        .assert()
        .success()
        .stdout(predicate::str::contains("skipped 8"));
    s.run(&["--store", &target, "get", "app.name"])
        .success()
        .stdout("changed\n");
    // The target's record is newer than the dump's: if-newer keeps it.
    s.kv()
        .args(["--store", &target, "import", "--overwrite", "if-newer"])
        .write_stdin(dump.clone())
        .assert()
        .success();
    s.run(&["--store", &target, "get", "app.name"])
        .success()
        .stdout("changed\n");
    s.kv()
        .args(["--store", &target, "import", "--overwrite", "always"])
        .write_stdin(dump)
        .assert()
        .success();
    s.run(&["--store", &target, "get", "app.name"])
        .success()
        .stdout("demo\n");
    s.run(&["--store", &target, "import", "--overwrite", "sometimes"])
        .code(2);
}

#[test]
fn records_the_store_refuses_are_counted_and_exit_2() {
    let s = Sandbox::new();
    std::fs::write(
        s.path("r.csv"),
        "key,type,value\nok,int,1\nbad..key,int,2\n",
    )
    .unwrap();
    let store = s.sqlite("t.db");
    s.run(&["--store", &store, "import", &s.p("r.csv")])
        .code(2)
        .stdout(
            predicate::str::contains("imported 1 records")
                .and(predicate::str::contains("failed 1")),
        )
        .stderr(one_line_error(&["1 records were refused", "bad..key"]));
    let doc = s.json(&["--store", &store, "import", &s.p("r.csv")], 2);
    assert_eq!(doc["failed"], 1);
    assert_eq!(doc["failures"].as_array().unwrap().len(), 1);
    s.run(&["--store", &store, "get", "ok"])
        .success()
        .stdout("1\n");
}

#[test]
fn a_failed_export_leaves_no_file() {
    let s = Sandbox::new();
    let store = s.engine("data");
    seed(&s, &store);
    s.run(&[
        "--store",
        &store,
        "export",
        "-o",
        &s.p("x.jsonl"),
        "--pattern",
        "[oops",
    ])
    .code(2);
    assert!(!s.path("x.jsonl").exists());
    s.run(&[
        "--store",
        &store,
        "export",
        "-o",
        &s.p("no/such/dir/x.jsonl"),
    ])
    .code(2)
    .stderr(one_line_error(&["cannot write"]));
}
