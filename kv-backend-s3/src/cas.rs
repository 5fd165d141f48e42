//! How conditional writes are made atomic: the probe, what was seen of
//! each object and the process-local fallback lock.
//!
//! **The probe.** Before the first conditional write (or on
//! [`S3Store::probe`](crate::S3Store::probe)) the backend checks that the
//! store honours conditional PUTs, on a fresh object under
//! `{prefix}/.kv-probe/`:
//!
//! 1. `PutMode::Create` succeeds;
//! 2. a second `PutMode::Create` fails with `AlreadyExists`;
//! 3. `PutMode::Update` with a made-up ETag fails with `Precondition`;
//! 4. `PutMode::Update` with the ETag from step 1 succeeds;
//!
//! then deletes the object. A store that passes gets
//! [`CasMechanism::ConditionalPut`](kv_core::CasMechanism::ConditionalPut):
//! `Precondition::Absent` is `PutMode::Create` (`If-None-Match: *`) and
//! `Precondition::Version(v)` is `PutMode::Update` with the ETag of the
//! object whose record has version `v` (`If-Match`), atomic across
//! processes and hosts. A store that fails gets
//! [`CasMechanism::Unsupported`](kv_core::CasMechanism::Unsupported)
//! — conditional writes are refused with `Error::Unsupported` rather than
//! silently losing updates — or, when the user opted in with
//! [`S3Options::allow_local_locking`](crate::S3Options::allow_local_locking),
//! [`CasMechanism::Lock`](kv_core::CasMechanism::Lock): a lock per object
//! (sharded mutexes) held across read-check-write, **atomic within this
//! process only**.
//!
//! **What was seen.** The backend remembers, per object, the ETag it last
//! saw and the record it carried, without the value (bounded by
//! [`S3Options::seen_objects`](crate::S3Options::seen_objects)). Three
//! things use it, and none trusts it blindly:
//!
//! - `write(Version(v))` sends the ETag seen with version `v` as
//!   `If-Match` without reading the object first;
//! - a plain `set` starts from the record seen
//!   ([`Backend::read_for_set`](kv_core::Backend::read_for_set)), so it is
//!   one conditional PUT instead of a GET and a PUT;
//! - `keys` and `count` take expiry and version from the record seen when
//!   the LIST shows the object still carries the ETag seen, and GET only
//!   the others.
//!
//! An ETag names one content of one object, so a match proves the entry
//! current. When another writer has changed the object since, `If-Match`
//! fails: the entry is dropped and the write reports
//! `PreconditionFailed`, and the store's read-modify-write loop reads the
//! object afresh and tries again.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kv_core::{Error, Record};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::error::{classify, map, refused, Failure};
use crate::layout::Layout;

/// How conditional writes are made atomic on this store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CasMode {
    /// The store honours `PutMode::Create` and `PutMode::Update`.
    Native,
    /// It does not; a lock in this process stands in (opted into).
    Local,
    /// It does not, and conditional writes are refused.
    Unsupported {
        /// What the probe saw.
        reason: String,
    },
}

/// Lock shards of the local fallback.
const LOCK_SHARDS: usize = 256;

/// What was last seen on an object: its ETag (or version) and its record
/// without the value.
#[derive(Debug)]
struct Seen {
    tag: UpdateVersion,
    head: Record,
}

/// Per-backend state of conditional writes.
#[derive(Debug)]
pub(crate) struct Cas {
    mode: tokio::sync::OnceCell<CasMode>,
    locks: Vec<tokio::sync::Mutex<()>>,
    seen: quick_cache::sync::Cache<Path, Arc<Seen>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Cas {
    /// State for a backend remembering up to `seen_objects` objects.
    pub(crate) fn new(seen_objects: usize) -> Cas {
        Cas {
            mode: tokio::sync::OnceCell::new(),
            locks: (0..LOCK_SHARDS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            seen: quick_cache::sync::Cache::new(seen_objects),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The mode, once probed.
    pub(crate) fn known(&self) -> Option<&CasMode> {
        self.mode.get()
    }

    /// The mode, probing the store the first time.
    pub(crate) async fn mode(
        &self,
        store: &dyn ObjectStore,
        layout: &Layout,
        allow_local_locking: bool,
    ) -> Result<&CasMode, Error> {
        self.mode
            .get_or_try_init(|| async {
                Ok(match probe(store, layout).await? {
                    Ok(()) => CasMode::Native,
                    Err(_) if allow_local_locking => CasMode::Local,
                    Err(reason) => CasMode::Unsupported { reason },
                })
            })
            .await
    }

    fn hash(&self, path: &Path) -> usize {
        self.hasher.hash_one(path) as usize
    }

    /// The fallback lock of `path`'s shard.
    pub(crate) async fn lock(&self, path: &Path) -> tokio::sync::MutexGuard<'_, ()> {
        self.locks[self.hash(path) % LOCK_SHARDS].lock().await
    }

    fn seen(&self, path: &Path) -> Option<Arc<Seen>> {
        self.seen.get(path)
    }

    /// The ETag last seen on `path` with record version `version`.
    pub(crate) fn cached(&self, path: &Path, version: u64) -> Option<UpdateVersion> {
        self.seen(path)
            .filter(|s| s.head.meta.version == version)
            .map(|s| s.tag.clone())
    }

    /// The record last seen on `path`, without its value.
    pub(crate) fn head(&self, path: &Path) -> Option<Record> {
        self.seen(path).map(|s| s.head.clone())
    }

    /// The record last seen on `path` (without its value) if the object
    /// still carries `e_tag`, as a listing says.
    pub(crate) fn head_if_tagged(&self, path: &Path, e_tag: &str) -> Option<Record> {
        self.seen(path)
            .filter(|s| s.tag.e_tag.as_deref() == Some(e_tag))
            .map(|s| s.head.clone())
    }

    /// Remembers that the object at `path` with this tag holds `record`.
    pub(crate) fn remember(&self, path: &Path, tag: UpdateVersion, record: &Record) {
        if tag.e_tag.is_none() && tag.version.is_none() {
            self.seen.remove(path);
            return;
        }
        let head = Record {
            namespace: record.namespace.clone(),
            key: record.key.clone(),
            value: Vec::new(),
            meta: record.meta.clone(),
            user: record.user.clone(),
        };
        self.seen.insert(path.clone(), Arc::new(Seen { tag, head }));
    }

    /// Forgets what was seen on `path`.
    pub(crate) fn forget(&self, path: &Path) {
        self.seen.remove(path);
    }
}

/// A name no other probe (in this or another process) uses.
pub(crate) fn probe_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::process::id().hash(&mut h);
    N.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .hash(&mut h);
    format!("probe-{:016x}", h.finish())
}

/// Checks that `store` honours conditional PUTs (see the
/// [module docs](self)). `Ok(Err(reason))` when it does not: it ignores
/// the conditions, or answers them with an HTTP status that refuses them
/// (a 4xx other than the condition's own failure, or 501). `Err` when the
/// store could not be asked: a plain PUT fails first (connection,
/// permissions), or a conditional one fails without such an answer
/// (connection, timeout, another 5xx); that `Err` is not remembered, so
/// the next conditional write probes again.
pub(crate) async fn probe(
    store: &dyn ObjectStore,
    layout: &Layout,
) -> Result<Result<(), String>, Error> {
    let plain = layout.probe_path(&probe_id());
    let path = layout.probe_path(&probe_id());
    let result = probe_steps(store, &plain, &path).await;
    // Best effort: a leftover probe object is harmless (it never lists as
    // a record) and tiny.
    let _ = store.delete(&plain).await;
    let _ = store.delete(&path).await;
    result
}

async fn probe_steps(
    store: &dyn ObjectStore,
    plain: &Path,
    path: &Path,
) -> Result<Result<(), String>, Error> {
    // 0. A plain PUT: the store can be reached and written to.
    store
        .put_opts(
            plain,
            PutPayload::from_static(b"kv probe 0"),
            PutOptions::default(),
        )
        .await
        .map_err(|e| map(e, &store.to_string()))?;
    let put = |body, mode, what| attempt(store, path, body, mode, what);
    // 1. Create on a fresh name.
    let what = "PutMode::Create of a fresh object name";
    let first = match put("kv probe 1", PutMode::Create, what).await? {
        Ok(Got::Stored(r)) => r,
        Ok(Got::Conflict | Got::NotFound) => return Ok(Err(format!("{what} failed"))),
        Err(why) => return Ok(Err(why)),
    };
    // 2. A second Create must fail.
    match put("kv probe 2", PutMode::Create, "a second PutMode::Create").await? {
        Ok(Got::Conflict) => {}
        Ok(Got::Stored(_)) => {
            return Ok(Err(
                "a second PutMode::Create of one object succeeded (If-None-Match is ignored)"
                    .into(),
            ))
        }
        Ok(Got::NotFound) => {
            return Ok(Err(
                "a second PutMode::Create failed with NotFound instead of AlreadyExists".into(),
            ))
        }
        Err(why) => return Ok(Err(why)),
    }
    // 3. Update with a stale ETag must fail.
    let stale = UpdateVersion {
        e_tag: Some("\"kv-probe-stale-etag\"".into()),
        version: None,
    };
    let what = "PutMode::Update with a stale ETag";
    match put("kv probe 3", PutMode::Update(stale), what).await? {
        Ok(Got::Conflict | Got::NotFound) => {}
        Ok(Got::Stored(_)) => {
            return Ok(Err(format!("{what} succeeded (If-Match is ignored)")));
        }
        Err(why) => return Ok(Err(why)),
    }
    // 4. Update with the current ETag must succeed.
    if first.e_tag.is_none() && first.version.is_none() {
        return Ok(Err("PUT returned neither an ETag nor a version".into()));
    }
    let what = "PutMode::Update with the current ETag";
    Ok(
        match put("kv probe 4", PutMode::Update(first.into()), what).await? {
            Ok(Got::Stored(_)) => Ok(()),
            Ok(Got::Conflict | Got::NotFound) => Err(format!("{what} failed")),
            Err(why) => Err(why),
        },
    )
}

/// What a conditional PUT of the probe got from the store.
enum Got {
    Stored(object_store::PutResult),
    /// The condition did not hold.
    Conflict,
    NotFound,
}

/// One conditional PUT of the probe, `what` naming it. `Ok(Err(reason))`
/// when the store does not implement the mode or answers it with a status
/// that refuses it; `Err` when the store could not be asked.
async fn attempt(
    store: &dyn ObjectStore,
    path: &Path,
    body: &'static str,
    mode: PutMode,
    what: &str,
) -> Result<Result<Got, String>, Error> {
    let mode_name = match mode {
        PutMode::Create => "PutMode::Create",
        _ => "PutMode::Update",
    };
    let opts = PutOptions {
        mode,
        ..PutOptions::default()
    };
    let e = match store
        .put_opts(path, PutPayload::from_static(body.as_bytes()), opts)
        .await
    {
        Ok(r) => return Ok(Ok(Got::Stored(r))),
        Err(e) => e,
    };
    let why = refusal(&e, what);
    Ok(Ok(match classify(e, &store.to_string()) {
        Failure::Conflict => Got::Conflict,
        Failure::NotFound => Got::NotFound,
        Failure::Other(Error::Unsupported { .. }) => {
            return Ok(Err(format!("{mode_name} is not implemented")))
        }
        Failure::Other(e) => return why.map_or(Err(e), |r| Ok(Err(r))),
    }))
}

/// Why a conditional PUT counts as refused, when the store answered it
/// with a status that refuses the request (see [`refused`]).
fn refusal(e: &object_store::Error, what: &str) -> Option<String> {
    refused(e).then(|| format!("{what} was refused: {e}"))
}
