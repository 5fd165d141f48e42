//! One function per command, grouped by concern. Each prints its own
//! answer through the [`Printer`] and returns the exit code of a normal
//! outcome: 0, or 1 when the key was not found or a condition was false.
//! Failures are [`CliError`]s.

mod admin;
mod atomic;
mod basic;
mod meta;
mod migrate;
mod patterns;
mod transfer;
mod ttl;

use dataknobs_kv::KVStore;

use crate::cli::{Command, Global, MetaCommand};
use crate::error::CliError;
use crate::output::Printer;

/// Runs `command` on `store`.
pub async fn run(
    command: Command,
    store: &dyn KVStore,
    global: &Global,
    p: Printer,
) -> Result<u8, CliError> {
    match command {
        Command::Get(a) => basic::get(store, a, p).await,
        Command::Set(a) => basic::set(store, a, p).await,
        Command::Del(a) => basic::del(store, a, p).await,
        Command::Exists(a) => basic::exists(store, a, p).await,
        Command::Keys(a) => patterns::keys(store, a, p).await,
        Command::Scan(a) => patterns::scan(store, a, p).await,
        Command::Count(a) => patterns::count(store, a, p).await,
        Command::Ttl(a) => ttl::ttl(store, a, p).await,
        Command::Expire(a) => ttl::expire(store, a, p).await,
        Command::Persist(a) => ttl::persist(store, a, p).await,
        Command::Cleanup(_) => ttl::cleanup(store, p).await,
        Command::Incr(a) => atomic::incr(store, a, p).await,
        Command::Append(a) => atomic::append(store, a, p).await,
        Command::Cas(a) => atomic::cas(store, a, p).await,
        Command::Meta(MetaCommand::Get(a)) => meta::get(store, a, p).await,
        Command::Meta(MetaCommand::Set(a)) => meta::write(store, a, false, p).await,
        Command::Meta(MetaCommand::Update(a)) => meta::write(store, a, true, p).await,
        Command::Export(a) => transfer::export(store, a, p).await,
        Command::Import(a) => transfer::import(store, a, p).await,
        Command::Migrate(a) => migrate::migrate(store, global, a, p).await,
        Command::Compact(_) => admin::compact(store, p).await,
        Command::Stats(_) => admin::stats(store, p).await,
        Command::Namespaces(_) => admin::namespaces(store, p).await,
    }
}

/// The answer when a command's key does not exist: a note on stderr,
/// `{"key": …, "found": false}` in JSON mode, exit 1.
fn not_found(store: &dyn KVStore, key: &str, p: Printer) -> Result<u8, CliError> {
    crate::output::note(&format!(
        "not found: {key:?} in namespace {:?}",
        store.current_namespace()
    ));
    if p.json {
        p.doc(&serde_json::json!({ "key": key, "found": false }))?;
    }
    Ok(crate::error::NEGATIVE)
}
