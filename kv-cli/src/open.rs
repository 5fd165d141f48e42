//! Choosing and opening the store from the global options.
//!
//! Precedence, highest first: `--store` / `--namespace` /
//! `--connect-timeout` on the command line, then the environment
//! (`KV_STORE_URL`, `KV_BACKEND`, `KV_NAMESPACE`, …), then the `--config`
//! file, then the defaults (the engine in `./kv-data`, namespace
//! `default`).

use std::path::Path;
use std::sync::Arc;

use dataknobs_kv::config::redact_url;
use dataknobs_kv::{BackendKind, KVStore, KeyRules, StoreConfig};

use crate::cli::Global;
use crate::error::CliError;
use crate::secrets;

/// The config the global options describe.
pub fn source_config(global: &Global) -> Result<StoreConfig, CliError> {
    let mut config = match (&global.store, &global.config) {
        (Some(url), _) => {
            secrets::register_url(url);
            let mut c = StoreConfig::default();
            c.apply_env()?;
            secrets::register_config(&c);
            c.apply_url(url)?;
            c
        }
        (None, Some(path)) => {
            must_exist(path)?;
            StoreConfig::from_file(path)?
        }
        (None, None) => {
            let mut c = StoreConfig::default();
            c.apply_env()?;
            c
        }
    };
    if let Some(ns) = &global.namespace {
        KeyRules::default().normalize_namespace(ns)?;
        config.store.namespace.clone_from(ns);
    }
    if let Some(secs) = global.connect_timeout {
        config.postgres.connect_timeout = secs;
    }
    secrets::register_config(&config);
    Ok(config)
}

/// The config of a migration target: a URL, or a file read as it is
/// (environment overrides would point the target at the source).
pub fn target_config(
    global: &Global,
    url: Option<&str>,
    file: Option<&Path>,
) -> Result<StoreConfig, CliError> {
    let mut config = match (url, file) {
        (Some(url), _) => {
            secrets::register_url(url);
            StoreConfig::from_url(url)?
        }
        (None, Some(path)) => {
            must_exist(path)?;
            StoreConfig::read_file(path)?
        }
        (None, None) => {
            return Err(CliError::usage(
                "migrate needs --to URL or --to-config FILE",
            ))
        }
    };
    if let Some(secs) = global.connect_timeout {
        config.postgres.connect_timeout = secs;
    }
    secrets::register_config(&config);
    Ok(config)
}

/// Opens the store `config` describes; a failure names the store (its
/// URL with any password hidden).
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn KVStore>, CliError> {
    dataknobs_kv::open(config).await.map_err(|e| {
        let mut e = CliError::from(e);
        if !e.is_quiet() {
            e.message = format!("cannot open store {}: {}", describe(config), e.message);
        }
        e
    })
}

/// The store a config selects, as a URL without secrets.
pub fn describe(config: &StoreConfig) -> String {
    let Ok(c) = config.resolved() else {
        return "(invalid config)".to_owned();
    };
    match c.store.backend.unwrap_or(BackendKind::Engine) {
        BackendKind::Memory => "memory:".to_owned(),
        BackendKind::Engine => format!("engine:{}", c.engine.path.display()),
        BackendKind::Sqlite => format!("sqlite:{}", c.sqlite.path.display()),
        BackendKind::Postgres => match &c.postgres.url {
            Some(url) => redact_url(url.expose()),
            None => format!(
                "postgres://{}@{}:{}/{}",
                c.postgres.user, c.postgres.host, c.postgres.port, c.postgres.database
            ),
        },
        BackendKind::S3 => format!("s3://{}/{}", c.s3.bucket, c.s3.prefix),
    }
}

fn must_exist(path: &Path) -> Result<(), CliError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(CliError::usage(format!(
            "config file {} is not a file",
            path.display()
        ))),
        Err(e) => Err(CliError::input_file(path, &e)),
    }
}
