//! Scans and pattern operations over many keys: pagination, order, bounded
//! pages, expired keys between pages.

use crate::error::Error;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Failure, Harness};
use crate::types::SetOptions;
use crate::value::Value;
use crate::KVStore;
use futures_util::{StreamExt, TryStreamExt};

use super::secs;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(scan_many_keys_paginated_in_key_order),
        case!(scan_cursor_resumes_and_limit_is_checked),
        case!(scan_pattern_operations_over_many_keys),
        case!(scan_pages_skip_expired_keys),
    ]
}

/// Writes `n` keys `big.<bucket>.<id>` in chunks; returns them sorted.
async fn load(h: &Harness, n: usize) -> Result<Vec<String>, Failure> {
    let mut keys: Vec<String> = (0..n).map(|i| format!("big.{}.{i:06}", i % 7)).collect();
    for chunk in keys.chunks(1000) {
        h.store
            .set_many(
                chunk
                    .iter()
                    .map(|k| (k.clone(), Value::from(k.as_str())))
                    .collect(),
            )
            .await?;
    }
    keys.sort();
    Ok(keys)
}

async fn scan_many_keys_paginated_in_key_order(
    f: &dyn BackendFactory,
    o: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let keys = load(&h, o.large_keys).await?;
    for limit in [1000, 777] {
        let mut seen = Vec::with_capacity(keys.len());
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = h.store.scan("big.**", cursor.as_deref(), limit).await?;
            ensure!(
                page.entries.len() <= limit,
                "page of {} over limit {limit}",
                page.entries.len()
            );
            for e in &page.entries {
                ensure_eq!(e.value, Value::from(e.key.as_str()), "value of {}", e.key);
            }
            seen.extend(page.entries.into_iter().map(|e| e.key));
            ensure!(
                seen.len() <= keys.len(),
                "scan does not advance past {:?}",
                seen.last()
            );
            pages += 1;
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        ensure!(
            seen == keys,
            "scan with limit {limit} returned {} keys, not the {} written in order",
            seen.len(),
            keys.len()
        );
        ensure!(pages >= keys.len() / limit, "too few pages: {pages}");
    }
    ensure_eq!(h.store.keys("big.**").await?, keys, "keys() in order");
    Ok(())
}

async fn scan_cursor_resumes_and_limit_is_checked(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    for i in 0..10 {
        h.store.set(&format!("s.{i}"), i.into()).await?;
    }
    let first = h.store.scan("s.*", None, 4).await?;
    ensure_eq!(first.entries.len(), 4);
    ensure_eq!(first.cursor.as_deref(), Some("s.3"));
    let rest = h.store.scan("s.*", first.cursor.as_deref(), 100).await?;
    ensure_eq!(rest.entries.len(), 6);
    ensure_eq!(rest.cursor, None);
    ensure_eq!(rest.entries[0].key, "s.4");
    // A cursor between keys works; a cursor past the end gives nothing.
    let mid = h.store.scan("s.*", Some("s.45"), 100).await?;
    ensure_eq!(mid.entries.first().map(|e| e.key.as_str()), Some("s.5"));
    let end = h.store.scan("s.*", Some("s.9"), 100).await?;
    ensure!(
        end.entries.is_empty() && end.cursor.is_none(),
        "past the end"
    );
    ensure_err!(
        h.store.scan("s.*", None, 0).await,
        Error::InvalidArgument { .. }
    );
    Ok(())
}

async fn scan_pattern_operations_over_many_keys(
    f: &dyn BackendFactory,
    o: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let keys = load(&h, o.large_keys).await?;
    let in_bucket3: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("big.3."))
        .cloned()
        .collect();
    ensure_eq!(h.store.count_pattern("big.**").await?, keys.len() as u64);
    ensure_eq!(
        h.store.count_pattern("big.3.*").await?,
        in_bucket3.len() as u64
    );
    ensure_eq!(h.store.keys("big.3.*").await?, in_bucket3);
    let ending_7 = keys.iter().filter(|k| k.ends_with('7')).count() as u64;
    ensure_eq!(h.store.count_pattern("big.*.*7").await?, ending_7);
    ensure_eq!(h.store.delete_pattern("big.*.*7").await?, ending_7);
    ensure_eq!(
        h.store.delete_pattern("big.3.**").await?,
        in_bucket3.iter().filter(|k| !k.ends_with('7')).count() as u64
    );
    let left = keys.len() as u64
        - ending_7
        - in_bucket3.iter().filter(|k| !k.ends_with('7')).count() as u64;
    ensure_eq!(h.store.count().await?, left);
    ensure_eq!(h.store.delete_pattern("**").await?, left);
    ensure_eq!(h.store.count().await?, 0);
    Ok(())
}

async fn scan_pages_skip_expired_keys(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    // 3,000 keys, two of every three expiring: pages of the backend hold
    // mostly expired keys, and scans must still fill and order their pages.
    let mut live = Vec::new();
    for chunk in 0..3 {
        let mut batch = Vec::new();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let key = format!("e.{i:05}");
            if i % 3 == 0 {
                live.push(key.clone());
                batch.push((key, Value::Int(i as i64), None));
            } else {
                batch.push((key, Value::Int(i as i64), Some(secs(1))));
            }
        }
        // Eight writes in flight: each is a round trip on a remote store.
        futures_util::stream::iter(batch)
            .map(|(k, v, ttl)| {
                let opts = match ttl {
                    Some(t) => SetOptions::new().ttl(t),
                    None => SetOptions::new(),
                };
                let store = &h.store;
                async move { store.set_with(&k, v, opts).await }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await?;
    }
    h.clock.advance(secs(1));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = h.store.scan("e.*", cursor.as_deref(), 100).await?;
        if page.cursor.is_some() {
            ensure_eq!(
                page.entries.len(),
                100,
                "a page before the last must be full"
            );
        }
        seen.extend(page.entries.into_iter().map(|e| e.key));
        ensure!(
            seen.len() <= live.len(),
            "scan does not advance past {:?}",
            seen.last()
        );
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    ensure!(
        seen == live,
        "scan returned {} keys, expected {}",
        seen.len(),
        live.len()
    );
    ensure_eq!(h.store.count().await?, live.len() as u64);
    ensure_eq!(h.store.count_pattern("e.*").await?, live.len() as u64);
    ensure_eq!(h.store.cleanup_expired().await?, 2000);
    Ok(())
}
