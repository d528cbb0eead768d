//! What a capture says on stderr: the `listening on` line once the receivers are open, a status
//! line once a second while writing a file, and the three-line summary at the end.

use std::thread;
use std::time::{Duration, Instant};

use fastpath::XdpMode as Mode;
use fastpath::{Backend, Capabilities, Receiver, Stats};

use super::options::Args;
use super::worker::{Shared, Worker};

/// `listening on IFACE, backend B (MODE), snapshot length N bytes...`: scripts wait for it.
pub(super) fn listening(args: &Args, receivers: &[Receiver]) {
    let caps = receivers[0].capabilities();
    let mut detail = String::new();
    if args.threads > 1 {
        detail = format!(
            ", {} threads in fanout group {}",
            args.threads,
            receivers[0].fanout_group().unwrap_or(0)
        );
    }
    if let Some(mode) = receivers[0].xdp_mode() {
        detail = xdp_detail(mode, receivers, &caps);
    }
    eprintln!(
        "listening on {}, backend {} ({}{}), snapshot length {} bytes{detail}",
        args.interface,
        args.backend,
        caps.mode,
        if caps.zero_copy && args.backend != Backend::Xdp {
            ", zero-copy"
        } else {
            ""
        },
        args.snaplen,
    );
}

/// `, native XDP, queues 0,1` and what the driver or kernel cannot do.
fn xdp_detail(mode: Mode, receivers: &[Receiver], caps: &Capabilities) -> String {
    let queues: Vec<String> = receivers
        .iter()
        .filter_map(|r| r.queue().map(|q| q.to_string()))
        .collect();
    let mut detail = format!(
        ", {} XDP, queue{} {}{}",
        if mode == Mode::Native {
            "native"
        } else {
            "generic"
        },
        if queues.len() == 1 { "" } else { "s" },
        queues.join(","),
        if caps.driver_zero_copy {
            ""
        } else {
            " (the driver has no AF_XDP zero-copy: the kernel copies each frame)"
        }
    );
    if !caps.restores_vlan {
        detail.push_str(
            "; VLAN tags the device strips are not put back (needs native mode, Linux 6.8+ \
             and driver support for bpf_xdp_metadata_rx_vlan_tag)",
        );
    }
    detail
}

/// Waits for the workers to end; while writing a file, prints `pps, total, drops` on stderr
/// once a second and runs `each_second` after it (rotation by time, `-z`, statistics blocks);
/// neither once a stop was asked for (the end of the capture does what remains).
pub(super) fn wait(sh: &Shared, workers: &[Worker], status: bool, each_second: &mut dyn FnMut()) {
    let mut last = 0u64;
    let mut last_t = Instant::now();
    let mut next = last_t + Duration::from_secs(1);
    while !workers.iter().all(|w| w.is_finished()) {
        thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if !status || sh.stopping() || now < next {
            continue;
        }
        let total = sh.handed();
        let drops = sh.drops();
        let pps = (total - last) as f64 / now.duration_since(last_t).as_secs_f64();
        eprintln!("fastpath: {pps:.0} pkts/s, {total} captured, {drops} dropped by kernel");
        each_second();
        last = total;
        last_t = now;
        next = now + Duration::from_secs(1);
    }
}

/// What the summary reports.
pub(super) struct Counts<'a> {
    /// Packets that reached the output.
    pub(super) captured: u64,
    /// The receivers' counters, or why they could not be read.
    pub(super) total: &'a anyhow::Result<Stats>,
    /// Received after the count was reached, not written.
    pub(super) beyond_count: u64,
    /// Still queued when the drain bound passed, not written.
    pub(super) left: u64,
}

/// `N packets captured`, `N packets received by kernel`, `N packets dropped by kernel`, and,
/// when not zero, what was received but not written (beyond `-c`, or left when the drain bound
/// passed), so that the lines add up: captured + dropped + those = received (when no error cut
/// the capture short). If the counters could not be read, says so instead of printing zeros.
pub(super) fn summary(c: &Counts<'_>) {
    for line in summary_lines(c) {
        eprintln!("{line}");
    }
}

/// The lines of [`summary`].
fn summary_lines(c: &Counts<'_>) -> Vec<String> {
    let mut lines = vec![format!("{} packets captured", c.captured)];
    match c.total {
        Ok(total) => {
            lines.push(format!("{} packets received by kernel", total.received));
            lines.push(format!("{} packets dropped by kernel", total.dropped));
        }
        Err(e) => lines.push(format!(
            "fastpath: cannot read the kernel's packet counters: {e:#}"
        )),
    }
    if c.beyond_count > 0 {
        lines.push(format!(
            "{} packets received after the count was reached (not written)",
            c.beyond_count
        ));
    }
    if c.left > 0 {
        lines.push(format!(
            "{} packets still queued when the drain at the end ran out of time (not written)",
            c.left
        ));
    }
    lines
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_counter_failure_is_said_not_zeroed() {
        let failed: anyhow::Result<Stats> = Err(anyhow::anyhow!("getsockopt: EINVAL"));
        let lines = summary_lines(&Counts {
            captured: 5,
            total: &failed,
            beyond_count: 0,
            left: 0,
        });
        assert_eq!(lines[0], "5 packets captured");
        assert!(
            lines[1].contains("cannot read") && lines[1].contains("EINVAL"),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("0 packets")), "{lines:?}");
        let ok: anyhow::Result<Stats> = Ok(Stats::default());
        let lines = summary_lines(&Counts {
            captured: 0,
            total: &ok,
            beyond_count: 3,
            left: 2,
        });
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[3].starts_with("3 packets received after the count"));
        assert!(lines[4].starts_with("2 packets still queued"));
    }
}
