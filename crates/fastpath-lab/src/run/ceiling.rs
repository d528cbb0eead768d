//! The ceiling row: XDP_DROP on the receiving veth, counted by the veth itself. What the kernel
//! can do with no user space at all.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use fastpath::unstable::bpf::XdpProgram;

use super::account::{self, Filtered, Received, RxPath};
use super::window::{link_drops, load_attach_rx, sleep_unless, with_generator};
use super::{LabConfig, Outcome, Rep};
use crate::gen::GenReport;
use crate::testbed::Testbed;

/// One repetition of the ceiling row: XDP_DROP attached, the generator running through the
/// window, the veth's `rx_packets` counted.
pub(super) fn measure_ceiling(
    tb: &Testbed,
    size: usize,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    let att = match load_attach_rx(tb, XdpProgram::drop(), "XDP_DROP") {
        Ok(a) => a,
        Err(o) => return (o, None),
    };
    if let Err(e) = tb.apply_layout() {
        return (Outcome::Failed(format!("{e:#}")), None);
    }
    let p0 = account::probe(tb);
    let (win, gr) = with_generator(tb, size, cfg, || {
        if !sleep_unless(stop, cfg.warmup) {
            return Err(Outcome::Interrupted);
        }
        let t0 = Instant::now();
        let c0 = tb
            .rx_counters()
            .map_err(|e| Outcome::Failed(format!("{e:#}")))?;
        if !sleep_unless(stop, cfg.rep_time) {
            return Err(Outcome::Interrupted);
        }
        let t1 = Instant::now();
        let c1 = tb
            .rx_counters()
            .map_err(|e| Outcome::Failed(format!("{e:#}")))?;
        Ok((t0, t1, c0, c1))
    });
    // The veth's NAPI finishes what is in its ring within a few ms.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let p1 = account::probe(tb);
    drop(att);
    let gr = match gr {
        Ok(g) => g,
        Err(e) => return (Outcome::Failed(format!("generator: {e:#}")), None),
    };
    let (t0, t1, c0, c1) = match win {
        Ok(w) => w,
        Err(o) => return (o, Some(gr)),
    };
    let dt = t1.duration_since(t0).as_secs_f64();
    // veth counts every frame its XDP program ran on in rx_packets, dropped ones included.
    let n = c1.rx_packets.saturating_sub(c0.rx_packets);
    let rep = Rep {
        pps: n as f64 / dt,
        drops: 0,
        link_drops: link_drops(Some(c0), Some(c1)),
        gen_pps: gr.rate(),
        cpu_ns: None,
        stages: account::stages(
            &p0,
            &p1,
            &gr,
            RxPath::Ceiling,
            Filtered::No,
            Received::default(),
        ),
        noise: account::noise(&p0, &p1, tb, &gr),
        ndr: None,
    };
    (Outcome::Done(Box::new(rep)), Some(gr))
}
