//! [`CutBack`]: cutting a capture file back to its last complete record from another thread,
//! for a program that must exit at once (a second Ctrl-C, a stalled output) while a writer
//! thread may be in the middle of a write.
//!
//! The writer and the cutter meet at a [`Gate`]:
//!
//! ```text
//! writer (PcapWriter::flush)                cutter (CutBack::cut_back)
//!   STORE writing = true           (W1)       STORE closed = true            (C1)
//!   if LOAD closed: stop           (W2)       while LOAD writing: wait       (C2)
//!   write(2) ... (the whole buffer)           LOAD committed, kept
//!   STORE kept, committed                     ftruncate(committed)
//!   STORE writing = false          (W3)
//! ```
//!
//! All are SeqCst, so they fall in one total order: either W1 comes before C2 (the cutter sees
//! the flush in progress and waits for W3, after which the new length and count are visible),
//! or C1 comes before W2 (the writer sees the gate closed and writes nothing more). A
//! `ftruncate` therefore never races a `write` that could leave a partial record after it, and
//! the count read matches the length. `committed` is a record boundary (the file length after
//! the last whole flush). If a flush does not finish within [`CutBack::WAIT`] (a hung NFS
//! server), the cutter truncates anyway: such a write makes no progress.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// State shared by a [`PcapWriter`](super::PcapWriter) and its [`CutBack`] handle.
#[derive(Debug, Default)]
pub(super) struct Gate {
    /// A `write(2)` to the file is in progress (W1..W3).
    writing: AtomicBool,
    /// The cutter has closed the gate: no further write may start (C1).
    closed: AtomicBool,
    /// File length after the last whole flush: a record boundary.
    committed: AtomicU64,
    /// Packets complete in the file at `committed`.
    kept: AtomicU64,
}

impl Gate {
    /// W1 + W2: announces a flush; false if the gate is closed (then nothing may be written).
    pub(super) fn enter(&self) -> bool {
        self.writing.store(true, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.writing.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// W3: the flush is over (after [`Gate::commit`] if it moved the record boundary).
    pub(super) fn leave(&self) {
        self.writing.store(false, Ordering::SeqCst);
    }

    /// Publishes a new record boundary, between [`Gate::enter`] and [`Gate::leave`].
    pub(super) fn commit(&self, len: u64, kept: u64) {
        self.kept.store(kept, Ordering::SeqCst);
        self.committed.store(len, Ordering::SeqCst);
    }
}

/// A handle that cuts a regular capture file back to its last complete record from any
/// thread, and stops its [`PcapWriter`](super::PcapWriter) from writing more: see
/// [`PcapWriter::cut_back_handle`](super::PcapWriter::cut_back_handle).
#[derive(Debug)]
pub struct CutBack {
    file: File,
    path: String,
    gate: Arc<Gate>,
}

impl CutBack {
    /// How long [`CutBack::cut_back`] waits for a write in progress to return.
    pub const WAIT: Duration = Duration::from_millis(500);

    pub(super) fn new(file: File, path: String, gate: Arc<Gate>) -> CutBack {
        CutBack { file, path, gate }
    }

    /// Stops the writer (no write starts after this), waits up to [`CutBack::WAIT`] for a write
    /// in progress, and cuts the file back to the end of the last complete record written out.
    /// Returns how many packets the file keeps. Meant to be followed by the process's exit:
    /// the writer refuses every write from now on.
    ///
    /// # Errors
    /// [`Error::Output`] if `ftruncate(2)` fails.
    pub fn cut_back(&self) -> Result<u64> {
        self.gate.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Self::WAIT;
        while self.gate.writing.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let len = self.gate.committed.load(Ordering::SeqCst);
        let kept = self.gate.kept.load(Ordering::SeqCst);
        self.file.set_len(len).map_err(|source| Error::Output {
            path: self.path.clone(),
            source,
            kept,
            note: "and cutting it back failed: it may end in a partial record",
        })?;
        Ok(kept)
    }

    /// The path of the file, as given.
    pub fn path(&self) -> &str {
        &self.path
    }
}
