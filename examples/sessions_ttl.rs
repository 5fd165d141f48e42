//! Sessions with a time to live: keys that expire by themselves, TTLs read,
//! extended and removed, and expired keys cleaned up.
//!
//! ```text
//! cargo run -p kv-examples --example sessions_ttl
//! ```
//!
//! Runs on the store `KV_STORE_URL` names, or the default store of this
//! build; it removes what it wrote. Takes about two seconds (it waits for
//! a session to expire).

use std::time::Duration;

use dataknobs_kv::{open, KVStoreExt, SetOptions, StoreConfig, Ttl};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Session {
    user: String,
    roles: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let mut config = StoreConfig::default();
    config.apply_env()?;
    let store = open(&config).await?;

    // A session that lasts an hour, one that lasts a second.
    let ada = Session {
        user: "ada".into(),
        roles: vec!["admin".into()],
    };
    store
        .set_with(
            "sessions.s1",
            dataknobs_kv::Value::json(&ada)?,
            SetOptions::new().ttl(Duration::from_secs(3600)),
        )
        .await?;
    store
        .set_with(
            "sessions.s2",
            "short-lived".into(),
            SetOptions::new().ttl(Duration::from_secs(1)),
        )
        .await?;
    let back: Option<Session> = store.get_as("sessions.s1").await?;
    assert_eq!(back.as_ref(), Some(&ada));
    println!("s1 = {back:?}, ttl {:?}", store.ttl("sessions.s1").await?);

    // Sliding expiry: extend on activity; or make a key permanent.
    store
        .expire("sessions.s1", Duration::from_secs(7200))
        .await?;
    if let Ttl::Expires(left) = store.ttl("sessions.s1").await? {
        println!("s1 extended: {} s left", left.as_secs());
        assert!(left > Duration::from_secs(3600));
    }
    store.persist("sessions.s1").await?;
    assert_eq!(store.ttl("sessions.s1").await?, Ttl::Persistent);

    // An expired key reads as missing at once, and is removed by cleanup.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(store.get("sessions.s2").await?, None);
    assert_eq!(store.ttl("sessions.s2").await?, Ttl::Missing);
    println!(
        "s2 expired; live sessions: {:?}",
        store.keys("sessions.*").await?
    );
    let removed = store.cleanup_expired().await?;
    println!("cleanup removed {removed} expired key(s)");

    store.delete_pattern("sessions.**").await?;
    store.close().await?;
    Ok(())
}
