//! [`Scripted`]: a backend over `MemoryBackend` whose calls a test can
//! hold, fail or hang, so the cache layer's interleavings with its backend
//! can be forced instead of hoped for.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kv_core::backend::{
    BackendStats, BatchOp, BatchOutcome, Capabilities, DeleteOutcome, KeyInfo, KeyRange,
    Precondition, WriteOutcome,
};
use kv_core::{Backend, Error, MemoryBackend, Record, Result, Timestamp, Value};
use tokio::sync::Notify;

/// What calls that change the backend do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Pass through.
    #[default]
    Pass,
    /// Fail without touching the backend.
    Fail,
    /// Apply the change, then never answer (the caller's future must be
    /// dropped): a call cancelled after the backend committed.
    HangAfter,
}

/// An async step run after a change reached the backend, before it answers.
pub type Hook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A held call: once the backend has answered it, `reached` is notified
/// and the call waits for `release` before answering.
struct Hold {
    write: bool,
    key: String,
    reached: Arc<Notify>,
    release: Arc<Notify>,
}

#[derive(Default)]
struct Script {
    mode: Mode,
    hold: Option<Hold>,
    after_write: Option<Hook>,
}

/// A `MemoryBackend` with a script.
#[derive(Default)]
pub struct Scripted {
    /// The backend beneath, for writes around the script.
    pub inner: Arc<MemoryBackend>,
    script: Mutex<Script>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted").finish_non_exhaustive()
    }
}

impl Scripted {
    pub fn set_mode(&self, mode: Mode) {
        self.script.lock().unwrap().mode = mode;
    }

    /// Holds the next `read` of `key` after the backend answered it:
    /// returns `(reached, release)`.
    pub fn hold_next_read(&self, key: &str) -> (Arc<Notify>, Arc<Notify>) {
        self.hold_next(false, key)
    }

    /// Holds the next `write` of `key` after the backend took it: returns
    /// `(reached, release)`.
    pub fn hold_next_write(&self, key: &str) -> (Arc<Notify>, Arc<Notify>) {
        self.hold_next(true, key)
    }

    fn hold_next(&self, write: bool, key: &str) -> (Arc<Notify>, Arc<Notify>) {
        let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        self.script.lock().unwrap().hold = Some(Hold {
            write,
            key: key.to_owned(),
            reached: Arc::clone(&reached),
            release: Arc::clone(&release),
        });
        (reached, release)
    }

    /// Runs `hook` after every write that reached the backend.
    pub fn after_write(&self, hook: Hook) {
        self.script.lock().unwrap().after_write = Some(hook);
    }

    async fn held(&self, write: bool, key: &str) {
        let hold = {
            let mut s = self.script.lock().unwrap();
            match &s.hold {
                Some(h) if h.write == write && h.key == key => s.hold.take(),
                _ => None,
            }
        };
        if let Some(h) = hold {
            h.reached.notify_one();
            h.release.notified().await;
        }
    }

    /// A change: per the mode.
    async fn changing<T>(&self, change: impl Future<Output = Result<T>>) -> Result<T> {
        let (mode, hook) = {
            let s = self.script.lock().unwrap();
            (s.mode, s.after_write.clone())
        };
        if mode == Mode::Fail {
            return Err(Error::backend("scripted", false, "scripted failure"));
        }
        let out = change.await?;
        if let Some(hook) = hook {
            hook().await;
        }
        if mode == Mode::HangAfter {
            std::future::pending::<()>().await;
        }
        Ok(out)
    }
}

#[async_trait]
impl Backend for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn read(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        let record = self.inner.read(namespace, key).await?;
        self.held(false, key).await;
        Ok(record)
    }

    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome> {
        let key = record.key.clone();
        let outcome = self
            .changing(self.inner.write(record, precondition))
            .await?;
        self.held(true, &key).await;
        Ok(outcome)
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome> {
        self.changing(self.inner.delete(namespace, key, precondition))
            .await
    }

    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        self.inner.scan(namespace, range, after, limit).await
    }

    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        self.inner.scan_keys(namespace, range, after, limit).await
    }

    // `apply_planned` keeps its default (read_many, then `apply` here).
    async fn apply(&self, ops: Vec<BatchOp>) -> Result<BatchOutcome> {
        self.changing(self.inner.apply(ops)).await
    }

    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        self.changing(self.inner.delete_range(namespace, range, now))
            .await
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        now: Timestamp,
    ) -> Result<i64> {
        self.changing(self.inner.increment(namespace, key, delta, now))
            .await
    }

    /// Appends strings in place (the memory backend has no such path),
    /// under the trait's rules: a live record, within `max_size`.
    async fn append_in_place(
        &self,
        namespace: &str,
        key: &str,
        piece: &Value,
        max_size: usize,
        now: Timestamp,
    ) -> Result<Option<u64>> {
        self.changing(async {
            let live = self.inner.read(namespace, key).await?;
            let Some(mut record) = live.filter(|r| !r.is_expired(now)) else {
                return Ok(None);
            };
            let (Value::String(mut s), Value::String(p)) = (record.decode_value()?, piece) else {
                return Ok(None);
            };
            s.push_str(p);
            let value = Value::String(s);
            if value.encode().len() > max_size {
                return Ok(None);
            }
            record.set_value(&value);
            record.meta.version += 1;
            record.meta.updated_at = now;
            let len = record.meta.size;
            self.inner.write(record, Precondition::Any).await?;
            Ok(Some(len))
        })
        .await
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        self.inner.namespaces().await
    }

    async fn stats(&self) -> Result<BackendStats> {
        self.inner.stats().await
    }
}
