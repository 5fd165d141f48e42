//! `keys`, `scan`, `count`: many keys by glob pattern.

use dataknobs_kv::KVStore;
use serde_json::json;

use crate::cli::{CountArgs, KeysArgs, ScanArgs};
use crate::error::{CliError, OK};
use crate::output::{entry_json, note, shell_quote, value_inline, Printer};

/// `keys [PATTERN]`: matching keys, sorted by bytes, one per line.
pub async fn keys(store: &dyn KVStore, a: KeysArgs, p: Printer) -> Result<u8, CliError> {
    let keys = store.keys(&a.pattern).await?;
    if p.json {
        p.doc(&json!({ "pattern": a.pattern, "count": keys.len(), "keys": keys }))?;
    } else {
        p.lines(&keys)?;
    }
    Ok(OK)
}

/// `scan [PATTERN] [--cursor KEY] [--limit N]`: one page of entries,
/// `key = value` per line; the cursor of the next page goes to stderr.
pub async fn scan(store: &dyn KVStore, a: ScanArgs, p: Printer) -> Result<u8, CliError> {
    let limit = usize::try_from(a.limit).unwrap_or(usize::MAX);
    let page = store.scan(&a.pattern, a.cursor.as_deref(), limit).await?;
    if p.json {
        let entries: Vec<_> = page.entries.iter().map(entry_json).collect();
        p.doc(&json!({ "pattern": a.pattern, "entries": entries, "cursor": page.cursor }))?;
        return Ok(OK);
    }
    p.lines(page.entries.iter().map(|e| {
        let value = value_inline(&e.value, e.metadata.system.content_type.as_deref());
        format!("{} = {value}", e.key)
    }))?;
    if let Some(cursor) = &page.cursor {
        note(&format!("more: --cursor {}", shell_quote(cursor)));
    }
    Ok(OK)
}

/// `count [PATTERN]`: live keys of the namespace, or those matching.
pub async fn count(store: &dyn KVStore, a: CountArgs, p: Printer) -> Result<u8, CliError> {
    let n = match &a.pattern {
        Some(pattern) => store.count_pattern(pattern).await?,
        None => store.count().await?,
    };
    p.answer(
        json!({ "pattern": a.pattern, "count": n }),
        Some(&n.to_string()),
    )?;
    Ok(OK)
}
