//! `meta get`, `meta set`, `meta update`: per-key metadata.

use dataknobs_kv::KVStore;
use serde_json::json;

use super::not_found;
use crate::cli::{KeyArgs, MetaWriteArgs};
use crate::error::{CliError, OK};
use crate::output::{time, Printer};
use crate::parse;

/// `meta get KEY`: system metadata as `field: value` lines, then the user
/// metadata as pretty JSON. In JSON mode times are milliseconds since the
/// Unix epoch.
pub async fn get(store: &dyn KVStore, a: KeyArgs, p: Printer) -> Result<u8, CliError> {
    let Some(m) = store.get_metadata(&a.key).await? else {
        return not_found(store, &a.key, p);
    };
    if p.json {
        p.doc(&json!({
            "key": a.key,
            "namespace": store.current_namespace(),
            "system": m.system,
            "user": m.user,
        }))?;
        return Ok(OK);
    }
    let s = &m.system;
    let mut lines = vec![
        format!("key:          {}", a.key),
        format!("namespace:    {}", store.current_namespace()),
        format!("type:         {}", s.value_type),
        format!("content_type: {}", s.content_type.as_deref().unwrap_or("-")),
        format!("size:         {}", s.size),
        format!("version:      {}", s.version),
        format!("created_at:   {}", time(s.created_at.as_millis())),
        format!("updated_at:   {}", time(s.updated_at.as_millis())),
        format!(
            "expires_at:   {}",
            s.expires_at
                .map_or_else(|| "never".to_owned(), |t| time(t.as_millis()))
        ),
    ];
    if let Some(t) = s.accessed_at {
        lines.push(format!("accessed_at:  {}", time(t.as_millis())));
    }
    lines.push(format!("checksum:     {:08x}", s.checksum));
    lines.push(format!(
        "user:         {}",
        serde_json::Value::Object(m.user)
    ));
    p.lines(lines)?;
    Ok(OK)
}

/// `meta set KEY FIELDS…` (replace) and `meta update KEY FIELDS…` (merge;
/// `k:=null` removes `k`). Exit 1 when the key is missing.
pub async fn write(
    store: &dyn KVStore,
    a: MetaWriteArgs,
    merge: bool,
    p: Printer,
) -> Result<u8, CliError> {
    if merge && a.fields.is_empty() {
        return Err(CliError::usage(
            "meta update needs at least one field: k=v, k:=JSON or a JSON object",
        ));
    }
    let fields = parse::metadata_fields("FIELDS", &a.fields)?;
    let done = if merge {
        store.update_metadata(&a.key, fields).await?
    } else {
        store.set_metadata(&a.key, fields).await?
    };
    if !done {
        return not_found(store, &a.key, p);
    }
    p.answer(json!({ "key": a.key, "updated": true }), None)?;
    Ok(OK)
}
