//! The write-ahead log: format, replay and writer, one concern per file
//! (as fjall's journal).

pub mod format;
pub mod reader;
pub(crate) mod writer;

pub use writer::{segment_name, PREALLOC_STEP};
