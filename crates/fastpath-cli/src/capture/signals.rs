//! How a capture reacts to SIGINT (Ctrl-C), SIGTERM and SIGHUP.
//!
//! - The first one asks for an orderly stop: the receive threads stop intake, drain what is
//!   queued (bounded), the file is completed and the summary printed.
//! - A second one exits at once with status 130: a file is cut back to its last complete
//!   packet first ([`fastpath::pcap::CutBack`]), nothing else is waited for.
//! - After the first one, standard output that takes no data for [`STALL_LIMIT`] (a stalled
//!   reader of `-w -` or of the printed lines) no longer holds the capture hostage: it exits with
//!   status 1 and says so.
//!
//! The signals are received on a thread of their own (`signal_hook::iterator`), so no code runs
//! in a signal handler beyond signal-hook's self-pipe write, and the thread can act while every
//! other thread is blocked in a write.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fastpath::pcap::CutBack;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long standard output may take no data, after a stop was asked for, before fastpath
/// gives up on it.
pub(super) const STALL_LIMIT: Duration = Duration::from_secs(2);

/// Exit status after a second signal (128 + SIGINT, what a shell reports for Ctrl-C).
const EXIT_INTERRUPTED: i32 = 130;

/// The stop flag, the time a write to standard output has been blocked since, and the file to
/// cut back: what the signal thread acts on.
#[derive(Debug)]
pub(super) struct Control {
    /// Set by the first signal (and by the count, the duration or an error).
    pub(super) stop: Arc<AtomicBool>,
    /// When the write to standard output in progress began (ms since `epoch`), 0 if none.
    stream_busy: AtomicU64,
    epoch: Instant,
    /// The capture file, once open.
    cut: Mutex<Option<CutBack>>,
}

impl Control {
    /// Starts the signal thread. From now on SIGINT, SIGTERM and SIGHUP end the capture.
    ///
    /// # Errors
    /// The handlers could not be installed or the thread not started.
    pub(super) fn install() -> Result<Arc<Control>> {
        let ctl = Arc::new(Control {
            stop: Arc::new(AtomicBool::new(false)),
            stream_busy: AtomicU64::new(0),
            epoch: Instant::now(),
            cut: Mutex::new(None),
        });
        let mut signals =
            Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
        let c = Arc::clone(&ctl);
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                // Only the first: the loop below takes the second.
                if signals.forever().next().is_none() {
                    return;
                }
                // Relaxed: a flag the receive threads poll; nothing is published through it.
                c.stop.store(true, Ordering::Relaxed);
                loop {
                    if signals.pending().next().is_some() {
                        c.abort(EXIT_INTERRUPTED, "interrupted again: stopping at once");
                    }
                    if c.stream_stalled() {
                        c.abort(
                            1,
                            "standard output has taken no data for 2 s (a stalled reader?): \
                             stopping without it",
                        );
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            })
            .context("starting the signal thread")?;
        Ok(ctl)
    }

    /// The capture file the abort path cuts back.
    pub(super) fn arm(&self, cut: Option<CutBack>) {
        *self.cut.lock().unwrap_or_else(|e| e.into_inner()) = cut;
    }

    /// Marks the start (`true`) or end of a write to standard output.
    pub(super) fn stream_write(&self, busy: bool) {
        let t = if busy {
            (self.epoch.elapsed().as_millis() as u64).max(1)
        } else {
            0
        };
        // Relaxed: an advisory time stamp; the watchdog acts only on a write blocked for
        // seconds.
        self.stream_busy.store(t, Ordering::Relaxed);
    }

    /// Whether a write to standard output has been blocked for more than [`STALL_LIMIT`].
    fn stream_stalled(&self) -> bool {
        let since = self.stream_busy.load(Ordering::Relaxed);
        since != 0
            && self.epoch.elapsed().as_millis() as u64 > since + STALL_LIMIT.as_millis() as u64
    }

    /// Cuts the file back to its last complete packet and exits with `code` at once.
    fn abort(&self, code: i32, why: &str) -> ! {
        let cut = match self.cut.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                eprintln!("fastpath: {why}");
                std::process::exit(code);
            }
        };
        match cut.as_ref().map(|c| (c.path(), c.cut_back())) {
            Some((path, Ok(kept))) => eprintln!(
                "fastpath: {why}; `{path}` cut back to its last complete packet ({kept} packets)"
            ),
            Some((_, Err(e))) => eprintln!("fastpath: {why}; {e}"),
            None => eprintln!("fastpath: {why}"),
        }
        std::process::exit(code);
    }
}
