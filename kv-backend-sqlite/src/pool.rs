//! Connections on their own threads, so no SQLite call ever blocks an async
//! executor thread.
//!
//! One writer connection (SQLite allows one writer at a time anyway, so
//! writes in this process never wait on each other's locks) and a few
//! reader connections sharing one queue. A call sends a job — a closure over
//! the connection — and awaits its result on a oneshot channel. Threads
//! drain their queue without sleeping while jobs keep coming, so under load
//! the hand-off costs a queue push and pop.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, RwLock};
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

pub(crate) struct Pool {
    writer: RwLock<Option<Sender<Job>>>,
    readers: RwLock<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

fn run(mut conn: Connection, jobs: Receiver<Job>) {
    for job in jobs {
        // A job that panics drops its result channel (the caller gets an
        // error); the connection and thread live on for the next job.
        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
    }
}

fn spawn(name: String, conn: Connection, jobs: Receiver<Job>) -> Result<JoinHandle<()>> {
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
        threads.push(spawn("kv-sqlite-writer".into(), writer, wrx)?);
        let reader_tx = if readers.is_empty() {
            None
        } else {
            let (rtx, rrx) = crossbeam_channel::unbounded::<Job>();
            for (i, conn) in readers.into_iter().enumerate() {
                threads.push(spawn(format!("kv-sqlite-read{i}"), conn, rrx.clone())?);
            }
            Some(rtx)
        };
        Ok(Pool {
            writer: RwLock::new(Some(wtx)),
            readers: RwLock::new(reader_tx),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on a connection of `role`'s kind and returns its result.
    pub(crate) async fn call<T: Send + 'static>(
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
        rx.await.map_err(|_| {
            Error::backend(
                "sqlite",
                false,
                "the SQLite worker thread stopped before answering (a panic in a job)",
            )
        })?
    }

    /// Stops taking jobs, lets the threads finish what is queued, and joins
    /// them (their connections close as they exit).
    pub(crate) fn close(&self) {
        self.writer
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.readers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Whether the pool has no reader connections (everything on the
    /// writer).
    pub(crate) fn single_connection(&self) -> bool {
        self.readers.read().map(|r| r.is_none()).unwrap_or(true)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}
