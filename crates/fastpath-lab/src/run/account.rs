//! Counting where a repetition's packets went ([`Stages`]) and what else the machine did
//! ([`Noise`]): every counter the testbed can see, read once before the generator starts and
//! once after it stopped and the receiver drained ([`Probe`]), so in-flight packets at the edges
//! do not blur the sums.

use std::fs;
use std::time::Instant;

use fastpath_harness::ethtool::EthtoolValues;

use crate::gen::{GenReport, Method};
use crate::stages::{Noise, Stages};
use crate::testbed::{LinkCounters, Testbed};

/// How a row's receiver gets its frames, for attributing losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RxPath {
    /// XDP_PASS, then an AF_PACKET socket: the socket's drops come after the veth's.
    AfPacket,
    /// XDP_REDIRECT to an AF_XDP socket: a full socket ring fails the redirect, so its drops
    /// are already among the veth's.
    Xdp,
    /// XDP_DROP is the delivery.
    Ceiling,
}

/// Every counter at one instant.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    t: Instant,
    gen: Option<EthtoolValues>,
    rx: Option<EthtoolValues>,
    gen_link: Option<LinkCounters>,
    steal: Vec<(usize, u64)>,
    kthreads: Vec<KStat>,
}

/// Reads every counter now.
pub(super) fn probe(tb: &Testbed) -> Probe {
    Probe {
        t: Instant::now(),
        gen: tb.gen_ethtool().ok(),
        rx: tb.rx_ethtool().ok(),
        gen_link: tb.gen_counters().ok(),
        steal: fs::read_to_string("/proc/stat")
            .map(|t| parse_steal(&t))
            .unwrap_or_default(),
        kthreads: tb
            .napi_kthreads()
            .into_iter()
            .filter_map(|tid| {
                fs::read_to_string(format!("/proc/{tid}/stat"))
                    .ok()
                    .and_then(|t| parse_task_stat(&t))
            })
            .collect(),
    }
}

/// How a filtered row's rejects are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filtered {
    /// No filter.
    No,
    /// The filter runs in the XDP program: what it does not redirect it passes to the stack.
    InXdp,
    /// The filter runs in the socket; the counting XDP_PASS program counted this many frames
    /// that match it.
    Matching(u64),
}

/// What the receiver counted between the two probes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Received {
    /// Read by the user-space program.
    pub(super) delivered: u64,
    /// Dropped by its socket or ring.
    pub(super) socket_dropped: u64,
}

fn delta(a: &Option<EthtoolValues>, b: &Option<EthtoolValues>, name: &str) -> u64 {
    match (a, b) {
        (Some(a), Some(b)) => a.delta(b, name),
        _ => 0,
    }
}

/// The stages between `p0` and `p1` for a receiver on `path` that counted `got`; `filtered`:
/// the row's filter passes only flow 0 of the generator.
pub(super) fn stages(
    p0: &Probe,
    p1: &Probe,
    gen: &GenReport,
    path: RxPath,
    filtered: Filtered,
    got: Received,
) -> Stages {
    let rx = |name| delta(&p0.rx, &p1.rx, name);
    let gen_veth_dropped = match gen.method {
        Method::XdpLive => delta(&p0.gen, &p1.gen, "tx_queue_0_xdp_xmit_errors"),
        Method::AfPacket => match (p0.gen_link, p1.gen_link) {
            (Some(a), Some(b)) => b.tx_dropped.saturating_sub(a.tx_dropped),
            _ => 0,
        },
    };
    let verdict_drops = rx("rx_queue_0_xdp_drops");
    let failures = rx("rx_queue_0_drops");
    let (delivered, xdp_dropped) = match path {
        RxPath::Ceiling => (verdict_drops, failures),
        RxPath::AfPacket | RxPath::Xdp => (got.delivered, verdict_drops + failures),
    };
    let xdp_in = rx("rx_queue_0_xdp_packets");
    let passed = xdp_in.saturating_sub(verdict_drops + failures);
    let filtered_out = match filtered {
        Filtered::No => 0,
        Filtered::InXdp => passed.saturating_sub(rx("rx_queue_0_xdp_redirect")),
        Filtered::Matching(m) => passed.saturating_sub(m),
    };
    let after_veth = match path {
        RxPath::AfPacket => xdp_dropped + got.socket_dropped,
        RxPath::Xdp | RxPath::Ceiling => xdp_dropped,
    };
    let explained = delivered + filtered_out + gen_veth_dropped + after_veth;
    Stages {
        generated: gen.sent,
        gen_veth_dropped,
        rx_veth_xdp: xdp_in,
        xdp_dropped,
        xdp_redirected: rx("rx_queue_0_xdp_redirect"),
        filtered_out,
        socket_dropped: got.socket_dropped,
        delivered,
        unaccounted: gen.sent as i64 - explained as i64,
    }
}

/// USER_HZ: the unit of the CPU times in `/proc/stat` and `/proc/PID/stat` (100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Steal time and the NAPI kthread between `p0` and `p1`.
pub(super) fn noise(p0: &Probe, p1: &Probe, tb: &Testbed, gen: &GenReport) -> Noise {
    let dt = p1.t.duration_since(p0.t).as_secs_f64().max(1e-3);
    let steal = |cpu: usize| {
        let get = |p: &Probe| p.steal.iter().find(|(c, _)| *c == cpu).map(|&(_, v)| v);
        match (get(p0), get(p1)) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / TICKS_PER_SEC / dt,
            _ => 0.0,
        }
    };
    let busy: u64 = p1
        .kthreads
        .iter()
        .map(|k1| {
            p0.kthreads
                .iter()
                .find(|k0| k0.tid == k1.tid)
                .map_or(0, |k0| k1.cpu_ticks.saturating_sub(k0.cpu_ticks))
        })
        .sum();
    Noise {
        gen_cpu_steal: steal(tb.gen_cpu()),
        rx_cpu_steal: steal(tb.rx_cpu()),
        offered_pps: gen.rate(),
        kthread_cpu: p1.kthreads.first().map(|k| k.processor),
        kthread_busy: busy as f64 / TICKS_PER_SEC / dt,
    }
}

/// `(cpu, steal ticks)` for every `cpuN` line of `/proc/stat` (the 8th value).
fn parse_steal(text: &str) -> Vec<(usize, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let cpu = it.next()?.strip_prefix("cpu")?.parse().ok()?;
            let steal = it.nth(7)?.parse().ok()?;
            Some((cpu, steal))
        })
        .collect()
}

/// A thread's CPU time and last CPU, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KStat {
    tid: i32,
    /// utime + stime, ticks.
    cpu_ticks: u64,
    /// The CPU it last ran on.
    processor: usize,
}

/// Parses `/proc/PID/stat`: field 1 the pid, 14 and 15 utime and stime, 39 processor (the
/// command, field 2, may hold spaces: fields are counted after its closing parenthesis).
fn parse_task_stat(text: &str) -> Option<KStat> {
    let tid = text.split_whitespace().next()?.parse().ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let field = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(KStat {
        tid,
        cpu_ticks: field(14)? + field(15)?,
        processor: field(39)? as usize,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn steal_per_cpu() {
        let t = "cpu  10 0 20 300 4 0 1 7 0 0\ncpu0 5 0 10 150 2 0 1 3 0 0\ncpu1 5 0 10 150 2 0 0 4 0 0\nintr 1 2\n";
        assert_eq!(parse_steal(t), vec![(0, 3), (1, 4)]);
    }

    #[test]
    fn task_stat_with_a_space_in_the_name() {
        let t = "4242 (napi/fplr0-1 x) S 2 0 0 0 -1 2129984 0 0 0 0 17 25 0 0 20 0 1 0 100 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(
            parse_task_stat(t),
            Some(KStat {
                tid: 4242,
                cpu_ticks: 42,
                processor: 1
            })
        );
        assert_eq!(parse_task_stat("garbage"), None);
    }
}
