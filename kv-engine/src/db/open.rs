//! Opening a database: the lock, the MANIFEST, the snapshot, WAL replay
//! (torn tails cut, corruption reported), and cleaning up what a crash left.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::manifest::{Manifest, MANIFEST, MANIFEST_TMP};
use crate::options::Options;
use crate::snapshot::{self, parse_snapshot_name};
use crate::stats::Counters;
use crate::storage::Storage;
use crate::wal::reader::{self, Change};
use crate::wal::writer::{parse_segment_name, segment_name, WalWriter};
use crate::workers::{Signal, Workers};

use super::commit::now_ms;
use super::{Db, GroupCommit, Handle, Inner, LOCK_FILE, OPEN};

impl Db {
    /// Opens (or creates) the database in `opts.path`.
    ///
    /// Recovery loads the snapshot the MANIFEST names and replays the WAL
    /// segments after it. A torn tail of the newest segment is cut off (and
    /// the file truncated, so every later open sees the same); a bad record
    /// followed by valid ones is [`Error::Corruption`]. Another open handle,
    /// in this or another process, makes this [`Error::Locked`].
    pub fn open(opts: Options) -> Result<Db> {
        opts.validate()?;
        let storage = Arc::clone(&opts.storage);
        let dir = opts.path.clone();
        if !opts.read_only {
            storage
                .create_dir_all(&dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let lock = storage
            .lock(&dir.join(LOCK_FILE), !opts.read_only)
            .map_err(|e| Error::io(format!("locking {}", dir.display()), e))?
            .ok_or_else(|| Error::Locked { path: dir.clone() })?;

        let manifest = match Manifest::load(&*storage, &dir)? {
            Some(m) => m,
            None => {
                // A new database writes its MANIFEST before any other file,
                // so data files without one mean it was lost: refuse to open
                // rather than start over on top of them.
                let names = match storage.list(&dir) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
                };
                if let Some(data) = names
                    .iter()
                    .find(|n| parse_segment_name(n).is_some() || parse_snapshot_name(n).is_some())
                {
                    return Err(Error::corruption(
                        dir.join(MANIFEST),
                        0,
                        format!("MANIFEST is missing but data file {data} exists"),
                    ));
                }
                let m = Manifest {
                    snapshot: None,
                    wal_start: 1,
                    timestamp: now_ms(&opts),
                };
                if !opts.read_only {
                    m.store(&*storage, &dir)?;
                    // The database's directory may be new: its entry in the
                    // parent must reach the disk too, or a crash could lose
                    // the directory with every acknowledged write in it.
                    let parent = match dir.parent() {
                        Some(p) if !p.as_os_str().is_empty() => p,
                        _ => Path::new("."),
                    };
                    storage.sync_dir(parent).map_err(|e| {
                        Error::io(format!("syncing directory {}", parent.display()), e)
                    })?;
                }
                m
            }
        };

        let mut index = Index::new();
        let mut snapshot_bytes = 0;
        if let Some(name) = &manifest.snapshot {
            let path = dir.join(name);
            // The header's count sizes the index. It is not checked yet
            // (`read` checks it against the entries and the CRC), so it is
            // capped by what the file can hold: an entry takes at least 4
            // bytes.
            let expected = snapshot::read_info(&*storage, &path)?.count;
            let file_len = storage
                .open(&path, crate::storage::OpenMode::Read)
                .and_then(|f| f.len())
                .map_err(|e| Error::io(format!("reading the size of {}", path.display()), e))?;
            index.reserve(usize::try_from(expected.min(file_len / 4)).unwrap_or(0));
            let info = snapshot::read(&*storage, &path, |k, v, e| {
                index.insert(k, v, e);
                Ok(())
            })?;
            if info.wal_start != manifest.wal_start {
                return Err(Error::corruption(
                    &path,
                    28,
                    "snapshot does not pair with the MANIFEST's wal_start",
                ));
            }
            snapshot_bytes = storage
                .open(&path, crate::storage::OpenMode::Read)
                .and_then(|f| f.len())
                .unwrap_or(0);
        }

        let names = storage
            .list(&dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let mut segments: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_segment_name(n))
            .filter(|&n| n >= manifest.wal_start)
            .collect();
        segments.sort_unstable();
        // Compaction creates segment `wal_start` (header written, fsynced,
        // directory fsynced) before the MANIFEST names it, and nothing
        // removes it while that MANIFEST stands: without it the writes
        // logged after the snapshot are gone. (A new database's MANIFEST,
        // naming no snapshot, is written before its first segment.)
        // (When other segments are there, the gap check below names it.)
        if manifest.snapshot.is_some() && segments.is_empty() {
            return Err(Error::corruption(
                dir.join(segment_name(manifest.wal_start)),
                0,
                "WAL segment missing: the MANIFEST names it as the first to replay after its snapshot",
            ));
        }
        for (i, &n) in segments.iter().enumerate() {
            if n != manifest.wal_start + i as u64 {
                return Err(Error::corruption(
                    dir.join(segment_name(manifest.wal_start + i as u64)),
                    0,
                    "WAL segment missing",
                ));
            }
        }
        let mut wal_bytes = 0;
        let mut next_segment = segments.last().map_or(manifest.wal_start, |n| n + 1);
        for (i, &n) in segments.iter().enumerate() {
            let path = dir.join(segment_name(n));
            let file = storage
                .open(&path, crate::storage::OpenMode::Read)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            let last = i + 1 == segments.len();
            // Read a window at a time: replay holds about a megabyte of the
            // segment (plus an open batch), not the whole segment.
            let segment = reader::SegmentFile::open(&path, &*file)?;
            // Size the index for the segment's records up front, so replay
            // does not rehash the table doubling by doubling.
            index.reserve(segment.estimated_records());
            let replayed = segment.replay(n, last, |group| {
                for change in group {
                    match *change {
                        Change::Set {
                            key,
                            value,
                            expires_at,
                        } => {
                            index.insert(key, value, expires_at);
                        }
                        Change::Delete { key } => {
                            index.remove(key);
                        }
                    }
                }
            })?;
            wal_bytes += replayed.valid_len;
            if replayed.torn && !opts.read_only {
                truncate(&*storage, &path, replayed.valid_len)?;
                if replayed.valid_len == 0 {
                    // The newest segment never got its header: it was
                    // removed, and its number is used again so the segments
                    // stay numbered without gaps.
                    next_segment = n;
                }
            }
        }

        index.trim();
        let writer = if opts.read_only {
            None
        } else {
            remove_stray_files(&*storage, &dir, &names, &manifest);
            Some(WalWriter::create(
                Arc::clone(&storage),
                &dir,
                next_segment,
                wal_bytes,
                opts.segment_size,
            )?)
        };

        let inner = Arc::new(Inner {
            opts,
            dir,
            storage,
            index: RwLock::new(index),
            writer: Mutex::new(writer),
            commit: GroupCommit::default(),
            state: AtomicU8::new(OPEN),
            poison: Mutex::new(None),
            counters: Counters::default(),
            manifest: Mutex::new(manifest),
            compaction: Mutex::new(()),
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            lock: Mutex::new(Some(lock)),
            signal: Arc::new(Signal::default()),
        });
        let workers = Workers::start(&inner);
        Ok(Db {
            handle: Arc::new(Handle {
                inner,
                workers: Mutex::new(Some(workers)),
            }),
        })
    }
}

fn truncate(storage: &dyn Storage, path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        return storage.remove(path).map_err(|e| {
            Error::io(
                format!("removing the empty torn segment {}", path.display()),
                e,
            )
        });
    }
    let file = storage
        .open(path, crate::storage::OpenMode::Append)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    file.set_len(len)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(format!("truncating the torn tail of {}", path.display()), e))
}

/// Removes files a crash may have left: segments and snapshots the MANIFEST
/// no longer needs, and temporary files. Best effort.
fn remove_stray_files(storage: &dyn Storage, dir: &Path, names: &[String], manifest: &Manifest) {
    for name in names {
        let stray = name == MANIFEST_TMP
            || name.ends_with(".tmp")
            || parse_segment_name(name).is_some_and(|n| n < manifest.wal_start)
            || (parse_snapshot_name(name).is_some()
                && manifest.snapshot.as_deref() != Some(name.as_str()));
        if stray && name != MANIFEST {
            let _ = storage.remove(&dir.join(name));
        }
    }
}
