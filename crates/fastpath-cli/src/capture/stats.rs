//! Drops inside the file: the counters of each interface, written as pcapng interface
//! statistics blocks every few seconds, into each rotated file before it closes, and at the
//! end.

use std::sync::{Arc, Mutex};

use fastpath::pcap::InterfaceStats;
use fastpath::Stats;

/// How often the blocks are written during a capture.
pub(super) const EVERY_SECS: u64 = 5;

/// The latest counters of every receiver, and which interface each belongs to.
#[derive(Debug)]
pub(super) struct Board {
    start_ns: u64,
    /// `(ifindex, name)` of each interface (0, `any` for the any device).
    interfaces: Vec<(u32, String)>,
    /// Interface drops per interface at the start (`/proc/net/dev`), where known.
    ifdrop_base: Vec<Option<u64>>,
    /// Per receiver: its interface and its latest counters.
    receivers: Vec<(u32, Mutex<Stats>)>,
}

impl Board {
    /// A board for receivers on `ifindexes` (one per receiver), whose interfaces are named in
    /// `interfaces`.
    pub(super) fn new(interfaces: Vec<(u32, String)>, ifindexes: &[u32]) -> Arc<Board> {
        let ifdrop_base = interfaces.iter().map(|(_, n)| if_drops(n)).collect();
        Arc::new(Board {
            start_ns: now_ns(),
            interfaces,
            ifdrop_base,
            receivers: ifindexes
                .iter()
                .map(|&i| (i, Mutex::new(Stats::default())))
                .collect(),
        })
    }

    /// Records receiver `idx`'s counters.
    pub(super) fn update(&self, idx: usize, stats: Stats) {
        if let Some((_, m)) = self.receivers.get(idx) {
            *m.lock().expect("no thread panicked holding the stats") = stats;
        }
    }

    /// One statistics block per interface, as of now.
    pub(super) fn blocks(&self) -> Vec<(u32, InterfaceStats)> {
        self.interfaces
            .iter()
            .zip(&self.ifdrop_base)
            .map(|((ifindex, name), base)| {
                let mut sum = Stats::default();
                for (i, m) in &self.receivers {
                    if i == ifindex {
                        sum.merge(&m.lock().expect("no thread panicked holding the stats"));
                    }
                }
                let if_dropped = base.and_then(|b| Some(if_drops(name)?.saturating_sub(b)));
                let st = InterfaceStats {
                    start_ns: Some(self.start_ns),
                    received: Some(sum.received),
                    if_dropped,
                    os_dropped: Some(sum.dropped),
                    delivered: Some(sum.delivered),
                    ..InterfaceStats::default()
                };
                (*ifindex, st)
            })
            .collect()
    }
}

/// Nanoseconds since the epoch, now.
pub(super) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Packets the interface itself dropped: the `drop` column of `/proc/net/dev` (which is
/// per network namespace: `/proc/net` is the reading process's), as libpcap reads it for
/// `ps_ifdrop`. `None` where the interface has no line (`any`).
fn if_drops(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/dev").ok()?;
    parse_drops(&text, name)
}

/// The receive `drop` column of `name`'s line in `/proc/net/dev` text.
fn parse_drops(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (iface, rest) = line.split_once(':')?;
        if iface.trim() != name {
            return None;
        }
        // bytes packets errs drop ...
        rest.split_whitespace().nth(3)?.parse().ok()
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn reads_the_drop_column() {
        let text =
            "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
            lo:    1000      10    0    0    0     0          0         0     1000\n  \
            fpb:  99999     123    1   17    0     0          0         0        0\n";
        assert_eq!(parse_drops(text, "fpb"), Some(17));
        assert_eq!(parse_drops(text, "lo"), Some(0));
        assert_eq!(parse_drops(text, "any"), None);
    }
}
