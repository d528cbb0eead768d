//! What every repetition shares: the generator running on its own thread around the timed
//! window, sleeping through the warm-up and the window, XDP programs on the receiving veth, and
//! the veth's drop counter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fastpath::unstable::bpf::{Mode, XdpAttachment, XdpProgram};

use super::{LabConfig, Outcome};
use crate::gen::{self, FrameSpec, GenConfig, GenReport, MethodChoice};
use crate::testbed::{LinkCounters, Testbed, GEN_IF};

/// Sleeps `d` in small steps; false if `stop` was set meanwhile.
pub(super) fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// The generator running on its own thread for the duration of `f`.
struct GenCtl {
    stop: AtomicBool,
    sent: AtomicU64,
}

fn gen_config(size: usize, cfg: &LabConfig) -> GenConfig {
    let mut frames = FrameSpec::new(size);
    frames.flows = cfg.flows;
    let mut g = GenConfig::new(GEN_IF, frames);
    g.rate = cfg.rate;
    g.repeat = cfg.repeat;
    g.method = MethodChoice::Auto;
    // The receiving veth always has a native program here (ours or the peer's).
    g.probe = false;
    g
}

/// Runs `f` while the generator sends `size`-byte frames into the testbed; returns `f`'s
/// result and the generator's report.
pub(super) fn with_generator<T>(
    tb: &Testbed,
    size: usize,
    cfg: &LabConfig,
    f: impl FnOnce() -> T,
) -> (T, Result<GenReport>) {
    let ctl = GenCtl {
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
    };
    let gcfg = gen_config(size, cfg);
    thread::scope(|s| {
        let h = thread::Builder::new()
            .name("fplab-gen".into())
            .spawn_scoped(s, || -> Result<GenReport> {
                tb.enter_gen()?;
                gen::run(&gcfg, &ctl.stop, &ctl.sent)
            })
            .expect("spawning a thread only fails when the system is out of resources");
        let out = f();
        ctl.stop.store(true, Ordering::Relaxed);
        let r = h
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the generator thread panicked")));
        (out, r)
    })
}

/// Attaches `prog` natively to `fplr0` (on a helper thread in the receiver namespace).
fn attach_rx(tb: &Testbed, prog: &XdpProgram) -> Result<XdpAttachment> {
    let ifindex = tb.rx_ifindex();
    tb.in_rx(|| Ok(XdpAttachment::attach(prog, ifindex, Mode::Native, false)?))
        .context("attaching an XDP program to the receiving veth")
}

/// Attaches `prog` (just loaded, `name` for the message) as [`attach_rx`] does; a failure to
/// load or attach is the row's [`Outcome::Failed`]. Detaches when the pair is dropped.
pub(super) fn load_attach_rx(
    tb: &Testbed,
    prog: fastpath::Result<XdpProgram>,
    name: &str,
) -> Result<(XdpAttachment, XdpProgram), Outcome> {
    let prog = prog.map_err(|e| Outcome::Failed(format!("loading {name}: {e}")))?;
    let att = attach_rx(tb, &prog).map_err(|e| Outcome::Failed(format!("{e:#}")))?;
    Ok((att, prog))
}

/// `rx_dropped` of the receiving veth between two readings; 0 when either is missing.
pub(super) fn link_drops(c0: Option<LinkCounters>, c1: Option<LinkCounters>) -> u64 {
    match (c0, c1) {
        (Some(x), Some(y)) => y.rx_dropped.saturating_sub(x.rx_dropped),
        _ => 0,
    }
}
