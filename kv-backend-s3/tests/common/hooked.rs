//! An in-memory object store with hooks, for tests that need to act at
//! one moment of a backend call, count how it calls the store, or meet
//! the ways S3-compatible servers get conditional PUTs wrong.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result as OsResult,
};

/// What [`Hooked`] runs before it answers a HEAD request.
pub type Hook = Box<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// How [`Hooked`] treats conditional PUTs.
#[derive(Debug, Default)]
pub enum How {
    /// As S3 does.
    #[default]
    HonoursConditions,
    /// Ignores `If-None-Match` and `If-Match`: every PUT overwrites.
    IgnoresConditions,
    /// Honours `If-None-Match` but ignores `If-Match`.
    IgnoresIfMatch,
    /// Answers every conditional PUT with this HTTP status line.
    Refuses(&'static str),
    /// Answers conditional PUTs with 503 while the flag is set, then
    /// honours them.
    Unavailable(AtomicBool),
}

/// An in-memory store that treats conditional PUTs as `how` says, runs
/// `on_head` once, before it answers the first HEAD request after `armed`
/// is set, and counts its bulk-delete calls and the paths they carry. Its
/// name (`Display`) is `how`'s.
#[derive(Default)]
pub struct Hooked {
    inner: InMemory,
    pub how: How,
    pub armed: AtomicBool,
    pub on_head: OnceLock<Hook>,
    pub delete_calls: AtomicU64,
    pub deleted_paths: std::sync::Arc<AtomicU64>,
}

impl Hooked {
    pub fn new(how: How) -> Self {
        Hooked {
            how,
            ..Hooked::default()
        }
    }

    /// A store over a new `S3Store` of these objects (another host, when
    /// called twice), on `clock`.
    pub fn store(self: &std::sync::Arc<Self>, clock: &kv_core::ManualClock) -> kv_core::Store {
        let objects: std::sync::Arc<dyn ObjectStore> = self.clone();
        let backend = kv_backend_s3::S3Store::new(objects, kv_backend_s3::S3Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
        kv_core::Store::builder(std::sync::Arc::new(backend))
            .clock(clock.clone())
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl fmt::Debug for Hooked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.how)
    }
}

impl fmt::Display for Hooked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.how)
    }
}

fn status(line: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "Hooked",
        source: format!("Server returned non-2xx status code: {line}: conditional PUT").into(),
    }
}

#[async_trait]
impl ObjectStore for Hooked {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> OsResult<PutResult> {
        let conditional = !matches!(opts.mode, PutMode::Overwrite);
        match &self.how {
            How::IgnoresConditions => opts.mode = PutMode::Overwrite,
            How::IgnoresIfMatch => {
                if matches!(opts.mode, PutMode::Update(_)) {
                    opts.mode = PutMode::Overwrite;
                }
            }
            How::Refuses(line) if conditional => return Err(status(line)),
            How::Unavailable(on) if conditional && on.load(Ordering::SeqCst) => {
                return Err(status("503 Service Unavailable"))
            }
            How::HonoursConditions | How::Refuses(_) | How::Unavailable(_) => {}
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> OsResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> OsResult<GetResult> {
        if options.head && self.armed.swap(false, Ordering::SeqCst) {
            if let Some(hook) = self.on_head.get() {
                hook().await;
            }
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, OsResult<Path>>,
    ) -> BoxStream<'static, OsResult<Path>> {
        self.delete_calls.fetch_add(1, Ordering::SeqCst);
        let paths = std::sync::Arc::clone(&self.deleted_paths);
        let counted = locations
            .inspect(move |_| {
                paths.fetch_add(1, Ordering::SeqCst);
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, OsResult<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> OsResult<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> OsResult<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
