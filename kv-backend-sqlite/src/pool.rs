//! Connections on their own threads, so no SQLite call ever blocks an async
//! executor thread.
//!
//! One writer connection (SQLite allows one writer at a time anyway, so
//! writes in this process never wait on each other's locks) and a few
//! reader connections sharing one queue. A call sends a job — a closure over
//! the connection — and awaits its result on a oneshot channel. Threads
//! drain their queue without sleeping while jobs keep coming, so under load
//! the hand-off costs a queue push and pop.
//!
//! Calls have a faster path. Waking a connection's thread and then the
//! waiting task costs two thread wake-ups (about 50 µs here), more than a
//! primary-key lookup or a small write itself. So on a multi-threaded tokio
//! runtime a read takes an idle reader connection, and a write the writer
//! connection when no other write holds it, directly and runs inside
//! [`tokio::task::block_in_place`]: the calling worker thread hands its
//! other tasks to another thread before it touches SQLite, so the executor
//! keeps running while the call blocks. Writes stay serialised by the
//! writer connection's lock. When the connections are busy, the call waits
//! for one the same way, inside `block_in_place` (one wake-up when the
//! connection comes free), up to [`MAX_WAITERS`] callers at once; beyond
//! that, and on a current-thread runtime (where `block_in_place` is not
//! allowed), the call is queued like any job, so the number of threads
//! stays bounded however many callers there are.
//!
//! Because calls run in place, the backend declares
//! `Cooperation::InPlace`: the store makes a looping task yield once it
//! has run `IN_PLACE_YIELD_INTERVAL` (2 ms) instead of every 128 calls.
//! While callers wait for busy connections, [`Pool::cooperate`] spends
//! Tokio's budget as well.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;

use kv_core::{Error, Result};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Where a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The writer connection.
    Write,
    /// Any reader connection (the writer when there are none).
    Read,
}

type Shared = Arc<Mutex<Connection>>;

pub(crate) struct Pool {
    writer: RwLock<Option<Sender<Job>>>,
    readers: RwLock<Option<Sender<Job>>>,
    /// The reader connections, for reads run in place.
    reader_conns: InPlace,
    /// The writer connection, for writes run in place.
    writer_conn: InPlace,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

fn run(conn: Shared, jobs: Receiver<Job>) {
    for job in jobs {
        // A job that panics drops its result channel (the caller gets an
        // error); the connection and thread live on for the next job.
        let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
    }
}

fn spawn(name: String, conn: Shared, jobs: Receiver<Job>) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || run(conn, jobs))
        .map_err(|e| Error::io("starting a SQLite worker thread", e))
}

impl Pool {
    /// Starts one thread per connection.
    pub(crate) fn start(writer: Connection, readers: Vec<Connection>) -> Result<Pool> {
        let mut threads = Vec::new();
        let (wtx, wrx) = crossbeam_channel::unbounded::<Job>();
        let writer = Arc::new(Mutex::new(writer));
        threads.push(spawn("kv-sqlite-writer".into(), Arc::clone(&writer), wrx)?);
        let readers: Vec<Shared> = readers
            .into_iter()
            .map(|c| Arc::new(Mutex::new(c)))
            .collect();
        let reader_tx = if readers.is_empty() {
            None
        } else {
            let (rtx, rrx) = crossbeam_channel::unbounded::<Job>();
            for (i, conn) in readers.iter().enumerate() {
                threads.push(spawn(
                    format!("kv-sqlite-read{i}"),
                    Arc::clone(conn),
                    rrx.clone(),
                )?);
            }
            Some(rtx)
        };
        Ok(Pool {
            writer: RwLock::new(Some(wtx)),
            readers: RwLock::new(reader_tx),
            reader_conns: InPlace::new(readers),
            writer_conn: InPlace::new(vec![writer]),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on a connection of `role`'s kind and returns its result.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        role: Role,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.cooperate(role).await;
        let f = match role {
            Role::Read => self.read_in_place(f),
            Role::Write => self.write_in_place(f),
        };
        match f {
            Ok(done) => done,
            Err(f) => self.queue(role, f).await,
        }
    }

    /// Queues `f` for a connection's thread of `role`'s kind and awaits its
    /// result (no yield point of its own: see [`Pool::cooperate`]).
    pub(crate) async fn queue<T: Send + 'static>(
        &self,
        role: Role,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        let closed = || Error::Closed {
            backend: "sqlite".into(),
        };
        {
            let read_pool = if role == Role::Read {
                self.readers.read().unwrap_or_else(|e| e.into_inner())
            } else {
                self.writer.read().unwrap_or_else(|e| e.into_inner())
            };
            let sender = match read_pool.as_ref() {
                Some(s) => s.clone(),
                None if role == Role::Read => {
                    drop(read_pool);
                    let w = self.writer.read().unwrap_or_else(|e| e.into_inner());
                    w.as_ref().ok_or_else(closed)?.clone()
                }
                None => return Err(closed()),
            };
            sender.send(job).map_err(|_| closed())?;
        }
        rx.await.map_err(|_| job_panicked())?
    }

    /// A yield point for calls contending for `role`'s connections.
    ///
    /// The store yields rarely between calls to this backend
    /// (`Cooperation::InPlace`), which saves the 1-task caller a thread
    /// change every 128 calls. While callers wait for busy connections,
    /// each call spends Tokio's budget as well (a yield every 128 calls):
    /// a task that takes a connection again and again for 2 ms makes the
    /// threads waiting for it wake for nothing, and measured worse (see
    /// docs/performance.md).
    pub(crate) async fn cooperate(&self, role: Role) {
        let conns = match role {
            Role::Read => &self.reader_conns,
            Role::Write => &self.writer_conn,
        };
        if conns.waiters.load(Ordering::Relaxed) > 0 {
            tokio::task::coop::consume_budget().await;
        }
    }

    /// Runs `f` on a reader connection on this thread, waiting for one if
    /// all are busy (see [`InPlace::run`]), or gives it back when that is
    /// not possible. `f` may borrow: it runs before this returns.
    pub(crate) fn read_in_place<T, F>(&self, f: F) -> std::result::Result<Result<T>, F>
    where
        F: FnOnce(&mut Connection) -> Result<T>,
    {
        self.reader_conns.run(f)
    }

    /// Runs `f` on the writer connection on this thread, waiting for it if
    /// another write holds it (see [`InPlace::run`]), or gives it back.
    /// Writes stay serialised by the connection's lock either way; this
    /// only saves the hand-over to the writer thread and back.
    pub(crate) fn write_in_place<T, F>(&self, f: F) -> std::result::Result<Result<T>, F>
    where
        F: FnOnce(&mut Connection) -> Result<T>,
    {
        self.writer_conn.run(f)
    }

    /// Stops taking jobs, lets the threads finish what is queued, and joins
    /// them (their connections close as they exit). Blocks: call it from a
    /// thread that may.
    pub(crate) fn close(&self) {
        self.stop();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Stops taking jobs; the threads finish what is queued and exit.
    ///
    /// The handles for calls in place go first (waiting for the calls
    /// running on them), so that each thread holds the last reference to
    /// its connection and closes it itself as it exits: closing the
    /// writer checkpoints the WAL and syncs, which must not happen on
    /// whatever thread stopped the pool.
    fn stop(&self) {
        self.reader_conns.clear();
        self.writer_conn.clear();
        self.writer
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.readers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Whether the pool has no reader connections (everything on the
    /// writer).
    pub(crate) fn single_connection(&self) -> bool {
        self.readers.read().map(|r| r.is_none()).unwrap_or(true)
    }
}

/// Most calls that wait in place for the busy connections of one kind
/// (readers, or the writer). Each waits on its own thread
/// (`block_in_place` hands the worker's other tasks to a fresh one); a
/// sleeping thread is cheap, but beyond this the call is queued for the
/// connections' threads instead, so many concurrent callers never mean as
/// many threads.
pub(crate) const MAX_WAITERS: usize = 32;

/// Connections of one kind that calls run on in place, and the calls
/// waiting for one of them.
struct InPlace {
    /// Empty once closed.
    conns: RwLock<Vec<Shared>>,
    waiters: AtomicUsize,
}

impl InPlace {
    fn new(conns: Vec<Shared>) -> Self {
        InPlace {
            conns: RwLock::new(conns),
            waiters: AtomicUsize::new(0),
        }
    }

    /// No more calls in place; waits for those running.
    fn clear(&self) {
        self.conns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Runs `f` inside `block_in_place` on the first connection that no one
    /// holds; when all are held, waits there for one of them (up to
    /// [`MAX_WAITERS`] callers wait like this). Gives `f` back on a
    /// current-thread runtime (where `block_in_place` is not allowed), when
    /// that many callers already wait, and once closed.
    ///
    /// Waiting on the connection's lock costs one thread wake-up when it
    /// comes free; a job queued for the connection's thread costs two (that
    /// thread, then the awaiting task), which on this kind of VM is tens of
    /// µs.
    fn run<T, F>(&self, f: F) -> std::result::Result<Result<T>, F>
    where
        F: FnOnce(&mut Connection) -> Result<T>,
    {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !multi_thread {
            return Err(f);
        }
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        for conn in conns.iter() {
            if let Ok(mut guard) = conn.try_lock() {
                // `conns` stays locked for reading: `close` waits for this.
                return Ok(tokio::task::block_in_place(move || run_job(f, &mut guard)));
            }
        }
        /// Counts a caller in `waiters` while it waits and runs.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let waiting = self.waiters.fetch_add(1, Ordering::AcqRel);
        let _counted = Waiting(&self.waiters);
        if waiting >= MAX_WAITERS || conns.is_empty() {
            return Err(f);
        }
        // Spread the waiters over the connections.
        let conn = &conns[waiting % conns.len()];
        Ok(tokio::task::block_in_place(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            run_job(f, &mut guard)
        }))
    }
}

/// Runs a job on a connection; a panic becomes an error.
fn run_job<T>(f: impl FnOnce(&mut Connection) -> Result<T>, conn: &mut Connection) -> Result<T> {
    catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| Err(job_panicked()))
}

fn job_panicked() -> Error {
    Error::backend(
        "sqlite",
        false,
        "a SQLite job panicked before answering (a bug: please report it)",
    )
}

impl Drop for Pool {
    /// Stops the pool without waiting for it: a store is often dropped on
    /// an async executor thread, and joining the threads there would wait
    /// for every queued job (each up to `busy_timeout`) and for the
    /// connections' closing. The threads are detached; each finishes its
    /// queue, closes its connection and exits on its own. `close` is the
    /// way to wait for all of that.
    fn drop(&mut self) {
        self.stop();
        // Dropping the handles detaches the threads.
        self.threads
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
