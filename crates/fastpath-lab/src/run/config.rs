//! The schedule: which layouts, sizes and rows, how many repetitions of how long.

use std::time::Duration;

use fastpath::Backend;

use super::RowSpec;
use crate::gen;
use crate::peers::Peer;
use crate::testbed::Layout;

/// What to measure and how long.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Layouts, in order.
    pub layouts: Vec<Layout>,
    /// Frame sizes (bytes, FCS excluded).
    pub sizes: Vec<usize>,
    /// Rows.
    pub rows: Vec<RowSpec>,
    /// Repetitions per row (≥ 1; the table wants 3).
    pub repetitions: u32,
    /// Length of each timed window.
    pub rep_time: Duration,
    /// Traffic before the window opens (rings fill, NAPI settles).
    pub warmup: Duration,
    /// Generator rate limit (frames per second), `None`: as fast as it goes.
    pub rate: Option<u64>,
    /// UDP flows.
    pub flows: u16,
    /// Frames per live-frames call.
    pub repeat: u32,
    /// Socket receive buffer of the `recv` and `recv-batch` rows (`None`: fastpath's default).
    pub rcvbuf: Option<usize>,
    /// How the offered load is chosen.
    pub load: Load,
}

/// How the offered load is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// As fast as the generator goes (or `rate`): the overload behaviour.
    Max,
    /// Per row, the highest offered rate at which the receiver loses at most `loss` (a
    /// fraction, 0.001 = 0.1 %): the no-drop rate of RFC 2544.
    Ndr {
        /// Largest acceptable loss, as a fraction.
        loss: f64,
    },
}

impl LabConfig {
    /// The default run: both layouts, 64 and 100 bytes, every row, 3 × 3 s.
    pub fn full() -> LabConfig {
        LabConfig {
            layouts: vec![Layout::OneCore, Layout::Split],
            sizes: vec![64, 100],
            rows: RowSpec::ALL.to_vec(),
            repetitions: 3,
            rep_time: Duration::from_secs(3),
            warmup: Duration::from_millis(300),
            rate: None,
            flows: 1,
            repeat: gen::DEFAULT_REPEAT,
            rcvbuf: None,
            load: Load::Max,
        }
    }

    /// `--quick`: one-core, 64 bytes, 3 × 1 s, every row but the dpdk ones (their EAL
    /// start costs ~3 s per repetition, which would break the one-minute budget) and the netring
    /// ones (their harness is built with cargo first, which can take minutes); ask for them with
    /// `--rows`.
    pub fn quick() -> LabConfig {
        LabConfig {
            layouts: vec![Layout::OneCore],
            sizes: vec![64],
            rows: RowSpec::ALL
                .into_iter()
                .filter(|r| {
                    !matches!(
                        r,
                        RowSpec::Fastpath(Backend::Dpdk)
                            | RowSpec::Peer(
                                Peer::TestpmdAfPacket
                                    | Peer::TestpmdAfXdp
                                    | Peer::NetringV3
                                    | Peer::NetringXdp
                            )
                    )
                })
                .collect(),
            rep_time: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            // Smaller calls stop sooner: ~0.15 s per call instead of ~0.3 s.
            repeat: 1 << 20,
            ..LabConfig::full()
        }
    }
}
