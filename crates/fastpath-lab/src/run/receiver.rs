//! The fastpath rows: a [`Receiver`] on its own thread in the receiver namespace, reading every
//! byte of every packet, and answering snapshot requests (packets, CPU time, drop counters) from
//! the measuring thread.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::gen::BASE_SRC_PORT;
use anyhow::{anyhow, Context, Result};
use fastpath::unstable::bpf::{Mode, XdpAttachment, XdpProgram};
use fastpath::unstable::xdp_prog::FrameCounter;
use fastpath::{Backend, Config, Receiver, Stats};
use fastpath_harness::cpu;

use super::account::{self, Filtered, Received, RxPath};
use super::window::{link_drops, sleep_unless, with_generator};
use super::{LabConfig, Outcome, Rep};
use crate::gen::GenReport;
use crate::testbed::{LinkCounters, Testbed, RX_IF};

/// What the receiver thread records when asked.
#[derive(Debug, Clone, Copy)]
struct Snap {
    t: Instant,
    packets: u64,
    cpu_ns: u64,
    stats: Option<Stats>,
}

#[derive(Debug, Default)]
struct RxCtl {
    /// Set by the receiver thread once its `Receiver` is open. Release/Acquire: no Rust data travels
    /// with it, but it orders everything the receiver set up before it (socket open, XDP
    /// program attached) before what the main thread does on seeing it (layout, generator);
    /// a one-time flag, so the stronger ordering costs nothing. (A receiver that fails sets
    /// `failed` and returns without it; the join publishes that.)
    ready: AtomicBool,
    stop: AtomicBool,
    /// Incremented by the main thread to ask for a snapshot; the receiver answers once per
    /// increment it sees. Relaxed: nothing is published through the counter itself (the
    /// answer is pushed and read under the `snaps` mutex), it only has to be seen eventually.
    req: AtomicU32,
    snaps: Mutex<Vec<Snap>>,
    failed: Mutex<Option<Outcome>>,
}

impl RxCtl {
    /// Asks for a snapshot and waits (up to 2 s) for it.
    fn snapshot(&self) -> Option<Snap> {
        let want = self.snaps.lock().map(|s| s.len()).unwrap_or(0) + 1;
        self.req.fetch_add(1, Ordering::Relaxed);
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if let Ok(s) = self.snaps.lock() {
                if s.len() >= want {
                    return s.last().copied();
                }
            }
            thread::sleep(Duration::from_micros(200));
        }
        None
    }

    /// Stops the receiver thread and joins it: how it ended, if not well.
    fn finish(&self, rxh: thread::ScopedJoinHandle<'_, Result<()>>) -> Option<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let r = rxh
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the receiver thread panicked")));
        if let Some(o) = self.failed.lock().ok().and_then(|mut f| f.take()) {
            return Some(o);
        }
        r.err().map(|e| Outcome::Failed(format!("{e:#}")))
    }
}

/// Every byte of the packet, summed: the proof that user space read it.
#[inline]
fn touch(data: &[u8]) -> u64 {
    let data = std::hint::black_box(data);
    data.iter().fold(0u64, |a, &b| a.wrapping_add(u64::from(b)))
}

/// The receiver's configuration for `backend` on `fplr0`.
fn receiver_config(
    backend: Backend,
    busy_poll: bool,
    filter: Option<&str>,
    rcvbuf: Option<usize>,
) -> Result<Config> {
    let device = if backend == Backend::Dpdk {
        // The same vdev and geometry as the dpdk-testpmd af_packet row (`docs/lab-notes.md`).
        format!("net_af_packet0,iface={RX_IF},blocksz=4096,framesz=2048,framecnt=4096")
    } else {
        RX_IF.to_owned()
    };
    let mut config = Config::new(device).backend(backend);
    if let Some(bytes) = rcvbuf {
        config = config.rcvbuf(bytes);
    }
    if let Some(expr) = filter {
        config = config.filter(fastpath::Filter::new(expr).context("compiling the lab filter")?);
    }
    if busy_poll {
        let mut x = fastpath::XdpConfig::default();
        x.busy_poll = Some((20, 64));
        config = config.xdp(x);
    }
    Ok(config)
}

/// The receiver thread: enters the receiver namespace, opens the receiver, then reads until
/// told to stop, answering snapshot requests between batches.
fn receiver_loop(
    tb: &Testbed,
    backend: Backend,
    busy_poll: bool,
    filter: Option<&str>,
    rcvbuf: Option<usize>,
    counter: Option<&FrameCounter>,
    ctl: &RxCtl,
) -> Result<()> {
    tb.enter_rx()?;
    // AF_PACKET rungs: veth needs an XDP program for NAPI (live frames, threaded NAPI); with a
    // filter, one that also counts the frames the filter should keep (its rejects are in no
    // kernel counter).
    let _pass = if backend == Backend::Xdp {
        None
    } else {
        let prog = match counter {
            Some(c) => XdpProgram::pass_counting(c, BASE_SRC_PORT)?,
            None => XdpProgram::pass()?,
        };
        let att = XdpAttachment::attach(&prog, tb.rx_ifindex(), Mode::Native, false)?;
        Some((att, prog))
    };
    let config = receiver_config(backend, busy_poll, filter, rcvbuf)?;
    let mut rx = match Receiver::open(&config) {
        Ok(rx) => rx,
        Err(e @ fastpath::Error::Unsupported { .. }) => {
            if let Ok(mut f) = ctl.failed.lock() {
                *f = Some(Outcome::Unavailable(e.to_string()));
            }
            return Ok(());
        }
        Err(e) => return Err(e).context(format!("opening a {backend} receiver on {RX_IF}")),
    };
    ctl.ready.store(true, Ordering::Release);
    let mut packets = 0u64;
    let mut acc = 0u64;
    let mut seen = 0u32;
    while !ctl.stop.load(Ordering::Relaxed) {
        let batch = rx.recv(Some(Duration::from_millis(20)))?;
        for p in &batch {
            acc = acc.wrapping_add(touch(p.data()));
            packets += 1;
        }
        drop(batch);
        let req = ctl.req.load(Ordering::Relaxed);
        if req != seen {
            seen = req;
            let snap = Snap {
                t: Instant::now(),
                packets,
                cpu_ns: cpu::thread_cpu_ns(),
                stats: rx.stats().ok(),
            };
            if let Ok(mut s) = ctl.snaps.lock() {
                s.push(snap);
            }
        }
    }
    std::hint::black_box(acc);
    Ok(())
}

/// One repetition of a fastpath row: the receiver thread started and ready, the layout applied,
/// the generator running through warm-up and window, everything stopped again.
pub(super) fn measure_fastpath(
    tb: &Testbed,
    backend: Backend,
    busy_poll: bool,
    filter: Option<&str>,
    size: usize,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    let ctl = RxCtl::default();
    // The filtered rows' filter is `udp src port 1024`: flow 0 (see `FILTER`).
    let counter = match (filter, backend) {
        (Some(_), b) if b != Backend::Xdp => match FrameCounter::new() {
            Ok(c) => Some(c),
            Err(e) => return (Outcome::Failed(format!("creating a BPF map: {e}")), None),
        },
        _ => None,
    };
    thread::scope(|s| {
        let rxh = thread::Builder::new()
            .name("fplab-rx".into())
            .spawn_scoped(s, || {
                receiver_loop(
                    tb,
                    backend,
                    busy_poll,
                    filter,
                    cfg.rcvbuf,
                    counter.as_ref(),
                    &ctl,
                )
            })
            .expect("spawning a thread only fails when the system is out of resources");
        // Wait for the receiver to be ready (or to give up).
        let end = Instant::now() + Duration::from_secs(5);
        while !ctl.ready.load(Ordering::Acquire) && !rxh.is_finished() && Instant::now() < end {
            thread::sleep(Duration::from_millis(2));
        }
        if !ctl.ready.load(Ordering::Acquire) {
            let o = ctl
                .finish(rxh)
                .unwrap_or_else(|| Outcome::Failed("receiver did not start".into()));
            return (o, None);
        }
        if let Err(e) = tb.apply_layout() {
            let _ = ctl.finish(rxh);
            return (Outcome::Failed(format!("{e:#}")), None);
        }
        let (p0, s0) = (account::probe(tb), ctl.snapshot());
        let (win, gr) = with_generator(tb, size, cfg, || window(tb, &ctl, cfg, stop));
        let s1 = drained(&ctl);
        let p1 = account::probe(tb);
        let fin = ctl.finish(rxh);
        let gr = match gr {
            Ok(g) => g,
            Err(e) => return (Outcome::Failed(format!("generator: {e:#}")), None),
        };
        if let Some(o) = fin {
            return (o, Some(gr));
        }
        match win {
            Ok(w) => {
                let mut rep = w.rep(&gr);
                if let (Some(s0), Some(s1)) = (s0, s1) {
                    let path = if backend == Backend::Xdp {
                        RxPath::Xdp
                    } else {
                        RxPath::AfPacket
                    };
                    let got = Received {
                        delivered: s1.packets - s0.packets,
                        socket_dropped: socket_drops(&s1).saturating_sub(socket_drops(&s0)),
                    };
                    let filtered = match (filter, &counter) {
                        (None, _) => Filtered::No,
                        (Some(_), None) => Filtered::InXdp,
                        (Some(_), Some(c)) => Filtered::Matching(c.read().unwrap_or(0)),
                    };
                    rep.stages = account::stages(&p0, &p1, &gr, path, filtered, got);
                }
                rep.noise = account::noise(&p0, &p1, tb, &gr);
                (Outcome::Done(Box::new(rep)), Some(gr))
            }
            Err(o) => (o, Some(gr)),
        }
    })
}

/// Drops the receiver's socket or ring reported so far (AF_XDP: also frames lost for want of
/// a fill-ring entry).
fn socket_drops(s: &Snap) -> u64 {
    s.stats.map_or(0, |st| st.dropped + st.fill_ring_empty)
}

/// After the generator stopped: snapshots until the receiver's count stays put for 50 ms (it
/// has read what was queued), at most 2 s; the last one.
fn drained(ctl: &RxCtl) -> Option<Snap> {
    let end = Instant::now() + Duration::from_secs(2);
    let mut last = ctl.snapshot()?;
    let mut still = 0;
    while still < 5 && Instant::now() < end {
        thread::sleep(Duration::from_millis(10));
        let s = ctl.snapshot()?;
        still = if s.packets == last.packets {
            still + 1
        } else {
            0
        };
        last = s;
    }
    Some(last)
}

/// The receiver's snapshots and the veth's counters at both ends of the timed window.
struct RxWindow {
    a: Snap,
    b: Snap,
    c0: Option<LinkCounters>,
    c1: Option<LinkCounters>,
}

/// Warm-up, then the timed window between two snapshots (run while the generator sends).
fn window(
    tb: &Testbed,
    ctl: &RxCtl,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> Result<RxWindow, Outcome> {
    if !sleep_unless(stop, cfg.warmup) {
        return Err(Outcome::Interrupted);
    }
    let (Some(a), c0) = (ctl.snapshot(), tb.rx_counters().ok()) else {
        return Err(Outcome::Failed("the receiver stopped answering".into()));
    };
    if !sleep_unless(stop, cfg.rep_time) {
        return Err(Outcome::Interrupted);
    }
    let (Some(b), c1) = (ctl.snapshot(), tb.rx_counters().ok()) else {
        return Err(Outcome::Failed("the receiver stopped answering".into()));
    };
    Ok(RxWindow { a, b, c0, c1 })
}

impl RxWindow {
    /// The repetition's numbers: packets per second over the window, socket and veth drops,
    /// CPU time per packet.
    fn rep(&self, gr: &GenReport) -> Rep {
        let (a, b) = (&self.a, &self.b);
        let dt = b.t.duration_since(a.t).as_secs_f64();
        let n = b.packets - a.packets;
        let drops = match (a.stats, b.stats) {
            (Some(x), Some(y)) => y.dropped.saturating_sub(x.dropped),
            _ => 0,
        };
        Rep {
            pps: n as f64 / dt,
            drops,
            link_drops: link_drops(self.c0, self.c1),
            gen_pps: gr.rate(),
            cpu_ns: (n > 0).then(|| (b.cpu_ns - a.cpu_ns) as f64 / n as f64),
            stages: Default::default(),
            noise: Default::default(),
            ndr: None,
        }
    }
}
