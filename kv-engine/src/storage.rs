//! Storage I/O behind a small trait, so tests can fail the N-th write or
//! fsync (as redb's crash tests do) without touching the engine.
//!
//! [`RealStorage`] is the file system. [`FaultyStorage`] wraps it and fails
//! a chosen write or sync with a chosen error (ENOSPC, EIO, …), optionally
//! after writing part of the buffer, as a full disk does.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create (truncating any existing file) for appending.
    Create,
    /// Open an existing file for appending.
    Append,
    /// Open an existing file read-only.
    Read,
}

/// An open file.
#[allow(clippy::len_without_is_empty)] // a file, not a collection
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Appends all of `buf` (writes at the current position of a file
    /// opened with [`OpenMode::Create`]).
    fn write_all(&self, buf: &[u8]) -> io::Result<()>;
    /// Writes all of `buf` at `offset` (files opened with
    /// [`OpenMode::Create`] only).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Flushes the file's data (and the metadata needed to read it) to
    /// stable storage.
    fn sync_data(&self) -> io::Result<()>;
    /// Reads at `offset` into `buf`; returns the bytes read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The file's length.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// A held lock; dropping it releases the lock.
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// The file-system operations the engine uses.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Renames a file (atomically replacing `to`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Flushes a directory's entries (after creating, renaming or removing
    /// files in it).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Names of the files in a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Takes an advisory lock on `path` (created if missing): exclusive, or
    /// shared. `Ok(None)` when another handle or process holds it.
    fn lock(&self, path: &Path, exclusive: bool) -> io::Result<Option<Box<dyn LockGuard>>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealStorage;

#[derive(Debug)]
pub(crate) struct RealFile(pub(crate) File);

impl StorageFile for RealFile {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        (&self.0).write_all(buf)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// An `flock`-style lock held through an open file: released on drop and
/// by the kernel when the process dies.
#[derive(Debug)]
struct FileLock(File);

impl Drop for FileLock {
    fn drop(&mut self) {
        // Unlock explicitly rather than only closing the file: a child
        // process forked by another thread shares the open file (until it
        // execs), and closing our descriptor alone would leave the lock
        // held through its copy.
        let _ = self.0.unlock();
    }
}

impl LockGuard for FileLock {}

impl Storage for RealStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let file = match mode {
            OpenMode::Create => OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(path)?,
            OpenMode::Append => OpenOptions::new().read(true).append(true).open(path)?,
            OpenMode::Read => OpenOptions::new().read(true).open(path)?,
        };
        Ok(Arc::new(RealFile(file)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn lock(&self, path: &Path, exclusive: bool) -> io::Result<Option<Box<dyn LockGuard>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let taken = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match taken {
            Ok(()) => Ok(Some(Box::new(FileLock(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Which operation [`FaultyStorage`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The N-th write (`write_all` or `write_at`, 1-based) across all
    /// files.
    Write(u64),
    /// The N-th sync (file `sync_data` or `sync_dir`, 1-based).
    Sync(u64),
}

#[derive(Debug)]
struct FaultState {
    fault: Option<Fault>,
    errno: i32,
    partial: bool,
    writes: AtomicU64,
    syncs: AtomicU64,
    fired: AtomicBool,
}

/// Real storage that fails one chosen operation with a chosen OS error, and
/// every later write and sync too (a disk that failed stays failed).
/// Clones share counters.
#[derive(Debug, Clone)]
pub struct FaultyStorage {
    inner: RealStorage,
    state: Arc<FaultState>,
}

/// `ENOSPC`: no space left on the device.
pub const ENOSPC: i32 = 28;
/// `EIO`: an I/O error.
pub const EIO: i32 = 5;

impl FaultyStorage {
    /// Fails `fault` with OS error `errno`. With `partial`, a failing write
    /// (`write_all` or `write_at`) first writes half of its buffer, as a
    /// full disk does.
    pub fn new(fault: Option<Fault>, errno: i32, partial: bool) -> Self {
        FaultyStorage {
            inner: RealStorage,
            state: Arc::new(FaultState {
                fault,
                errno,
                partial,
                writes: AtomicU64::new(0),
                syncs: AtomicU64::new(0),
                fired: AtomicBool::new(false),
            }),
        }
    }

    /// Never fails; only counts (to learn how many writes a workload makes).
    pub fn counting() -> Self {
        Self::new(None, EIO, false)
    }

    /// Writes seen so far.
    pub fn writes(&self) -> u64 {
        self.state.writes.load(Ordering::SeqCst)
    }

    /// Syncs seen so far.
    pub fn syncs(&self) -> u64 {
        self.state.syncs.load(Ordering::SeqCst)
    }

    /// Whether the fault has fired.
    pub fn fired(&self) -> bool {
        self.state.fired.load(Ordering::SeqCst)
    }

    fn error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.state.errno)
    }

    fn check_sync(&self) -> io::Result<()> {
        let n = self.state.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fired() || self.state.fault == Some(Fault::Sync(n)) {
            self.state.fired.store(true, Ordering::SeqCst);
            return Err(self.error());
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    storage: FaultyStorage,
}

impl FaultyFile {
    /// One write, `write` doing it on the file beneath: counted, and when
    /// it is the one to fail (or the storage already failed), half of it
    /// is written first with `partial`, and the error returned.
    fn write(&self, buf: &[u8], write: impl Fn(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let s = &self.storage.state;
        let n = s.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.storage.fired() || s.fault == Some(Fault::Write(n)) {
            s.fired.store(true, Ordering::SeqCst);
            if s.partial && buf.len() > 1 {
                write(&buf[..buf.len() / 2])?;
            }
            return Err(self.storage.error());
        }
        write(buf)
    }
}

impl StorageFile for FaultyFile {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.write(buf, |b| self.inner.write_all(b))
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write(buf, |b| self.inner.write_at(b, offset))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.storage.check_sync()?;
        self.inner.sync_data()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let inner = self.inner.open(path, mode)?;
        Ok(Arc::new(FaultyFile {
            inner,
            storage: self.clone(),
        }))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.check_sync()?;
        self.inner.sync_dir(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn lock(&self, path: &Path, exclusive: bool) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.inner.lock(path, exclusive)
    }
}
