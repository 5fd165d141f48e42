//! Documents with metadata: binary documents and images with content
//! types, user metadata set and patched, and keys found by metadata.
//!
//! ```text
//! cargo run -p kv-examples --example documents_metadata
//! ```
//!
//! Runs on the store `KV_STORE_URL` names, or the default store of this
//! build; it removes what it wrote.

use dataknobs_kv::{open, MetadataFilter, SetOptions, StoreConfig, Value};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let mut config = StoreConfig::default();
    config.apply_env()?;
    let store = open(&config).await?;

    let docs = [
        (
            "docs.q1-report",
            "alice",
            "finance",
            b"%PDF-1.7 q1".to_vec(),
        ),
        ("docs.q2-report", "bob", "finance", b"%PDF-1.7 q2".to_vec()),
        ("docs.handbook", "alice", "hr", b"%PDF-1.7 hr".to_vec()),
    ];
    for (key, author, dept, bytes) in docs {
        store
            .set_with(
                key,
                Value::Bytes(bytes),
                SetOptions::document("application/pdf")
                    .metadata_json(json!({"author": author, "dept": dept, "tags": ["2024"]}))?,
            )
            .await?;
    }
    store
        .set_with(
            "images.logo",
            Value::Bytes(vec![0x89, b'P', b'N', b'G']),
            SetOptions::image("image/png").metadata_json(json!({"author": "carol"}))?,
        )
        .await?;

    // System metadata comes with every entry.
    if let Some(meta) = store.get_metadata("docs.q1-report").await? {
        println!(
            "q1-report: {} bytes of {:?}, {}, version {}, by {}",
            meta.system.size,
            meta.system.content_type,
            meta.system.value_type,
            meta.system.version,
            meta.user["author"]
        );
    }

    // Find by metadata: equality, presence, membership.
    let finance = store
        .find_by_metadata("docs.*", &MetadataFilter::new().eq("dept", "finance"))
        .await?;
    let keys: Vec<&str> = finance.iter().map(|e| e.key.as_str()).collect();
    println!("finance documents: {keys:?}");
    assert_eq!(keys, ["docs.q1-report", "docs.q2-report"]);
    let by_alice = store
        .find_by_metadata("**", &MetadataFilter::new().eq("author", "alice"))
        .await?;
    println!("by alice: {}", by_alice.len());
    assert_eq!(by_alice.len(), 2);

    // Patch metadata without touching the value.
    let mut patch = dataknobs_kv::UserMetadata::new();
    patch.insert("reviewed".into(), json!(true));
    store.update_metadata("docs.q1-report", patch).await?;
    let reviewed = store
        .find_by_metadata("docs.*", &MetadataFilter::new().exists("reviewed"))
        .await?;
    println!(
        "reviewed: {:?}",
        reviewed.iter().map(|e| &e.key).collect::<Vec<_>>()
    );
    assert_eq!(reviewed.len(), 1);

    store.delete_pattern("docs.**").await?;
    store.delete_pattern("images.**").await?;
    store.close().await?;
    Ok(())
}
