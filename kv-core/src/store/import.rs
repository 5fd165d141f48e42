//! [`KVStore::import_entries`](crate::KVStore::import_entries) for
//! [`Store`]: whole records in, timestamps kept.

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{check_type, lift_reserved, Store, MULTI_KEY_CONCURRENCY};
use crate::backend::{BatchOp, BatchOutcome, Precondition, WriteOutcome};
use crate::clock::Timestamp;
use crate::error::{shorten, Error, Result};
use crate::metadata::{RESERVED_CONTENT_TYPE, RESERVED_TTL};
use crate::migrate::{ImportOptions, ImportOutcome, Overwrite, SkipReason};
use crate::ops::Retry;
use crate::record::Record;
use crate::types::Entry;

/// Whether `incoming` may replace `live` under `overwrite`.
fn decide(
    overwrite: Overwrite,
    live: Option<&Record>,
    incoming: &Record,
) -> std::result::Result<(), SkipReason> {
    match (overwrite, live) {
        (_, None) | (Overwrite::Always, _) => Ok(()),
        (Overwrite::Never, Some(_)) => Err(SkipReason::Exists),
        (Overwrite::IfNewer, Some(old)) if incoming.meta.updated_at > old.meta.updated_at => Ok(()),
        (Overwrite::IfNewer, Some(_)) => Err(SkipReason::NotNewer),
    }
}

/// The precondition that what was read is still what is stored.
fn unchanged(physical: Option<&Record>) -> Precondition {
    physical.map_or(Precondition::Absent, |r| Precondition::Version(r.version()))
}

/// One key's plan: the precondition on what was read, the record to write
/// (the last entry given for the key), and the entries it answers for.
struct Planned {
    precondition: Precondition,
    record: Record,
    entries: Vec<usize>,
}

impl Store {
    pub(super) async fn import_entries_inner(
        &self,
        entries: Vec<Entry>,
        options: ImportOptions,
    ) -> Result<Vec<ImportOutcome>> {
        self.check_open()?;
        let now = self.now();
        let mut outcomes: Vec<Option<ImportOutcome>> = Vec::with_capacity(entries.len());
        let mut candidates: Vec<(usize, Record)> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            outcomes.push(match self.import_record(entry, now) {
                Ok(Some(record)) => {
                    candidates.push((i, record));
                    None
                }
                Ok(None) => Some(ImportOutcome::Skipped(SkipReason::Expired)),
                Err(e) => Some(ImportOutcome::Failed(e)),
            });
        }
        if candidates.is_empty() {
            return Ok(finish(outcomes));
        }

        let mut keys: Vec<String> = candidates.iter().map(|(_, r)| r.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        if !options.dry_run
            && keys.len() == candidates.len()
            && !self.backend_ref().capabilities().atomic_batch
        {
            // Without atomic batches every key is written on its own anyway
            // (a round trip each on an object store), and most imports go
            // into keys that do not exist yet (a migration into a fresh
            // store): try to create each key, and read and decide only the
            // keys that turn out to exist. Distinct keys only: a page that
            // names a key twice must see its own earlier entry.
            let written: Vec<(usize, Option<SkipReason>)> = stream::iter(candidates)
                .map(|(i, mut record)| async move {
                    record.meta.version = 1;
                    let outcome = self
                        .import_one(record, Precondition::Absent, options.overwrite, true)
                        .await?;
                    Ok::<_, Error>((i, outcome))
                })
                .buffer_unordered(MULTI_KEY_CONCURRENCY)
                .try_collect()
                .await?;
            for (i, skipped) in written {
                outcomes[i] = Some(written_or_skipped(skipped));
            }
            return Ok(finish(outcomes));
        }
        let physical = self.backend_ref().read_many(&self.namespace, &keys).await?;
        // Each key's current state as the entries are decided in order (a
        // later entry for the same key sees the earlier one).
        let mut current: HashMap<String, Option<Record>> = HashMap::with_capacity(keys.len());
        let mut plan: BTreeMap<String, Planned> = BTreeMap::new();
        let mut preconditions: HashMap<String, Precondition> = HashMap::with_capacity(keys.len());
        for (key, record) in keys.into_iter().zip(physical) {
            preconditions.insert(key.clone(), unchanged(record.as_ref()));
            current.insert(key, record.filter(|r| !r.is_expired(now)));
        }
        for (i, mut record) in candidates {
            let live = current.get(&record.key).and_then(Option::as_ref);
            if let Err(reason) = decide(options.overwrite, live, &record) {
                outcomes[i] = Some(ImportOutcome::Skipped(reason));
                continue;
            }
            record.meta.version = live.map_or(1, |l| l.version() + 1);
            outcomes[i] = Some(ImportOutcome::Written);
            let precondition = preconditions
                .get(&record.key)
                .copied()
                .unwrap_or(Precondition::Any);
            current.insert(record.key.clone(), Some(record.clone()));
            plan.entry(record.key.clone())
                .and_modify(|p| {
                    p.record = record.clone();
                    p.entries.push(i);
                })
                .or_insert_with(|| Planned {
                    precondition,
                    record,
                    entries: vec![i],
                });
        }
        if options.dry_run || plan.is_empty() {
            return Ok(finish(outcomes));
        }

        let backend = self.backend_ref();
        if plan.len() > 1 && backend.capabilities().atomic_batch {
            let ops = plan
                .values()
                .map(|p| BatchOp::Put {
                    record: p.record.clone(),
                    precondition: p.precondition,
                })
                .collect();
            if backend.apply(ops).await? == BatchOutcome::Applied {
                return Ok(finish(outcomes));
            }
            // Something changed since the read: go key by key, re-deciding
            // the keys that changed.
        }
        // Key by key, several at once: on an object store each write is a
        // round trip, and keys are independent of each other.
        let written: Vec<(Vec<usize>, Option<SkipReason>)> = stream::iter(plan.into_values())
            .map(|planned| async move {
                let outcome = self
                    .import_one(
                        planned.record,
                        planned.precondition,
                        options.overwrite,
                        false,
                    )
                    .await?;
                Ok::<_, Error>((planned.entries, outcome))
            })
            .buffer_unordered(MULTI_KEY_CONCURRENCY)
            .try_collect()
            .await?;
        for (entries, outcome) in written {
            for i in entries {
                outcomes[i] = Some(written_or_skipped(outcome));
            }
        }
        Ok(finish(outcomes))
    }

    /// Checks one entry against this store's rules and builds its record
    /// (version still to be set). `None` when it has expired.
    fn import_record(&self, entry: Entry, now: Timestamp) -> Result<Option<Record>> {
        let key = self.key(&entry.key)?.into_owned();
        let system = entry.metadata.system;
        if system.expires_at.is_some_and(|t| now >= t) {
            return Ok(None);
        }
        self.check_size(&key, &entry.value)?;
        let lifted = lift_reserved(&key, entry.metadata.user)?;
        for (field, present) in [
            (RESERVED_TTL, lifted.ttl.is_some()),
            (RESERVED_CONTENT_TYPE, lifted.content_type.is_some()),
        ] {
            if present {
                return Err(Error::InvalidMetadata {
                    key: shorten(&key),
                    field: field.to_owned(),
                    reason: "is reserved: an imported record carries its expiry and content \
                             type as expires_at and content_type"
                        .to_owned(),
                });
            }
        }
        check_type(
            &key,
            &entry.value,
            &system.value_type,
            system.content_type.as_deref(),
        )?;
        let mut record = Record::new(
            &*self.namespace,
            key,
            &entry.value,
            system.value_type,
            system.updated_at,
        );
        record.meta.created_at = system.created_at;
        record.meta.expires_at = system.expires_at;
        record.meta.content_type = system.content_type;
        record.user = lifted.user;
        Ok(Some(record))
    }

    /// Writes one planned record, re-reading and re-deciding while someone
    /// else changes the key. `Some(reason)` when it ends up skipped.
    /// `guessed`: the first precondition is a guess, not what was read, so
    /// its failure is no sign of contention and is not backed off.
    async fn import_one(
        &self,
        mut record: Record,
        mut precondition: Precondition,
        overwrite: Overwrite,
        mut guessed: bool,
    ) -> Result<Option<SkipReason>> {
        let backend = self.backend_ref();
        let mut retry = Retry::new();
        loop {
            match backend.write(record.clone(), precondition).await? {
                WriteOutcome::Written => return Ok(None),
                WriteOutcome::PreconditionFailed => {}
            }
            if !std::mem::take(&mut guessed) {
                retry.backoff("import", &record.key).await?;
            }
            let now = self.now();
            if record.is_expired(now) {
                return Ok(Some(SkipReason::Expired));
            }
            let physical = backend.read(&self.namespace, &record.key).await?;
            precondition = unchanged(physical.as_ref());
            let live = physical.filter(|r| !r.is_expired(now));
            if let Err(reason) = decide(overwrite, live.as_ref(), &record) {
                return Ok(Some(reason));
            }
            record.meta.version = live.map_or(1, |l| l.version() + 1);
        }
    }
}

/// The outcome of a key [`Store::import_one`] wrote or skipped.
fn written_or_skipped(skipped: Option<SkipReason>) -> ImportOutcome {
    skipped.map_or(ImportOutcome::Written, ImportOutcome::Skipped)
}

/// Every slot has been decided by the time this runs.
fn finish(outcomes: Vec<Option<ImportOutcome>>) -> Vec<ImportOutcome> {
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(ImportOutcome::Written))
        .collect()
}
