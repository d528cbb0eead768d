//! The peer rows: a peer tool started in the receiver namespace, its counts read at both ends
//! of the window the way that tool allows (see [`crate::peers`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fastpath::unstable::bpf::XdpProgram;

use super::account::{self, Filtered, Received, RxPath};
use super::window::{link_drops, load_attach_rx, sleep_unless, with_generator};
use super::{LabConfig, Outcome, Rep};
use crate::gen::GenReport;
use crate::peers::{NetringPeer, Peer, PeerCount, PeerRun, Window};
use crate::testbed::{LinkCounters, Testbed};

/// One repetition of a peer row, if the tool is there. `netring`: the harness of the netring
/// rows (`None` when no such row is asked for).
pub(super) fn measure_peer_row(
    tb: &Testbed,
    p: Peer,
    size: usize,
    cfg: &LabConfig,
    netring: Option<&Result<NetringPeer, String>>,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    if p.is_netring() {
        let harness = match netring {
            Some(Ok(h)) => h,
            Some(Err(why)) => return (Outcome::NotInstalled(why.clone()), None),
            None => {
                return (
                    Outcome::NotInstalled("the netring peer was not looked for".into()),
                    None,
                )
            }
        };
        let r = measure_peer(tb, p, Some(&harness.path), size, cfg, stop);
        // netring holds its XDP program by a bpf_link, gone with the process; this clears
        // a legacy attachment should one be left.
        tb.clear_rx_xdp();
        return r;
    }
    if !p.installed() {
        return (
            Outcome::NotInstalled(format!(
                "`{}` not found: apt-get install -y {} (or run with --install-peers)",
                p.binary(),
                p.package()
            )),
            None,
        );
    }
    let r = measure_peer(tb, p, None, size, cfg, stop);
    // A peer that died may have left its program on fplr0.
    tb.clear_rx_xdp();
    r
}

/// One repetition of a peer row: XDP_PASS attached if the peer needs it, the peer started and
/// ready, the layout applied, the generator running through the window, the peer stopped.
fn measure_peer(
    tb: &Testbed,
    peer: Peer,
    harness: Option<&Path>,
    size: usize,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    let pass = if peer.needs_pass_program() {
        match load_attach_rx(tb, XdpProgram::pass(), "XDP_PASS") {
            Ok(a) => Some(a),
            Err(o) => return (o, None),
        }
    } else {
        None
    };
    // The harness stops by itself after this, should the lab die without stopping it.
    let max_life = cfg.warmup + cfg.rep_time + Duration::from_secs(60);
    let mut run = match PeerRun::start(tb, peer, harness, max_life, Duration::from_secs(15)) {
        Ok(r) => r,
        Err(e) => return (Outcome::Failed(format!("{e:#}")), None),
    };
    if let Err(e) = tb.apply_layout() {
        return (Outcome::Failed(format!("{e:#}")), None);
    }
    let window = peer.window();
    let p0 = account::probe(tb);
    // The count before the generator starts (an exit summary counts from the start: zero).
    let before = match window {
        Window::AtExit => Some(PeerCount::default()),
        Window::Signal | Window::Periodic => run.snapshot().ok().map(|(_, c)| c),
    };
    let (win, gr) = with_generator(tb, size, cfg, || -> Result<_, Outcome> {
        match window {
            Window::Signal | Window::Periodic => snapshot_window(tb, &mut run, peer, cfg, stop),
            Window::AtExit => exit_window(tb, cfg, stop),
        }
    });
    // Let the peer read what is still queued (its ring may hold a few hundred ms at overload).
    thread::sleep(Duration::from_millis(300));
    let after = match window {
        Window::AtExit => None,
        Window::Signal | Window::Periodic => run.snapshot().ok().map(|(_, c)| c),
    };
    let p1 = account::probe(tb);
    let (t_int, last, tail) = run.finish();
    drop(pass);
    let gr = match gr {
        Ok(g) => g,
        Err(e) => return (Outcome::Failed(format!("generator: {e:#}")), None),
    };
    let w = match win {
        Ok(w) => w,
        Err(o) => return (o, Some(gr)),
    };
    let (n, drops, dt) = if window == Window::AtExit {
        let Some(last) = last else {
            return (
                Outcome::Failed(format!("{} printed no summary: {tail}", peer.name())),
                Some(gr),
            );
        };
        (
            last.delivered,
            last.dropped,
            t_int.duration_since(w.t0).as_secs_f64(),
        )
    } else {
        (
            w.b.delivered.saturating_sub(w.a.delivered),
            w.b.dropped.saturating_sub(w.a.dropped),
            w.t1.duration_since(w.t0).as_secs_f64(),
        )
    };
    let path = if peer.needs_pass_program() {
        RxPath::AfPacket
    } else {
        RxPath::Xdp
    };
    let counted = match window {
        Window::AtExit => last,
        Window::Signal | Window::Periodic => after,
    };
    let stages = match (before, counted) {
        (Some(a), Some(b)) => {
            let got = Received {
                delivered: b.delivered.saturating_sub(a.delivered),
                socket_dropped: b.dropped.saturating_sub(a.dropped),
            };
            account::stages(&p0, &p1, &gr, path, Filtered::No, got)
        }
        _ => Default::default(),
    };
    let rep = Rep {
        pps: n as f64 / dt,
        drops,
        link_drops: link_drops(w.c0, w.c1),
        gen_pps: gr.rate(),
        cpu_ns: None,
        stages,
        noise: account::noise(&p0, &p1, tb, &gr),
        ndr: None,
    };
    (Outcome::Done(Box::new(rep)), Some(gr))
}

/// The peer's counts and the veth's counters at both ends of the window (counts zero for
/// [`Window::AtExit`], whose count comes when the peer stops).
struct PeerWindow {
    t0: Instant,
    t1: Instant,
    a: PeerCount,
    b: PeerCount,
    c0: Option<LinkCounters>,
    c1: Option<LinkCounters>,
}

/// [`Window::Signal`] and [`Window::Periodic`]: warm-up, then the window between two snapshots.
fn snapshot_window(
    tb: &Testbed,
    run: &mut PeerRun,
    peer: Peer,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> Result<PeerWindow, Outcome> {
    let window = peer.window();
    if !sleep_unless(stop, cfg.warmup) {
        return Err(Outcome::Interrupted);
    }
    let c0 = tb.rx_counters().ok();
    let (t0, a) = run
        .snapshot()
        .map_err(|e| Outcome::Failed(format!("{}: {e:#}", peer.name())))?;
    if window == Window::Signal && !sleep_unless(stop, cfg.rep_time) {
        return Err(Outcome::Interrupted);
    }
    // Periodic: every snapshot waits for the next 1-s block; take blocks until
    // the window is long enough (within the reading jitter).
    let (t1, b) = loop {
        let (t1, b) = run
            .snapshot()
            .map_err(|e| Outcome::Failed(format!("{}: {e:#}", peer.name())))?;
        if stop.load(Ordering::Relaxed) {
            return Err(Outcome::Interrupted);
        }
        if window == Window::Signal || t1.duration_since(t0) >= cfg.rep_time.mul_f64(0.9) {
            break (t1, b);
        }
    };
    let c1 = tb.rx_counters().ok();
    Ok(PeerWindow {
        t0,
        t1,
        a,
        b,
        c0,
        c1,
    })
}

/// [`Window::AtExit`]: the window opens when frames first reach the receiving veth and lasts
/// warm-up plus window time; the count comes from the peer's exit summary.
fn exit_window(tb: &Testbed, cfg: &LabConfig, stop: &AtomicBool) -> Result<PeerWindow, Outcome> {
    let c0 = tb.rx_counters().ok();
    let start = Instant::now();
    let t0 = loop {
        let c = tb.rx_counters().ok();
        if c.zip(c0)
            .is_some_and(|(c, c0)| c.rx_packets > c0.rx_packets)
        {
            break Instant::now();
        }
        if start.elapsed() > Duration::from_secs(3) || stop.load(Ordering::Relaxed) {
            return Err(Outcome::Failed(
                "no frame reached the receiving veth".into(),
            ));
        }
        thread::sleep(Duration::from_millis(2));
    };
    if !sleep_unless(stop, cfg.rep_time + cfg.warmup) {
        return Err(Outcome::Interrupted);
    }
    let c1 = tb.rx_counters().ok();
    Ok(PeerWindow {
        t0,
        t1: t0,
        a: PeerCount::default(),
        b: PeerCount::default(),
        c0,
        c1,
    })
}
