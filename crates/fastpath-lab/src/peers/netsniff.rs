//! netsniff-ng (TPACKET_V3): it reports only a summary at exit (`N packets incoming`), so the
//! window runs from the generator's start to the `SIGINT` (it receives nothing before the
//! generator starts).

use super::{strings, PeerCount};
use crate::testbed::RX_IF;

/// The line that says it receives.
pub(super) const READY: &str = "Running!";

/// `taskset -c CPU netsniff-ng --in fplr0 --out /dev/null -t others --silent -b CPU -Q`
/// (-Q: do not touch IRQ affinities; -b: bind to the receiver CPU).
pub(super) fn argv(cpu: &str) -> Vec<String> {
    strings(&[
        "taskset",
        "-c",
        cpu,
        "netsniff-ng",
        "--in",
        RX_IF,
        "--out",
        "/dev/null",
        "-t",
        "others",
        "--silent",
        "-b",
        cpu,
        "-Q",
    ])
}

/// Parses netsniff-ng's exit summary (`N  packets incoming (U unread on exit)`,
/// `P  packets passed filter`, `F  packets failed filter (out of space)`): delivered is the
/// incoming count minus the unread ones, dropped the "failed filter (out of space)" ones.
pub fn parse_netsniff(lines: &[impl AsRef<str>]) -> Option<PeerCount> {
    let mut incoming = None;
    let mut unread = 0u64;
    let mut dropped = 0u64;
    for l in lines {
        let l = l
            .as_ref()
            .trim_matches(|c: char| c == '\r' || c.is_whitespace());
        let mut it = l.split_whitespace();
        let Some(n) = it.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let rest: String = it.collect::<Vec<_>>().join(" ");
        if rest.starts_with("packets incoming") {
            incoming = Some(n);
            if let Some(u) = rest
                .split('(')
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
            {
                unread = u;
            }
        } else if rest.starts_with("packets failed filter") {
            dropped = n;
        }
    }
    incoming.map(|i| PeerCount {
        delivered: i.saturating_sub(unread),
        dropped,
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::peers::strings as v;

    #[test]
    fn netsniff_summary() {
        let lines = v(&[
            "Running! Hang up with ^C!",
            "           4000000  packets incoming (17 unread on exit)",
            "           4000000  packets passed filter",
            "                12  packets failed filter (out of space)",
            "                 3  sec, 54 usec in total",
        ]);
        assert_eq!(
            parse_netsniff(&lines),
            Some(PeerCount {
                delivered: 3_999_983,
                dropped: 12
            })
        );
        assert_eq!(parse_netsniff(&v(&["nothing"])), None);
    }
}
