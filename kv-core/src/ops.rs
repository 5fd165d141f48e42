//! Generic implementations of the [`Backend`] fast paths on top of the
//! primitives, and the optimistic-retry policy.
//!
//! These are the one implementation of the semantics; a backend's native
//! path must give the same answers (the conformance suite compares them).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::backend::{
    Backend, BatchOp, BatchOutcome, BatchPlan, Cooperation, DeleteOutcome, KeyRange,
    PlannedOutcome, Precondition, WriteOutcome, IN_PLACE_YIELD_INTERVAL,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::value::{Value, ValueType};

/// Page size used when walking a key range.
pub const SCAN_PAGE: usize = 1000;

/// Most attempts of an optimistic read-modify-write before
/// [`Error::Conflict`].
pub const MAX_ATTEMPTS: u32 = 2000;

/// A cooperative yield point: yields to the runtime only when the task has
/// used up its budget (as Tokio's own resources do). The store's yield
/// point per operation over a [`Cooperation::Budget`] backend (see
/// [`cooperate`]), and the generic walks' once per page, so a loop over an
/// in-memory backend, whose futures are always ready, never starves other
/// tasks and can still be cancelled by a timeout.
pub async fn page_break() {
    tokio::task::coop::consume_budget().await;
}

/// The yield point of one store operation on a backend that cooperates
/// as `how` says (see [`Cooperation`]).
pub async fn cooperate(how: Cooperation) {
    match how {
        Cooperation::Budget => page_break().await,
        Cooperation::InPlace => match in_place_stretch(std::time::Instant::now()) {
            Some(Stretch::Goes) => {}
            Some(Stretch::Over) => tokio::task::yield_now().await,
            // Not in a task (`block_on`'s own future): the budget, which
            // `block_on` keeps too and which costs no thread change there.
            // After a gap: see `Stretch::Starts`.
            None | Some(Stretch::Starts) => page_break().await,
        },
    }
}

/// What an [`Cooperation::InPlace`] yield point finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stretch {
    /// The task starts a new stretch on this thread.
    Starts,
    /// The task's stretch goes on, shorter than the interval.
    Goes,
    /// The task has run the interval: it must yield.
    Over,
}

/// The task that last passed an [`Cooperation::InPlace`] yield point on a
/// thread, when it started running there without yielding, and when it
/// last passed one.
#[derive(Debug, Clone, Copy)]
struct Mark {
    task: tokio::task::Id,
    since: std::time::Instant,
    seen: std::time::Instant,
}

std::thread_local! {
    static STRETCH: std::cell::Cell<Option<Mark>> = const { std::cell::Cell::new(None) };
}

/// Where the current task stands in its stretch on this thread; `None`
/// outside a Tokio task.
///
/// A task changes threads only by returning `Pending`, and every `Pending`
/// lets the worker's other tasks run and a timeout fire, so a task found
/// with another task's mark, or none, starts a new stretch. So does one
/// whose last yield point here is more than [`IN_PLACE_YIELD_INTERVAL`]
/// ago: it has most likely waited for something else since (a request, a
/// channel), and charging it for that time would make it yield at once.
/// It might instead have computed that long between two calls without
/// waiting, so a stretch that starts after a gap spends one unit of the
/// budget (`Starts`): such a loop still yields every 128 calls.
fn in_place_stretch(now: std::time::Instant) -> Option<Stretch> {
    let task = tokio::task::try_id()?;
    Some(STRETCH.with(|stretch| {
        let (since, outcome) = match stretch.get() {
            Some(m) if m.task == task => {
                if now.saturating_duration_since(m.seen) > IN_PLACE_YIELD_INTERVAL {
                    (now, Stretch::Starts)
                } else if now.saturating_duration_since(m.since) >= IN_PLACE_YIELD_INTERVAL {
                    stretch.set(None);
                    return Stretch::Over;
                } else {
                    (m.since, Stretch::Goes)
                }
            }
            _ => (now, Stretch::Goes),
        };
        stretch.set(Some(Mark {
            task,
            since,
            seen: now,
        }));
        outcome
    }))
}

/// Backoff between optimistic attempts: a few immediate yields, then
/// jittered sleeps growing to 5 ms. Needs a Tokio runtime with the timer
/// enabled once the yields are used up.
#[derive(Debug, Default)]
pub struct Retry {
    attempt: u32,
}

impl Retry {
    /// A fresh policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Waits before the next attempt, or fails with [`Error::Conflict`].
    pub async fn backoff(&mut self, operation: &str, key: &str) -> Result<()> {
        self.attempt += 1;
        if self.attempt >= MAX_ATTEMPTS {
            return Err(Error::Conflict {
                key: key.to_owned(),
                operation: operation.to_owned(),
                attempts: self.attempt,
            });
        }
        if self.attempt <= 3 {
            tokio::task::yield_now().await;
            return Ok(());
        }
        let base_us = 20u64 << (self.attempt - 3).min(8);
        let cap_us = base_us.min(5_000);
        let jitter = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % cap_us.max(1);
        tokio::time::sleep(Duration::from_micros(cap_us / 2 + jitter / 2)).await;
        Ok(())
    }
}

/// Reads, plans and applies optimistically (default of
/// [`Backend::apply_planned`]): `read_many`, then `plan`, then `apply` with
/// the plan's preconditions.
pub async fn apply_planned<B: Backend + ?Sized>(
    backend: &B,
    namespace: &str,
    keys: &[String],
    plan: BatchPlan,
) -> Result<PlannedOutcome> {
    let physical = backend.read_many(namespace, keys).await?;
    let Some(ops) = plan(physical)? else {
        return Ok(PlannedOutcome::Declined);
    };
    let (puts, deletes) = count_ops(&ops);
    if ops.is_empty() {
        return Ok(PlannedOutcome::Applied { puts, deletes });
    }
    Ok(match backend.apply(ops).await? {
        BatchOutcome::Applied => PlannedOutcome::Applied { puts, deletes },
        BatchOutcome::PreconditionFailed { .. } => PlannedOutcome::Conflict,
    })
}

/// The `Put` and `Delete` operations in `ops`.
pub fn count_ops(ops: &[BatchOp]) -> (u64, u64) {
    ops.iter().fold((0, 0), |(p, d), op| match op {
        BatchOp::Put { .. } => (p + 1, d),
        BatchOp::Delete { .. } => (p, d + 1),
    })
}

/// Number of live records in `range` (default of [`Backend::count`]).
pub async fn count<B: Backend + ?Sized>(
    backend: &B,
    namespace: &str,
    range: &KeyRange,
    now: Timestamp,
) -> Result<u64> {
    let mut total = 0;
    let mut after: Option<String> = None;
    loop {
        let page = backend
            .scan_keys(namespace, range, after.as_deref(), SCAN_PAGE)
            .await?;
        total += page
            .iter()
            .filter(|k| !matches!(k.expires_at, Some(t) if now >= t))
            .count() as u64;
        if page.len() < SCAN_PAGE {
            return Ok(total);
        }
        after = page.last().map(|k| k.key.clone());
        page_break().await;
    }
}

/// Records in `range` whose user metadata satisfies `filter` (default of
/// [`Backend::scan_matching`]): pages through `scan` until `limit` match or
/// the range ends.
pub async fn scan_matching<B: Backend + ?Sized>(
    backend: &B,
    namespace: &str,
    range: &KeyRange,
    after: Option<&str>,
    limit: usize,
    filter: &crate::metadata::MetadataFilter,
) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_owned);
    loop {
        let page = backend
            .scan(namespace, range, cursor.as_deref(), SCAN_PAGE)
            .await?;
        let full = page.len() == SCAN_PAGE;
        cursor = page.last().map(|r| r.key.clone());
        for record in page {
            if filter.matches(&record.user) {
                out.push(record);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        if !full {
            return Ok(out);
        }
        page_break().await;
    }
}

/// Removes expired records (default of [`Backend::remove_expired`]). A
/// record rewritten since it was seen is left alone.
pub async fn remove_expired<B: Backend + ?Sized>(
    backend: &B,
    namespace: Option<&str>,
    now: Timestamp,
) -> Result<u64> {
    let namespaces = match namespace {
        Some(ns) => vec![ns.to_owned()],
        None => backend.namespaces().await?,
    };
    let mut removed = 0;
    for ns in namespaces {
        let mut after: Option<String> = None;
        loop {
            let page = backend
                .scan_keys(&ns, &KeyRange::all(), after.as_deref(), SCAN_PAGE)
                .await?;
            for info in &page {
                if matches!(info.expires_at, Some(t) if now >= t) {
                    let outcome = backend
                        .delete(&ns, &info.key, Precondition::Version(info.version))
                        .await?;
                    if matches!(outcome, DeleteOutcome::Deleted { .. }) {
                        removed += 1;
                    }
                }
            }
            if page.len() < SCAN_PAGE {
                break;
            }
            after = page.last().map(|k| k.key.clone());
            page_break().await;
        }
    }
    Ok(removed)
}

/// Removes every record in `range`, a page of keys at a time through
/// [`Backend::delete_keys`]; counts the live ones (default of
/// [`Backend::delete_range`]).
pub async fn delete_range<B: Backend + ?Sized>(
    backend: &B,
    namespace: &str,
    range: &KeyRange,
    now: Timestamp,
) -> Result<u64> {
    let mut live = 0;
    let mut after: Option<String> = None;
    loop {
        let page: Vec<String> = backend
            .scan_keys(namespace, range, after.as_deref(), SCAN_PAGE)
            .await?
            .into_iter()
            .map(|info| info.key)
            .collect();
        live += backend.delete_keys(namespace, &page, now).await?;
        if page.len() < SCAN_PAGE {
            return Ok(live);
        }
        after = page.last().cloned();
        page_break().await;
    }
}

/// Deletes `keys` whatever their version, 16 at a time; counts the
/// ones that were live at `now` (default of [`Backend::delete_keys`]).
pub async fn delete_keys<B: Backend + ?Sized>(
    backend: &B,
    namespace: &str,
    keys: &[String],
    now: Timestamp,
) -> Result<u64> {
    let mut live = 0;
    for group in keys.chunks(16) {
        let deletes = group
            .iter()
            .map(|key| backend.delete(namespace, key, Precondition::Any));
        for outcome in futures_util::future::try_join_all(deletes).await? {
            live += u64::from(outcome.removed_live(now));
        }
    }
    Ok(live)
}

/// The record `increment` writes, given the live record (if any).
///
/// Shared by the generic path and native paths that hold the record in
/// memory (the engine), so the rules exist once.
pub fn incremented(
    namespace: &str,
    key: &str,
    live: Option<&Record>,
    delta: i64,
    now: Timestamp,
) -> Result<(Record, i64)> {
    match live {
        None => {
            let rec = Record::new(namespace, key, &Value::Int(delta), ValueType::Number, now);
            Ok((rec, delta))
        }
        Some(current) => {
            let value = current.decode_value()?;
            let Value::Int(n) = value else {
                return Err(Error::TypeMismatch {
                    key: key.to_owned(),
                    operation: "increment".into(),
                    expected: "an integer".into(),
                    found: value.kind().into(),
                });
            };
            let new = n.checked_add(delta).ok_or_else(|| Error::Overflow {
                key: key.to_owned(),
                operation: "increment".into(),
                current: n,
                delta,
            })?;
            let mut rec = current.clone();
            rec.set_value(&Value::Int(new));
            rec.meta.version += 1;
            rec.meta.updated_at = now;
            if !rec.meta.value_type.accepts(&Value::Int(new)) {
                rec.meta.value_type = ValueType::Number;
            }
            Ok((rec, new))
        }
    }
}

/// Optimistic increment (default of [`Backend::increment`]).
pub async fn increment<B: Backend + ?Sized>(
    backend: &B,
    namespace: &str,
    key: &str,
    delta: i64,
    now: Timestamp,
) -> Result<i64> {
    let mut retry = Retry::new();
    loop {
        let physical = backend.read(namespace, key).await?;
        let precondition = physical
            .as_ref()
            .map_or(Precondition::Absent, |r| Precondition::Version(r.version()));
        let live = physical.as_ref().filter(|r| !r.is_expired(now));
        let (record, new) = incremented(namespace, key, live, delta, now)?;
        match backend.write(record, precondition).await? {
            WriteOutcome::Written => return Ok(new),
            WriteOutcome::PreconditionFailed => retry.backoff("increment", key).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const STEP: Duration = Duration::from_micros(100);

    #[test]
    fn outside_a_task_there_is_no_stretch() {
        assert_eq!(in_place_stretch(Instant::now()), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_yields_once_it_has_run_the_interval_on_one_thread() {
        tokio::spawn(async {
            let t0 = Instant::now();
            // First sight of this task on this thread: a new stretch.
            assert_eq!(in_place_stretch(t0), Some(Stretch::Goes));
            // Calls close together, up to the interval.
            let mut t = t0;
            while t + STEP < t0 + IN_PLACE_YIELD_INTERVAL {
                t += STEP;
                assert_eq!(in_place_stretch(t), Some(Stretch::Goes));
            }
            assert_eq!(
                in_place_stretch(t0 + IN_PLACE_YIELD_INTERVAL),
                Some(Stretch::Over)
            );
            // Having yielded, it starts over wherever it runs next.
            let t1 = t0 + IN_PLACE_YIELD_INTERVAL + STEP;
            assert_eq!(in_place_stretch(t1), Some(Stretch::Goes));
            assert_eq!(in_place_stretch(t1 + STEP), Some(Stretch::Goes));
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gap_starts_a_new_stretch_that_spends_the_budget() {
        tokio::spawn(async {
            let t0 = Instant::now();
            assert_eq!(in_place_stretch(t0), Some(Stretch::Goes));
            // Back after waiting elsewhere for longer than the interval:
            // not charged for the wait, but it spends a budget unit.
            let t1 = t0 + 3 * IN_PLACE_YIELD_INTERVAL;
            assert_eq!(in_place_stretch(t1), Some(Stretch::Starts));
            assert_eq!(in_place_stretch(t1 + STEP), Some(Stretch::Goes));
            assert_eq!(
                in_place_stretch(t1 + IN_PLACE_YIELD_INTERVAL),
                Some(Stretch::Over)
            );
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn another_task_on_the_thread_starts_its_own_stretch() {
        let t0 = Instant::now();
        let first = tokio::spawn(async move { in_place_stretch(t0) });
        assert_eq!(first.await.unwrap(), Some(Stretch::Goes));
        // One worker: the second task runs on the thread the first marked,
        // long after; it is not charged for the first one's time.
        let later = t0 + 10 * IN_PLACE_YIELD_INTERVAL;
        let second = tokio::spawn(async move { in_place_stretch(later) });
        assert_eq!(second.await.unwrap(), Some(Stretch::Goes));
    }
}
