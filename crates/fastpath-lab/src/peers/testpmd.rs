//! dpdk-testpmd, rxonly on a `net_af_packet` or `net_af_xdp` vdev: `--stats-period 1` prints
//! cumulative `RX-packets` every second, so the window runs between two such lines
//! (timestamped when read).

use super::{strings, PeerCount};
use crate::testbed::RX_IF;

/// The line that says it receives (the first periodic statistics block).
pub(super) const READY: &str = "Port statistics";

/// The DPDK poll-mode driver testpmd reads the receiving veth with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vdev {
    /// `net_af_packet` (TPACKET_V2 ring).
    AfPacket,
    /// `net_af_xdp` (attaches its own XDP program).
    AfXdp,
}

/// `stdbuf -oL dpdk-testpmd -l OTHER,RX ... --vdev VDEV -- --forward-mode=rxonly ...`: the main
/// lcore on `other_cpu`, the forwarding lcore on `rx_cpu`.
pub(super) fn argv(vdev: Vdev, rx_cpu: usize, other_cpu: usize) -> Vec<String> {
    let vdev = match vdev {
        Vdev::AfXdp => format!("net_af_xdp0,iface={RX_IF},start_queue=0,queue_count=1"),
        Vdev::AfPacket => {
            format!("net_af_packet0,iface={RX_IF},blocksz=4096,framesz=2048,framecnt=4096")
        }
    };
    let lcores = format!("{other_cpu},{rx_cpu}");
    // --no-huge: no huge pages to reserve (that would change the machine);
    // --no-shconf/--no-telemetry and a private --file-prefix: nothing shared left in
    // /var/run/dpdk (--in-memory conflicts with --no-huge). 16k mbufs (36 MB) fit in -m 128.
    strings(&[
        "stdbuf",
        "-oL",
        "dpdk-testpmd",
        "-l",
        &lcores,
        "--main-lcore",
        &other_cpu.to_string(),
        "--no-pci",
        "--no-huge",
        "--no-shconf",
        "--no-telemetry",
        "--file-prefix",
        &dpdk_prefix(),
        "-m",
        "128",
        "--vdev",
        &vdev,
        "--",
        "--forward-mode=rxonly",
        "--auto-start",
        "--stats-period",
        "1",
        "--nb-cores=1",
        "--rxd=2048",
        "--total-num-mbufs=16384",
    ])
}

/// testpmd's `--file-prefix`: `fplab-<pid>`, removed by [`remove_dpdk_runtime_dir`].
fn dpdk_prefix() -> String {
    format!("fplab-{}", std::process::id())
}

/// Removes `/var/run/dpdk/fplab-<pid>`, the (empty) runtime directory testpmd leaves behind,
/// and `/var/run/dpdk` itself if `created_parent` (it did not exist before) and it is empty.
pub fn remove_dpdk_runtime_dir(created_parent: bool) {
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", dpdk_prefix()));
    if created_parent {
        let _ = std::fs::remove_dir("/var/run/dpdk");
    }
}

/// Parses one testpmd periodic statistics block: the cumulative `RX-packets` and
/// `RX-missed` of port 0 from lines such as
/// `  RX-packets: 123        RX-missed: 4          RX-bytes:  7872`.
pub fn parse_testpmd_block(lines: &[impl AsRef<str>]) -> Option<PeerCount> {
    let mut out = None;
    for l in lines {
        let l = l.as_ref();
        if !l.contains("RX-packets:") {
            continue;
        }
        let field = |name: &str| -> Option<u64> {
            let i = l.find(name)? + name.len();
            l[i..].split_whitespace().next()?.parse().ok()
        };
        let delivered = field("RX-packets:")?;
        let dropped = field("RX-missed:").unwrap_or(0);
        out = Some(PeerCount { delivered, dropped });
        break; // port 0 comes first
    }
    out
}

/// The counts in its exit output: the final "Forward statistics" / accumulated block, i.e. the
/// last `RX-packets` line.
pub(super) fn final_count(all: &[&str]) -> Option<PeerCount> {
    all.iter()
        .rev()
        .find(|l| l.contains("RX-packets:"))
        .and_then(|l| parse_testpmd_block(&[l]))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::peers::strings as v;

    #[test]
    fn testpmd_block() {
        let lines = v(&[
            "  ######################## NIC statistics for port 0  ########################",
            "  RX-packets: 2613394    RX-missed: 17         RX-bytes:  167257216",
            "  RX-errors: 0",
        ]);
        assert_eq!(
            parse_testpmd_block(&lines),
            Some(PeerCount {
                delivered: 2_613_394,
                dropped: 17
            })
        );
        assert_eq!(parse_testpmd_block(&v(&["Port statistics"])), None);
    }
}
