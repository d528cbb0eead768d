//! The receive threads: one per receiver, batches in, the shared sink out, until stopped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use fastpath::{Receiver, Stats};

use super::options::Args;
use super::output::Sink;
use super::stats::Board;

/// How long one `recv` waits before the loop re-checks Ctrl-C, the count and the duration.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running receive thread; it returns its receiver's final counters and how it ended.
pub(super) type Worker = thread::JoinHandle<(Stats, Result<()>)>;

/// State shared by the receive threads and the status line.
pub(super) struct Shared {
    stop: Arc<AtomicBool>,
    captured: AtomicU64,
    limit: u64,
    deadline: Option<Instant>,
    /// Kernel drops per thread, refreshed about twice a second for the status line.
    drops: Vec<AtomicU64>,
    pub(super) sink: Mutex<Sink>,
    /// Each receiver's latest counters, for the pcapng statistics blocks.
    board: Arc<Board>,
}

impl Shared {
    /// The state for `threads` receive threads; `--duration` counts from now.
    pub(super) fn new(
        stop: Arc<AtomicBool>,
        args: &Args,
        threads: usize,
        sink: Sink,
        board: Arc<Board>,
    ) -> Shared {
        Shared {
            stop,
            captured: AtomicU64::new(0),
            limit: args.count.unwrap_or(u64::MAX),
            // A deadline past what `Instant` can hold is no deadline.
            deadline: args.duration.and_then(|d| Instant::now().checked_add(d)),
            drops: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            sink: Mutex::new(sink),
            board,
        }
    }

    /// Packets handed to the sink so far: the slots the threads reserved, at most the count.
    pub(super) fn written(&self) -> u64 {
        self.captured.load(Ordering::Relaxed).min(self.limit)
    }

    /// Asks the receive threads to end (an error outside them, e.g. the next rotated file
    /// cannot be created).
    pub(super) fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Kernel drops over all threads, as of each thread's last refresh.
    pub(super) fn drops(&self) -> u64 {
        self.drops.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// How the receive threads ended, once all are joined.
pub(super) struct Ended {
    /// The receivers' counters, summed.
    pub(super) total: Stats,
    /// Packets handed to the sink (at most the count limit).
    pub(super) written: u64,
    pub(super) sink: Sink,
    /// The first error of any thread.
    pub(super) first_err: Option<anyhow::Error>,
}

/// Starts one thread per receiver, named `rx-0`, `rx-1`, ...
pub(super) fn spawn(receivers: Vec<Receiver>, shared: &Arc<Shared>) -> Vec<Worker> {
    receivers
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            let sh = Arc::clone(shared);
            thread::Builder::new()
                .name(format!("rx-{i}"))
                .spawn(move || worker(rx, i, &sh))
                .expect("spawning a receive thread")
        })
        .collect()
}

/// Waits for every thread and takes the sink back.
pub(super) fn join(shared: Arc<Shared>, workers: Vec<Worker>) -> Ended {
    let mut total = Stats::default();
    let mut first_err: Option<anyhow::Error> = None;
    for w in workers {
        let (stats, res) = w.join().expect("receive threads do not panic");
        total.merge(&stats);
        if let Err(e) = res {
            first_err.get_or_insert(e);
        }
    }
    let written = shared.written();
    let sink = Arc::try_unwrap(shared)
        .ok()
        .expect("all threads joined")
        .sink
        .into_inner()
        .expect("no thread panicked holding the sink");
    Ended {
        total,
        written,
        sink,
        first_err,
    }
}

/// One receive thread: batches in, sink out, until stopped. Returns the final counters.
fn worker(mut rx: Receiver, idx: usize, sh: &Shared) -> (Stats, Result<()>) {
    let res = receive_loop(&mut rx, idx, sh);
    if res.is_err() {
        sh.stop.store(true, Ordering::Relaxed);
    }
    let stats = rx.stats().unwrap_or_default();
    sh.board.update(idx, stats);
    (stats, res)
}

fn receive_loop(rx: &mut Receiver, idx: usize, sh: &Shared) -> Result<()> {
    let mut next_stats = Instant::now();
    while !sh.stop.load(Ordering::Relaxed) {
        let batch = rx.recv(Some(POLL_INTERVAL))?;
        if !batch.is_empty() {
            let n = batch.len() as u64;
            // Reserve slots against the count limit so threads together write exactly `limit`.
            let before = sh.captured.fetch_add(n, Ordering::Relaxed);
            let take = n.min(sh.limit.saturating_sub(before));
            let mut sink = sh.sink.lock().expect("no thread panicked holding the sink");
            for pkt in batch.iter().take(take as usize) {
                sink.write(&pkt)?;
            }
            if sink.is_lines() {
                sink.flush()?;
            }
            drop(sink);
            if before + n >= sh.limit {
                sh.stop.store(true, Ordering::Relaxed);
            }
        }
        drop(batch);
        let now = Instant::now();
        if sh.deadline.is_some_and(|d| now >= d) {
            sh.stop.store(true, Ordering::Relaxed);
        }
        if now >= next_stats {
            let st = rx.stats()?;
            sh.drops[idx].store(st.dropped, Ordering::Relaxed);
            sh.board.update(idx, st);
            next_stats = now + Duration::from_millis(500);
        }
    }
    Ok(())
}
