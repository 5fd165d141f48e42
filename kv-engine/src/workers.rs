//! Background threads: periodic fsync, the TTL cleaner and compaction.
//!
//! Each runs until [`Workers::stop`], which wakes and joins them all, so no
//! thread outlives the database. They share one signal (a mutex and a
//! condition variable) for stopping and for compaction requests.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::db::Inner;
use crate::options::SyncMode;

#[derive(Debug, Default)]
struct SignalState {
    stop: bool,
    compact: bool,
}

/// Stop and compaction requests for the workers.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
    cv: Condvar,
}

impl Signal {
    /// Waits up to `timeout`; returns `true` when asked to stop.
    fn sleep(&self, timeout: Duration) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.stop {
            return true;
        }
        let (st, _) = self
            .cv
            .wait_timeout(st, timeout)
            .unwrap_or_else(|e| e.into_inner());
        st.stop
    }

    /// Waits for a compaction request; returns `false` when asked to stop.
    fn wait_compaction(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.stop {
                return false;
            }
            if st.compact {
                st.compact = false;
                return true;
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Asks the compaction thread to compact (a no-op without one).
pub(crate) fn request_compaction(inner: &Inner) {
    let mut st = inner.signal.state.lock().unwrap_or_else(|e| e.into_inner());
    st.compact = true;
    drop(st);
    inner.signal.cv.notify_all();
}

/// The running background threads.
#[derive(Debug)]
pub(crate) struct Workers {
    signal: Arc<Signal>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    pub(crate) fn start(inner: &Arc<Inner>) -> Workers {
        let signal = Arc::clone(&inner.signal);
        let mut threads = Vec::new();
        let opts = &inner.opts;
        if opts.read_only {
            return Workers { signal, threads };
        }
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("kv-engine-{name}"))
                .spawn(f)
        };
        if let SyncMode::Periodic(interval) = opts.sync {
            let inner = Arc::clone(inner);
            if let Ok(t) = spawn(
                "sync",
                Box::new(move || {
                    while !inner.signal.sleep(interval) {
                        if inner.check_writable().is_err() {
                            return;
                        }
                        // A failure poisons the database; writers see it.
                        let _ = inner.sync_now();
                    }
                }),
            ) {
                threads.push(t);
            }
        }
        if opts.enforce_ttl {
            let inner = Arc::clone(inner);
            if let Ok(t) = spawn(
                "ttl",
                Box::new(move || {
                    let (interval, budget) = (inner.opts.ttl_interval, inner.opts.ttl_budget);
                    while !inner.signal.sleep(interval) {
                        if inner.check_writable().is_err() {
                            return;
                        }
                        let now = inner.opts.clock.now();
                        let _ = inner.remove_expired(now, Some(Instant::now() + budget));
                    }
                }),
            ) {
                threads.push(t);
            }
        }
        if opts.background_compaction {
            let inner = Arc::clone(inner);
            if let Ok(t) = spawn(
                "compaction",
                Box::new(move || {
                    while inner.signal.wait_compaction() {
                        if inner.check_writable().is_err() {
                            return;
                        }
                        let _ = crate::compaction::compact(&inner);
                    }
                }),
            ) {
                threads.push(t);
            }
        }
        Workers { signal, threads }
    }

    /// Stops every thread and waits for it.
    pub(crate) fn stop(self) {
        {
            let mut st = self.signal.state.lock().unwrap_or_else(|e| e.into_inner());
            st.stop = true;
        }
        self.signal.cv.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}
