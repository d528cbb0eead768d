//! tcpdump (libpcap, TPACKET_V3): `SIGUSR1` makes it print `N packets captured, ...` at any
//! time, so the lab takes a snapshot at the start and at the end of the window (exact window).

use super::{strings, PeerCount};
use crate::testbed::RX_IF;

/// The line that says it receives.
pub(super) const READY: &str = "listening on";

/// `taskset -c CPU tcpdump -i fplr0 -w /dev/null -B 65536 -s 65535 -n`.
pub(super) fn argv(cpu: &str) -> Vec<String> {
    let mut v = strings(&["taskset", "-c", cpu, "tcpdump", "-i", RX_IF]);
    v.extend(strings(&[
        "-w",
        "/dev/null",
        "-B",
        "65536",
        "-s",
        "65535",
        "-n",
    ]));
    v
}

/// Parses tcpdump's `N packets captured, M packets received by filter, K packets dropped by
/// kernel` (the `SIGUSR1` line) or the three lines it prints at exit.
pub fn parse_tcpdump(lines: &[impl AsRef<str>]) -> Option<PeerCount> {
    let mut captured = None;
    let mut dropped = 0;
    for l in lines {
        for part in l.as_ref().trim_start_matches("tcpdump: ").split(',') {
            let part = part.trim();
            if let Some(n) = part.strip_suffix(" packets captured") {
                captured = n.trim().parse().ok();
            } else if let Some(n) = part.strip_suffix(" packets dropped by kernel") {
                dropped = n.trim().parse().unwrap_or(0);
            }
        }
    }
    captured.map(|delivered| PeerCount { delivered, dropped })
}

/// The counts in its exit output: the three exit lines come last.
pub(super) fn final_count(all: &[&str]) -> Option<PeerCount> {
    let k = all.len().saturating_sub(3);
    parse_tcpdump(&all[k..])
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::peers::strings as v;

    #[test]
    fn tcpdump_usr1_and_exit_lines() {
        let usr1 = v(&["tcpdump: 1234 packets captured, 1300 packets received by filter, 66 packets dropped by kernel"]);
        assert_eq!(
            parse_tcpdump(&usr1),
            Some(PeerCount {
                delivered: 1234,
                dropped: 66
            })
        );
        let exit = v(&[
            "5 packets captured",
            "5 packets received by filter",
            "0 packets dropped by kernel",
        ]);
        assert_eq!(
            parse_tcpdump(&exit),
            Some(PeerCount {
                delivered: 5,
                dropped: 0
            })
        );
        assert_eq!(parse_tcpdump(&v(&["listening on fplr0"])), None);
    }
}
