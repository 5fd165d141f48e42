//! Shared helpers of the CLI tests: a temporary folder per test and a `kv`
//! command that runs in it with none of the `KV_*` environment overrides,
//! so its default store is the engine in the folder's `./kv-data`.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::assert::Assert;
use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

/// Environment variables that would change which store `kv` opens.
pub const KV_ENV: [&str; 9] = [
    "KV_STORE_URL",
    "KV_BACKEND",
    "KV_NAMESPACE",
    "KV_CASE_INSENSITIVE",
    "KV_MAX_KEY_LEN",
    "KV_MAX_VALUE_SIZE",
    "KV_AUTO_CLEANUP",
    "KV_CLEANUP_INTERVAL",
    "KV_TRACK_ACCESS",
];

/// A temporary working folder for one test.
pub struct Sandbox {
    /// The folder; removed on drop.
    pub dir: TempDir,
}

impl Sandbox {
    /// A new, empty folder.
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `kv`, run in the folder with a clean `KV_*` environment.
    pub fn kv(&self) -> Command {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("kv");
        cmd.current_dir(self.dir.path());
        for var in KV_ENV {
            cmd.env_remove(var);
        }
        cmd.timeout(Duration::from_secs(30));
        cmd
    }

    /// Runs `kv ARGS`.
    pub fn run(&self, args: &[&str]) -> Assert {
        self.kv().args(args).assert()
    }

    /// Runs `kv ARGS`, expects exit 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).success().get_output().stdout.clone();
        String::from_utf8(out).unwrap()
    }

    /// Runs `kv --json ARGS`, expects `code`, returns the parsed stdout.
    pub fn json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let out = self
            .kv()
            .arg("--json")
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("stdout of kv --json {args:?} is not JSON ({e}): {out:?}"))
    }

    /// A path inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A path inside the folder, as a string.
    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `sqlite:` URL of a database file in the folder.
    pub fn sqlite(&self, name: &str) -> String {
        format!("sqlite:{}", self.p(name))
    }

    /// `engine:` URL of a data folder in the folder.
    pub fn engine(&self, name: &str) -> String {
        format!("engine:{}", self.p(name))
    }
}

/// stderr is exactly one line holding every one of `parts`.
pub fn one_line_error(parts: &[&str]) -> impl Predicate<str> {
    let parts: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
    predicate::function(move |s: &str| {
        s.lines().count() == 1 && s.ends_with('\n') && parts.iter().all(|p| s.contains(p.as_str()))
    })
}
