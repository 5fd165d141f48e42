//! `incr`, `append`, `cas`: atomic read-modify-write.

use dataknobs_kv::{KVStore, Value};
use serde_json::json;

use crate::cli::{AppendArgs, CasArgs, IncrArgs, ValueKind};
use crate::error::{CliError, NEGATIVE, OK};
use crate::output::Printer;
use crate::parse;

/// `incr KEY [DELTA]`: prints the new value.
pub async fn incr(store: &dyn KVStore, a: IncrArgs, p: Printer) -> Result<u8, CliError> {
    let n = store.increment(&a.key, a.delta).await?;
    p.answer(json!({ "key": a.key, "value": n }), Some(&n.to_string()))?;
    Ok(OK)
}

/// `append KEY TEXT` or `append KEY --file PATH`: prints the new length in
/// bytes.
pub async fn append(store: &dyn KVStore, a: AppendArgs, p: Printer) -> Result<u8, CliError> {
    let suffix = match (&a.value, &a.file) {
        (_, Some(path)) => Value::Bytes(parse::read_input(path)?),
        (Some(text), None) => Value::String(text.clone()),
        (None, None) => return Err(CliError::usage("append needs TEXT or --file PATH")),
    };
    let len = store.append(&a.key, suffix).await?;
    p.answer(
        json!({ "key": a.key, "length": len }),
        Some(&len.to_string()),
    )?;
    Ok(OK)
}

/// `cas KEY EXPECTED NEW` / `cas KEY --absent NEW`: prints `swapped` or
/// `not swapped` (exit 1). Without `--type`, both values are read as the
/// type of the key's current value.
pub async fn cas(store: &dyn KVStore, a: CasArgs, p: Printer) -> Result<u8, CliError> {
    let (expected, new) = match (a.absent, a.values.as_slice()) {
        (true, [new]) => (None, new),
        (false, [expected, new]) => (Some(expected), new),
        (true, _) => return Err(CliError::usage("cas --absent takes KEY NEW")),
        (false, _) => {
            return Err(CliError::usage(
                "cas takes KEY EXPECTED NEW (or --absent KEY NEW)",
            ))
        }
    };
    let (kind, inferred) = match a.kind {
        Some(k) => (k, false),
        None => match store.get(&a.key).await? {
            Some(current) => (parse::kind_of(&current), true),
            None => (ValueKind::String, false),
        },
    };
    let read = |arg: &str, text: &str| {
        parse::typed(arg, kind, text).map_err(|mut e| {
            if inferred {
                e.message.push_str(&format!(
                    " (read as {}, the type of the current value; give --type to choose)",
                    parse::kind_name(kind)
                ));
            }
            e
        })
    };
    let expected = expected.map(|t| read("EXPECTED", t)).transpose()?;
    let new = read("NEW", new)?;
    let swapped = store.compare_and_swap(&a.key, expected, new).await?;
    p.answer(
        json!({ "key": a.key, "swapped": swapped }),
        Some(if swapped { "swapped" } else { "not swapped" }),
    )?;
    Ok(if swapped { OK } else { NEGATIVE })
}
