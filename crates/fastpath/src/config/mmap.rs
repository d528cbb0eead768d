//! TPACKET_V3 ring geometry for the `mmap` rung.

use std::time::Duration;

use crate::{Error, Result};

/// TPACKET_V3 ring geometry for the [`Backend::Mmap`](crate::Backend::Mmap) rung.
///
/// What the geometry was measured to do on the lab's one-core veth testbed (64 B, full load, lab
/// v2, 6 rounds, ratios to tcpdump in the same runs; `docs/lab-notes.md`): 1 MiB × 32 (the
/// default) 1.08×, 512 KiB × 4 1.13×, 256 KiB × 8 1.14×, 256 KiB × 16 1.13×, 128 KiB × 16
/// 1.13×, 2 MiB × 16 1.09× (earlier run) — every interval overlaps the default's. The receiver
/// spends ~20 ns per packet either way; the kernel's NAPI kthread (~75–85 % of the core) sets the
/// pace. A ring that fits the 1 MiB L2 cache did not pay off, and a smaller ring absorbs shorter
/// bursts, so the default stays. The block timeout bounds the latency of a lone packet (median
/// ~0.9 ms with 1 ms) and costs nothing under load (full blocks are handed over at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MmapConfig {
    /// Bytes per block; a power of two, at least one page. Default 1 MiB.
    pub block_size: u32,
    /// Number of blocks. Default 32 (32 MiB in all).
    pub block_count: u32,
    /// Frame size the kernel uses for its bookkeeping; a power of two ≥ 128 and ≤ block size.
    /// Default 2048.
    pub frame_size: u32,
    /// How long the kernel may keep a partly filled block before handing it over
    /// (`tp_retire_blk_tov`). This bounds the latency added at low packet rates. Default 1 ms.
    pub block_timeout: Duration,
}

impl Default for MmapConfig {
    fn default() -> Self {
        MmapConfig {
            block_size: 1 << 20,
            block_count: 32,
            frame_size: 2048,
            block_timeout: Duration::from_millis(1),
        }
    }
}

impl MmapConfig {
    /// Checks the ring geometry (part of [`Config::validate`](crate::Config::validate)).
    pub(crate) fn validate(&self) -> Result<()> {
        let page = crate::sys::page_size() as u32;
        if !self.block_size.is_power_of_two() || self.block_size < page {
            return Err(Error::InvalidConfig {
                field: "block size",
                why: format!(
                    "{} is not a power of two of at least one page ({page} bytes); try {}",
                    self.block_size,
                    pow2_hint(self.block_size.max(page))
                ),
            });
        }
        if !self.frame_size.is_power_of_two()
            || self.frame_size < 128
            || self.frame_size > self.block_size
        {
            return Err(Error::InvalidConfig {
                field: "frame size",
                why: format!(
                    "{} must be a power of two between 128 and the block size ({})",
                    self.frame_size, self.block_size
                ),
            });
        }
        if self.block_count == 0 || !self.block_count.is_power_of_two() {
            return Err(Error::InvalidConfig {
                field: "block count",
                why: format!(
                    "{} is not a power of two; try {}",
                    self.block_count,
                    pow2_hint(self.block_count)
                ),
            });
        }
        if self.block_timeout.is_zero() || self.block_timeout > Duration::from_secs(60) {
            return Err(Error::InvalidConfig {
                field: "block timeout",
                why: format!("{:?} is out of range (1 ms to 60 s)", self.block_timeout),
            });
        }
        // Both are powers of two below 2^32, so the product fits in u64.
        let total = u64::from(self.block_size) * u64::from(self.block_count);
        if total > u64::from(u32::MAX) {
            // A configuration mistake (usage), not a shortage of memory on this machine.
            return Err(Error::InvalidConfig {
                field: "ring",
                why: format!(
                    "{} blocks of {} bytes make {total} bytes, more than the 4 GiB a TPACKET_V3 \
                     ring can hold; use fewer or smaller blocks (--blocks, --block-size)",
                    self.block_count, self.block_size
                ),
            });
        }
        Ok(())
    }

    /// Frames in the ring (`tp_frame_nr`): `block_size / frame_size` per block. `None` if it
    /// overflows (never, for a geometry that passed [`validate`](Self::validate)).
    pub(crate) fn frame_count(&self) -> Option<u32> {
        (self.block_size / self.frame_size.max(1)).checked_mul(self.block_count)
    }
}

/// The power of two to suggest for `v`: the next one up, or the largest a `u32` holds when the
/// next one up does not fit (never "try 0").
pub(crate) fn pow2_hint(v: u32) -> u32 {
    v.max(1).checked_next_power_of_two().unwrap_or(1 << 31)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn hints_never_overflow_and_an_oversized_ring_is_a_usage_error() {
        let m = MmapConfig {
            block_count: u32::MAX,
            ..MmapConfig::default()
        };
        let e = m.validate().unwrap_err();
        assert!(e.is_usage(), "{e}");
        assert!(e.to_string().contains("try 2147483648"), "{e}");
        let m = MmapConfig {
            block_size: 3_000_000_000,
            ..MmapConfig::default()
        };
        let e = m.validate().unwrap_err();
        assert!(e.to_string().contains("try 2147483648"), "{e}");
        let m = MmapConfig {
            block_count: 0,
            ..MmapConfig::default()
        };
        assert!(m.validate().unwrap_err().to_string().contains("try 1"));
        let m = MmapConfig {
            block_size: 1 << 30,
            block_count: 1 << 10,
            ..MmapConfig::default()
        };
        let e = m.validate().unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("4 GiB"), "{e}");
        assert_eq!(MmapConfig::default().frame_count(), Some(512 * 32));
    }
}
