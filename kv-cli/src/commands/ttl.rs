//! `ttl`, `expire`, `persist`, `cleanup`: expiry.

use dataknobs_kv::{KVStore, Ttl};
use serde_json::json;

use super::not_found;
use crate::cli::{ExpireArgs, KeyArgs};
use crate::error::{CliError, OK};
use crate::output::{duration, seconds, Printer};
use crate::parse;

/// `ttl KEY`: `persistent`, or `expires in 5m 3s`; exit 1 when missing.
pub async fn ttl(store: &dyn KVStore, a: KeyArgs, p: Printer) -> Result<u8, CliError> {
    match store.ttl(&a.key).await? {
        Ttl::Missing => not_found(store, &a.key, p),
        Ttl::Persistent => {
            p.answer(
                json!({ "key": a.key, "ttl": "persistent", "seconds": null }),
                Some("persistent"),
            )?;
            Ok(OK)
        }
        Ttl::Expires(d) => {
            p.answer(
                json!({ "key": a.key, "ttl": "expires", "seconds": seconds(d) }),
                Some(&format!("expires in {}", duration(d))),
            )?;
            Ok(OK)
        }
    }
}

/// `expire KEY DURATION`: exit 1 when the key is missing.
pub async fn expire(store: &dyn KVStore, a: ExpireArgs, p: Printer) -> Result<u8, CliError> {
    let ttl = parse::duration("TTL", &a.ttl)?;
    if !store.expire(&a.key, ttl).await? {
        return not_found(store, &a.key, p);
    }
    p.answer(json!({ "key": a.key, "expires_in": seconds(ttl) }), None)?;
    Ok(OK)
}

/// `persist KEY`: removes the expiry. A key that had none is fine (exit
/// 0, `{"persisted": false}`); a missing key is exit 1.
pub async fn persist(store: &dyn KVStore, a: KeyArgs, p: Printer) -> Result<u8, CliError> {
    let removed = store.persist(&a.key).await?;
    if !removed && !store.exists(&a.key).await? {
        return not_found(store, &a.key, p);
    }
    p.answer(
        json!({ "key": a.key, "persisted": removed }),
        (!removed).then_some("the key had no expiry"),
    )?;
    Ok(OK)
}

/// `cleanup`: removes the expired keys of the namespace now.
pub async fn cleanup(store: &dyn KVStore, p: Printer) -> Result<u8, CliError> {
    let n = store.cleanup_expired().await?;
    p.answer(
        json!({ "removed": n }),
        Some(&format!("removed {n} expired keys")),
    )?;
    Ok(OK)
}
