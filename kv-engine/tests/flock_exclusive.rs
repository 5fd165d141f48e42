//! The directory lock is exclusive, across processes and within one, and
//! dies with its holder.
//!
//! The test binary re-runs itself as the other process: the parent spawns
//! `current_exe() child_holder --exact --nocapture --test-threads=1` with
//! `KV_FLOCK_CHILD_DIR` set, and that `#[test]` (a no-op without the
//! variable) opens the database, writes a key, prints `@READY` and waits
//! for EOF on stdin. It proves:
//!
//! - while another process holds the database, `Db::open` fails with
//!   `Error::Locked` naming the directory, and so does a read-only open
//!   (the writer's lock is exclusive);
//! - after the holder is SIGKILLed, the kernel releases the lock: the open
//!   succeeds and sees what the holder wrote;
//! - a holder that exits normally (stdin closed) releases it as well;
//! - the other way round, while this process holds the database, the
//!   child's open fails with `Locked` too;
//! - within one process, a second open (writer or read-only) while the
//!   first handle is open fails with `Locked`, and succeeds after
//!   `close()` (or after the last clone is dropped); read-only opens share
//!   the lock with each other but keep a writer out.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kv_engine::{Db, Error, Options};

const CHILD_DIR_ENV: &str = "KV_FLOCK_CHILD_DIR";
const CHILD_MODE_ENV: &str = "KV_FLOCK_CHILD_MODE";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The tests of this file run one at a time: a process spawned by one test
/// shares, between its `fork` and its `exec`, every descriptor of this
/// process — the lock files of the others' databases included — which is
/// what the last test is about, and must not disturb the others.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

/// The other process. Does nothing unless `KV_FLOCK_CHILD_DIR` is set.
///
/// - mode `hold`: open, write `holder=child`, print `@READY`, wait for EOF on
///   stdin, close, print `@CLOSED`;
/// - mode `probe`: try to open once; print `@LOCKED <message>` or
///   `@OPENED`.
#[test]
fn child_holder() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let mode = std::env::var(CHILD_MODE_ENV).unwrap();
    match mode.as_str() {
        "hold" => {
            let db = Db::open(Options::new(&dir)).unwrap();
            db.set(b"holder", b"child").unwrap();
            emit("@READY");
            let mut sink = Vec::new();
            std::io::stdin().read_to_end(&mut sink).unwrap();
            db.close().unwrap();
            emit("@CLOSED");
        }
        "probe" => match Db::open(Options::new(&dir)) {
            Err(e @ Error::Locked { .. }) => emit(&format!("@LOCKED {e}")),
            Err(e) => emit(&format!("@ERROR {e}")),
            Ok(db) => {
                db.close().unwrap();
                emit("@OPENED");
            }
        },
        other => panic!("unknown child mode {other:?}"),
    }
}

/// A running child; killed and reaped if the test fails half-way.
struct ChildProc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildProc {
    fn spawn(dir: &Path, mode: &str) -> ChildProc {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["child_holder", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir)
            .env(CHILD_MODE_ENV, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness prints `test child_holder ... ` without a
                // newline first: protocol lines start at the `@`.
                if let Some(at) = line.find('@') {
                    if tx.send(line[at..].to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        ChildProc { child, lines }
    }

    /// The next protocol line; fails the test after a minute.
    fn next_line(&self, waiting_for: &str) -> String {
        self.lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no {waiting_for} from the child: {e}"))
    }

    fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "the child died by SIGKILL");
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts `Db::open(opts)` fails with `Locked` for `dir`, the message
/// naming it.
fn assert_locked(opts: Options, dir: &Path, what: &str) {
    match Db::open(opts) {
        Err(e @ Error::Locked { .. }) => {
            let Error::Locked { path } = &e else {
                unreachable!()
            };
            assert_eq!(path, dir, "{what}: Locked names the directory");
            let msg = e.to_string();
            assert!(
                msg.contains(&dir.display().to_string()),
                "{what}: the message {msg:?} names {}",
                dir.display()
            );
        }
        Err(e) => panic!("{what}: expected Error::Locked, got {e:?}"),
        Ok(db) => {
            let _ = db.close();
            panic!("{what}: expected Error::Locked, but the open succeeded");
        }
    }
}

/// Runs a `probe` child and returns its verdict line.
fn probe(dir: &Path) -> String {
    let mut p = ChildProc::spawn(dir, "probe");
    let verdict = p.next_line("probe verdict");
    let status = p.child.wait().unwrap();
    assert!(status.success(), "the probe child exited with {status:?}");
    verdict
}

#[test]
fn another_process_holding_the_lock_keeps_this_one_out_until_it_dies() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");

    // A holder that is killed.
    let mut holder = ChildProc::spawn(&dir, "hold");
    assert_eq!(holder.next_line("@READY"), "@READY");
    assert_locked(
        Options::new(&dir),
        &dir,
        "writer open while a process holds it",
    );
    assert_locked(
        Options::new(&dir).read_only(true),
        &dir,
        "read-only open while a writer process holds it",
    );
    // Still locked on a second try: a failed open leaves no trace.
    assert_locked(Options::new(&dir), &dir, "second writer open");
    holder.kill();

    // The kernel dropped the dead process's lock.
    let db = Db::open(Options::new(&dir)).unwrap();
    assert_eq!(db.get(b"holder").unwrap(), Some(b"child".to_vec()));
    // And now this process keeps the child out.
    let verdict = probe(&dir);
    assert!(
        verdict.starts_with("@LOCKED ") && verdict.contains(&dir.display().to_string()),
        "a child's open while this process holds the database: {verdict}"
    );
    db.set(b"holder", b"parent").unwrap();
    db.close().unwrap();
    assert_eq!(probe(&dir), "@OPENED", "after close() the child can open");

    // A holder that exits normally releases it too.
    let mut holder = ChildProc::spawn(&dir, "hold");
    assert_eq!(holder.next_line("@READY"), "@READY");
    assert_locked(
        Options::new(&dir),
        &dir,
        "open while the second holder lives",
    );
    drop(holder.child.stdin.take()); // EOF: the holder closes and exits
    assert_eq!(holder.next_line("@CLOSED"), "@CLOSED");
    let status = holder.child.wait().unwrap();
    assert!(status.success(), "the holder exited with {status:?}");
    let db = Db::open(Options::new(&dir)).unwrap();
    assert_eq!(db.get(b"holder").unwrap(), Some(b"child".to_vec()));
    db.close().unwrap();
}

#[test]
fn a_second_open_in_the_same_process_is_locked_until_close() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();

    let db = Db::open(Options::new(&dir)).unwrap();
    db.set(b"k", b"v").unwrap();
    assert_locked(Options::new(&dir), &dir, "second writer open in-process");
    assert_locked(
        Options::new(&dir).read_only(true),
        &dir,
        "read-only open in-process while a writer is open",
    );
    // The first handle is unharmed by the failed opens.
    assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
    db.close().unwrap();

    // After close() the lock is free.
    let db = Db::open(Options::new(&dir)).unwrap();
    assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));

    // A clone keeps it held; dropping the last one releases it.
    let clone = db.clone();
    drop(db);
    assert_locked(Options::new(&dir), &dir, "open while a clone lives");
    drop(clone);
    let db = Db::open(Options::new(&dir)).unwrap();
    db.close().unwrap();

    // Read-only opens share the lock with each other, not with a writer.
    let r1 = Db::open(Options::new(&dir).read_only(true)).unwrap();
    let r2 = Db::open(Options::new(&dir).read_only(true)).unwrap();
    assert_eq!(r2.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_locked(
        Options::new(&dir),
        &dir,
        "writer open while readers hold it",
    );
    r1.close().unwrap();
    assert_locked(
        Options::new(&dir),
        &dir,
        "writer open while one reader still holds it",
    );
    r2.close().unwrap();
    let db = Db::open(Options::new(&dir)).unwrap();
    db.close().unwrap();
}

/// `close()` releases the lock at once even when another thread of this
/// process is spawning children: a child shares this process's descriptors
/// (the lock file's included, `O_CLOEXEC` or not) from its `fork` until its
/// `exec`, so merely closing the lock file's descriptor can leave the
/// `flock` held for that window, and the next open fails with `Locked`.
/// Applications that run subprocesses (and parallel tests that do) hit
/// this.
#[test]
fn close_releases_the_lock_while_another_thread_spawns_processes() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let exe = std::env::current_exe().unwrap();
            let mut spawned = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // `--list` prints the test names and exits: a cheap child.
                let status = Command::new(&exe)
                    .arg("--list")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
                spawned += 1;
            }
            spawned
        })
    };
    let cycles = 300;
    let started = Instant::now();
    let mut failures = Vec::new();
    for i in 0..cycles {
        match Db::open(Options::new(&dir)) {
            Ok(db) => {
                db.set(b"cycle", i.to_string().as_bytes()).unwrap();
                db.close().unwrap();
            }
            Err(e) => failures.push((i, e)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let spawned = spawner.join().unwrap();
    println!(
        "flock_exclusive: {cycles} open/close cycles in {:.1?} while {spawned} processes were \
         spawned; {} opens failed",
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cycles} opens right after close() failed while another thread spawned \
         {spawned} processes; first: cycle {} {:?}",
        failures.len(),
        failures[0].0,
        failures[0].1
    );
}
