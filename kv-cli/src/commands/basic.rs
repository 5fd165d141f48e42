//! `get`, `set`, `del`, `exists`: one key at a time.

use dataknobs_kv::{KVStore, SetOptions, Value, ValueType};
use serde_json::json;

use super::not_found;
use crate::cli::{GetArgs, KeyArgs, SetArgs, ValueKind};
use crate::error::{CliError, NEGATIVE, OK};
use crate::output::{bytes_summary, entry_json, note, stdout_is_terminal, value_plain, Printer};
use crate::parse;

/// `get KEY [--output FILE]`: the value, printed plainly. Bytes go to
/// stdout raw when it is not a terminal, else a size summary is printed.
pub async fn get(store: &dyn KVStore, a: GetArgs, p: Printer) -> Result<u8, CliError> {
    let Some(entry) = store.get_entry(&a.key).await? else {
        return not_found(store, &a.key, p);
    };
    let content_type = entry.metadata.system.content_type.as_deref();
    if let Some(path) = &a.output {
        let bytes = match &entry.value {
            Value::Bytes(b) => b.clone(),
            Value::String(s) => s.clone().into_bytes(),
            other => value_plain(other).into_bytes(),
        };
        std::fs::write(path, &bytes).map_err(|e| CliError::output_file(path, &e))?;
        if p.json {
            let mut doc = entry_json(&entry);
            if let Some(obj) = doc.as_object_mut() {
                obj.remove("value");
                obj.insert("found".into(), json!(true));
                obj.insert("output".into(), json!(path.display().to_string()));
                obj.insert("written_bytes".into(), json!(bytes.len()));
            }
            p.doc(&doc)?;
        }
        return Ok(OK);
    }
    if p.json {
        let mut doc = entry_json(&entry);
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("found".into(), json!(true));
        }
        p.doc(&doc)?;
        return Ok(OK);
    }
    match &entry.value {
        Value::Bytes(b) if stdout_is_terminal() => p.line(&format!(
            "{} (redirect stdout or use --output FILE to get the bytes)",
            bytes_summary(b.len(), content_type)
        ))?,
        Value::Bytes(b) => p.raw(b)?,
        other => p.line(&value_plain(other))?,
    }
    Ok(OK)
}

/// `set KEY VALUE`: writes a typed value with options. Prints nothing for
/// people; exit 1 when `--nx` / `--if-version` did not hold.
pub async fn set(store: &dyn KVStore, a: SetArgs, p: Printer) -> Result<u8, CliError> {
    let kind = a.kind();
    let value = match (&a.value, &a.file) {
        (_, Some(path)) => parse::typed_bytes(
            "--file",
            kind.unwrap_or(ValueKind::Bytes),
            parse::read_input(path)?,
        )?,
        (Some(text), None) => parse::typed("VALUE", kind.unwrap_or(ValueKind::String), text)?,
        (None, None) if kind == Some(ValueKind::Null) => Value::Null,
        (None, None) => {
            return Err(CliError::usage(
                "set needs a VALUE, --file PATH, or --type null",
            ))
        }
    };
    let mut options = SetOptions::new();
    if let Some(ttl) = &a.ttl {
        options.ttl = Some(parse::duration("--ttl", ttl)?);
    }
    options.keep_ttl = a.keep_ttl;
    if !a.meta.is_empty() {
        options.metadata = Some(parse::metadata_fields("--meta", &a.meta)?);
    }
    options.content_type.clone_from(&a.content_type);
    options.value_type = match (&a.value_type, &a.content_type, &value) {
        (Some(t), _, _) => Some(t.parse::<ValueType>().map_err(|e| {
            CliError::usage(format!(
                "--value-type {t:?}: {} (string, json, binary, number, boolean, document, image, custom:NAME)",
                match e {
                    dataknobs_kv::Error::InvalidArgument { reason, .. } => reason,
                    other => other.to_string(),
                }
            ))
        })?),
        (None, Some(ct), Value::Bytes(_)) if ct.starts_with("image/") => Some(ValueType::Image),
        (None, Some(_), Value::Bytes(_)) => Some(ValueType::Document),
        _ => None,
    };
    options.if_absent = a.nx;
    options.if_version = a.if_version;
    let written = store.set_with(&a.key, value, options).await?;
    if written {
        p.answer(json!({ "key": a.key, "written": true }), None)?;
        return Ok(OK);
    }
    if a.nx {
        note(&format!("not set: {:?} already exists", a.key));
    } else if let Some(v) = a.if_version {
        note(&format!("not set: {:?} is not at version {v}", a.key));
    }
    p.answer(json!({ "key": a.key, "written": false }), None)?;
    Ok(NEGATIVE)
}

/// `del KEY`: exit 1 when there was no such key.
pub async fn del(store: &dyn KVStore, a: KeyArgs, p: Printer) -> Result<u8, CliError> {
    if !store.delete(&a.key).await? {
        return not_found(store, &a.key, p);
    }
    p.answer(json!({ "key": a.key, "deleted": true }), None)?;
    Ok(OK)
}

/// `exists KEY`: prints `true` or `false`; exit 1 for false.
pub async fn exists(store: &dyn KVStore, a: KeyArgs, p: Printer) -> Result<u8, CliError> {
    let exists = store.exists(&a.key).await?;
    p.answer(
        json!({ "key": a.key, "exists": exists }),
        Some(if exists { "true" } else { "false" }),
    )?;
    Ok(if exists { OK } else { NEGATIVE })
}
