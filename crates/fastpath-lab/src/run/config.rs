//! What a run measures: which layouts, sizes and rows, how many rounds of how long, in which
//! order (the seed) and under which offered load.

use std::time::Duration;

use fastpath::Backend;

use super::RowSpec;
use crate::gen;
use crate::peers::Peer;
use crate::report::LoadKind;
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
    /// Rounds (≥ 1): each runs every row once, in its own random order. 5 or more give
    /// intervals that say something.
    pub rounds: u32,
    /// Seed of the round order and of the bootstrap ([`fresh_seed`] by default).
    pub seed: u64,
    /// The offered load.
    pub load: Load,
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
}

impl LabConfig {
    /// The default run: both layouts, 64 and 100 bytes, every row, 5 rounds × 3 s, full load,
    /// a fresh seed.
    pub fn full() -> LabConfig {
        LabConfig {
            layouts: vec![Layout::OneCore, Layout::Split],
            sizes: vec![64, 100],
            rows: RowSpec::ALL.to_vec(),
            rounds: 5,
            seed: fresh_seed(),
            load: Load::Max,
            rep_time: Duration::from_secs(3),
            warmup: Duration::from_millis(300),
            rate: None,
            flows: 1,
            repeat: gen::DEFAULT_REPEAT,
            rcvbuf: None,
        }
    }

    /// `--quick`: one-core, 64 bytes, 3 rounds × 1 s, every row but the dpdk ones (their EAL
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
            rounds: 3,
            rep_time: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            // Smaller calls stop sooner: ~0.15 s per call instead of ~0.3 s.
            repeat: 1 << 20,
            ..LabConfig::full()
        }
    }
}

/// The offered load of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// The generator as fast as it goes (or at [`LabConfig::rate`]); the rate it reached is
    /// measured per repetition.
    Max,
    /// Per row, the no-drop rate (RFC 2544): the highest offered rate at which the receiver
    /// loses at most `loss` (a fraction, 0.001 = 0.1 %) of the packets.
    Ndr {
        /// Loss allowed, as a fraction of the offered packets.
        loss: f64,
    },
}

impl Load {
    /// `--load ndr`'s default loss: 0.1 %.
    pub const DEFAULT_LOSS: f64 = 0.001;

    /// `max` or `ndr`, for the report.
    pub fn kind(self) -> LoadKind {
        match self {
            Load::Max => LoadKind::Max,
            Load::Ndr { .. } => LoadKind::Ndr,
        }
    }
}

/// A seed nobody chose: std's per-process random hasher keys (from the OS's random source),
/// hashed with the time.
pub fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
