//! Random bytes through the snapshot reader (from an in-memory file):
//! never a panic; reads stay bounded by the file's size.
//!
//! ```text
//! cargo fuzz run snapshot_decode -- -max_total_time=60
//! ```
#![no_main]

use std::io;
use std::path::Path;
use std::sync::Arc;

use kv_engine::snapshot;
use kv_engine::storage::{LockGuard, OpenMode, Storage, StorageFile};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Bytes(Vec<u8>);

impl StorageFile for Bytes {
    fn write_all(&self, _: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn write_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }
    fn set_len(&self, _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[derive(Debug)]
struct OneFile(Arc<Bytes>);

impl Storage for OneFile {
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn open(&self, _: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        match mode {
            OpenMode::Read => Ok(Arc::clone(&self.0) as Arc<dyn StorageFile>),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }
    fn read(&self, _: &Path) -> io::Result<Vec<u8>> {
        Ok(self.0 .0.clone())
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn remove(&self, _: &Path) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list(&self, _: &Path) -> io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn lock(&self, _: &Path, _: bool) -> io::Result<Option<Box<dyn LockGuard>>> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

fuzz_target!(|data: &[u8]| {
    // As given, and behind a valid magic and version so the fuzzer reaches
    // the entries quickly.
    let mut framed = snapshot::MAGIC.to_vec();
    framed.extend_from_slice(&snapshot::VERSION.to_le_bytes());
    framed.extend_from_slice(data);
    for bytes in [data.to_vec(), framed] {
        let storage = OneFile(Arc::new(Bytes(bytes)));
        let mut total = 0usize;
        let _ = snapshot::read(&storage, Path::new("snap.snap"), |k, v, _| {
            total += k.len() + v.len();
            Ok(())
        });
    }
});
