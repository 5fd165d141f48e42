//! The configuration files shipped with the project load: `kv.example.toml`
//! (every field at its documented default, and every commented-out field a
//! known one) and each of `examples/configs/*.toml`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use dataknobs_kv::{BackendKind, StoreConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn example_config_holds_the_defaults() {
    let config = StoreConfig::from_file(root().join("kv.example.toml")).unwrap();
    let mut want = StoreConfig::default();
    want.store.backend = Some(BackendKind::Engine);
    assert_eq!(config, want, "kv.example.toml must show the defaults");
}

/// Uncommenting every `# field = value` line and the `# [cache]` header
/// still gives a valid file: the example names no unknown field.
#[test]
fn every_commented_field_of_the_example_is_known() {
    let text = std::fs::read_to_string(root().join("kv.example.toml")).unwrap();
    fn field(line: &str) -> Option<&str> {
        let rest = line.strip_prefix("# ")?;
        let (name, _) = rest.split_once(" = ")?;
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c == '_')
            .then_some(rest)
    }
    let mut uncommented = 0;
    let text: String = text
        .lines()
        .map(|line| {
            if line == "# [cache]" {
                uncommented += 1;
                "[cache]".to_owned()
            } else if let Some(rest) = field(line) {
                uncommented += 1;
                rest.to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(uncommented > 20, "only {uncommented} lines uncommented");
    let config = StoreConfig::from_toml_str(&text, "kv.example.toml (uncommented)").unwrap();
    assert!(config.cache.is_some());
    assert_eq!(config.s3.bucket, "my-bucket");
}

#[test]
fn example_configs_load() {
    let dir = root().join("examples/configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config =
                StoreConfig::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            config.backend().unwrap();
            n += 1;
        }
    }
    assert!(n >= 6, "{n} configs in {}", dir.display());
}
