//! The receive threads: one per receiver, batches in, the shared sink out, until stopped; then
//! each stops its receiver's intake and drains what is still queued, so the counts add up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use fastpath::{Batch, Receiver, Stats};

use super::options::Args;
use super::output::Sink;
use super::stats::Board;

/// How long one `recv` waits before the loop re-checks Ctrl-C, the count and the duration.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long the drain at the end may take: what is still queued then is counted, not written.
pub(super) const DRAIN_BOUND: Duration = Duration::from_secs(1);

/// A running receive thread.
pub(super) type Worker = thread::JoinHandle<WorkerEnd>;

/// How one receive thread ended.
pub(super) struct WorkerEnd {
    /// The receiver's final counters, or why they could not be read.
    pub(super) stats: Result<Stats>,
    /// Packets received after the count was reached, not written.
    pub(super) beyond_count: u64,
    /// Packets still queued when the drain bound passed, not written.
    pub(super) left: u64,
    /// How the thread ended.
    pub(super) res: Result<()>,
}

/// State shared by the receive threads and the status line.
pub(super) struct Shared {
    stop: Arc<AtomicBool>,
    /// Slots reserved against the count limit (packets handed to the sink or beyond it).
    reserved: AtomicU64,
    limit: u64,
    deadline: Option<Instant>,
    /// Kernel drops per thread, refreshed about twice a second for the status line.
    drops: Vec<AtomicU64>,
    sink: Mutex<Sink>,
    /// A thread panicked: the sink may be mid-record and is written no more.
    panicked: AtomicBool,
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
            reserved: AtomicU64::new(0),
            limit: args.count.unwrap_or(u64::MAX),
            // A deadline past what `Instant` can hold is no deadline.
            deadline: args.duration.and_then(|d| Instant::now().checked_add(d)),
            drops: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            sink: Mutex::new(sink),
            panicked: AtomicBool::new(false),
            board,
        }
    }

    /// Packets handed to the sink so far, about (for the status line; the summary counts what
    /// reached the output).
    pub(super) fn handed(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed).min(self.limit)
    }

    /// Kernel drops over all threads, as of each thread's last refresh.
    pub(super) fn drops(&self) -> u64 {
        self.drops.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    /// Whether a stop was asked for (signal, count, duration, error).
    pub(super) fn stopping(&self) -> bool {
        // Relaxed: a flag polled by every loop; nothing is published through it.
        self.stop.load(Ordering::Relaxed)
    }

    /// Asks the receive threads to end (also for an error outside them, e.g. the next rotated
    /// file cannot be created).
    pub(super) fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The sink, unless a thread panicked while using it (then nothing more is written).
    pub(super) fn sink(&self) -> Option<MutexGuard<'_, Sink>> {
        if self.panicked.load(Ordering::SeqCst) {
            return None;
        }
        self.sink.lock().ok()
    }
}

/// How the receive threads ended, once all are joined.
pub(super) struct Ended {
    /// The receivers' counters, summed, or the first reason one could not be read.
    pub(super) total: Result<Stats>,
    pub(super) beyond_count: u64,
    pub(super) left: u64,
    pub(super) sink: Sink,
    /// A thread panicked: the sink must be abandoned, not finished.
    pub(super) panicked: bool,
    /// The first error of any thread.
    pub(super) first_err: Option<anyhow::Error>,
}

/// Starts one thread per receiver, named `rx-0`, `rx-1`, ... If one cannot be started, the
/// ones already running are stopped and joined, and the error is returned.
pub(super) fn spawn(receivers: Vec<Receiver>, shared: &Arc<Shared>) -> Result<Vec<Worker>> {
    let mut workers = Vec::with_capacity(receivers.len());
    for (i, rx) in receivers.into_iter().enumerate() {
        let sh = Arc::clone(shared);
        match thread::Builder::new()
            .name(format!("rx-{i}"))
            .spawn(move || worker(rx, i, &sh))
        {
            Ok(w) => workers.push(w),
            Err(e) => {
                shared.request_stop();
                for w in workers {
                    let _ = w.join();
                }
                return Err(anyhow!("cannot start receive thread rx-{i}: {e}"));
            }
        }
    }
    Ok(workers)
}

/// Waits for every thread and takes the sink back.
pub(super) fn join(shared: Arc<Shared>, workers: Vec<Worker>) -> Ended {
    let mut total: Result<Stats> = Ok(Stats::default());
    let (mut beyond_count, mut left) = (0, 0);
    let mut first_err: Option<anyhow::Error> = None;
    for w in workers {
        // A panic is caught inside the thread; one that escapes (in the drop of a receiver)
        // is reported like it.
        let end = w.join().unwrap_or_else(|p| WorkerEnd {
            stats: Err(anyhow!("counters lost")),
            beyond_count: 0,
            left: 0,
            res: Err(panicked("a receive thread", &*p)),
        });
        match (&mut total, end.stats) {
            (Ok(t), Ok(s)) => t.merge(&s),
            (Ok(_), Err(e)) => total = Err(e),
            (Err(_), _) => {}
        }
        beyond_count += end.beyond_count;
        left += end.left;
        if let Err(e) = end.res {
            first_err.get_or_insert(e);
        }
    }
    let panicked = shared.panicked.load(Ordering::SeqCst);
    let sink = Arc::try_unwrap(shared)
        .ok()
        .expect("all threads joined")
        .sink
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    Ended {
        total,
        beyond_count,
        left,
        sink,
        panicked,
        first_err,
    }
}

/// What one thread counted besides the packets it wrote.
#[derive(Default)]
struct Tally {
    beyond_count: u64,
    left: u64,
}

/// One receive thread: receive until stopped, then stop intake and drain. A panic ends the
/// capture as an error (the other threads stop too) instead of leaving them running.
fn worker(mut rx: Receiver, idx: usize, sh: &Shared) -> WorkerEnd {
    let mut tally = Tally::default();
    let name = format!("receive thread rx-{idx}");
    let run = catch_unwind(AssertUnwindSafe(|| {
        let res = receive_loop(&mut rx, idx, sh, &mut tally);
        sh.request_stop();
        match res {
            Ok(()) => drain(&mut rx, sh, &mut tally),
            // After a receive or write error the queue is left alone.
            Err(e) => Err(e),
        }
    }));
    let res = run.unwrap_or_else(|p| {
        sh.panicked.store(true, Ordering::SeqCst);
        sh.request_stop();
        Err(panicked(&name, &*p))
    });
    let stats = rx.stats();
    if let Ok(st) = &stats {
        sh.board.update(idx, *st);
    }
    WorkerEnd {
        stats: stats.map_err(anyhow::Error::from),
        beyond_count: tally.beyond_count,
        left: tally.left,
        res,
    }
}

/// The error of a panic (a bug in fastpath), with its message.
fn panicked(who: &str, payload: &(dyn std::any::Any + Send)) -> anyhow::Error {
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    anyhow!("{who} panicked ({msg}): a bug in fastpath, please report it")
}

fn receive_loop(rx: &mut Receiver, idx: usize, sh: &Shared, tally: &mut Tally) -> Result<()> {
    let mut next_stats = Instant::now();
    while !sh.stopping() {
        let batch = rx.recv(Some(POLL_INTERVAL))?;
        if !batch.is_empty() {
            deliver(&batch, sh, tally)?;
            test_hook_panic();
        }
        drop(batch);
        let now = Instant::now();
        if sh.deadline.is_some_and(|d| now >= d) {
            sh.request_stop();
        }
        if now >= next_stats {
            // For the status line only: a failure keeps the last value (the summary reads the
            // counters again and reports a failure there).
            if let Ok(st) = rx.stats() {
                sh.drops[idx].store(st.dropped, Ordering::Relaxed);
                sh.board.update(idx, st);
            }
            next_stats = now + Duration::from_millis(500);
        }
    }
    Ok(())
}

/// Hands a batch to the sink, at most up to the count; what lies beyond it is tallied.
fn deliver(batch: &Batch<'_>, sh: &Shared, tally: &mut Tally) -> Result<()> {
    let n = batch.len() as u64;
    // Reserve slots against the count limit so threads together write exactly `limit`.
    let before = sh.reserved.fetch_add(n, Ordering::Relaxed);
    let take = n.min(sh.limit.saturating_sub(before));
    tally.beyond_count += n - take;
    if take > 0 {
        let Some(mut sink) = sh.sink() else {
            sh.request_stop();
            return Ok(());
        };
        for pkt in batch.iter().take(take as usize) {
            sink.write(&pkt)?;
        }
        sink.end_batch()?;
    }
    if before + n >= sh.limit {
        sh.request_stop();
    }
    Ok(())
}

/// The end of a capture: stop the receiver's intake, then write what is still queued (up to the
/// count), for at most [`DRAIN_BOUND`]; what remains after that is counted as left. Afterwards
/// the receiver's counters add up: written + beyond the count + left + dropped = received.
fn drain(rx: &mut Receiver, sh: &Shared, tally: &mut Tally) -> Result<()> {
    let wait = rx.stop_intake()?;
    // Long enough for the kernel to hand over what it holds (a partly filled mmap block waits
    // for its timeout), plus the bound for writing it.
    let deadline = Instant::now() + wait + DRAIN_BOUND;
    loop {
        let batch = rx.recv(Some(wait))?;
        if batch.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            tally.left += batch.len() as u64;
            break;
        }
        deliver(&batch, sh, tally)?;
    }
    // Count the rest without writing it. The queue only shrinks once intake stopped (dpdk
    // aside, whose device keeps receiving: bounded all the same).
    let stop_counting = Instant::now() + DRAIN_BOUND;
    while Instant::now() < stop_counting {
        let batch = rx.recv(Some(wait))?;
        if batch.is_empty() {
            break;
        }
        tally.left += batch.len() as u64;
    }
    Ok(())
}

/// Debug builds only: `FASTPATH_TEST_PANIC_WORKER=1` makes a receive thread panic after its
/// first batch, so the tests can check how a capture ends after a bug.
fn test_hook_panic() {
    #[cfg(debug_assertions)]
    if std::env::var_os("FASTPATH_TEST_PANIC_WORKER").is_some() {
        panic!("test hook: FASTPATH_TEST_PANIC_WORKER");
    }
}
