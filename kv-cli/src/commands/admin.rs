//! `stats`, `namespaces`, `compact`: the store as a whole.

use dataknobs_kv::{BackendStats, KVStore};
use serde_json::{json, Value as J};

use crate::error::{CliError, OK};
use crate::output::Printer;

/// `compact`: reclaims the space of old record versions (every namespace).
pub async fn compact(store: &dyn KVStore, p: Printer) -> Result<u8, CliError> {
    let started = std::time::Instant::now();
    store.compact().await?;
    let ms = started.elapsed().as_millis();
    p.answer(
        json!({ "compacted": true, "elapsed_ms": ms }),
        Some(&format!("compacted in {ms} ms")),
    )?;
    Ok(OK)
}

/// `stats`: the handle's counters, then the backend's figures (and those
/// of the backends beneath a layer, indented).
pub async fn stats(store: &dyn KVStore, p: Printer) -> Result<u8, CliError> {
    let s = store.stats().await?;
    if p.json {
        p.doc(&json!({
            "namespace": s.namespace,
            "reads": s.reads,
            "hits": s.hits,
            "misses": s.misses,
            "writes": s.writes,
            "deletes": s.deletes,
            "conflicts": s.conflicts,
            "expired_removed": s.expired_removed,
            "backend": backend_json(&s.backend),
        }))?;
        return Ok(OK);
    }
    let mut lines = vec![
        format!("namespace:       {}", s.namespace),
        format!("reads:           {}", s.reads),
        format!("hits:            {}", s.hits),
        format!("misses:          {}", s.misses),
        format!("writes:          {}", s.writes),
        format!("deletes:         {}", s.deletes),
        format!("conflicts:       {}", s.conflicts),
        format!("expired_removed: {}", s.expired_removed),
    ];
    backend_lines(&s.backend, 0, &mut lines);
    p.lines(lines)?;
    Ok(OK)
}

fn backend_json(b: &BackendStats) -> J {
    json!({
        "backend": b.backend,
        "fields": b.fields,
        "inner": b.inner.as_deref().map(backend_json),
    })
}

fn backend_lines(b: &BackendStats, depth: usize, lines: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    lines.push(format!("{indent}backend: {}", b.backend));
    for (name, value) in &b.fields {
        let value = match value {
            J::String(s) => s.clone(),
            other => other.to_string(),
        };
        lines.push(format!("{indent}  {name}: {value}"));
    }
    if let Some(inner) = &b.inner {
        backend_lines(inner, depth + 1, lines);
    }
}

/// `namespaces`: the namespaces holding live keys, one per line.
pub async fn namespaces(store: &dyn KVStore, p: Printer) -> Result<u8, CliError> {
    let list = store.list_namespaces().await?;
    if p.json {
        p.doc(&json!({ "namespaces": list }))?;
    } else {
        p.lines(&list)?;
    }
    Ok(OK)
}
