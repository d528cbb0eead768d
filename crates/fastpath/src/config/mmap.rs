//! TPACKET_V3 ring geometry for the `mmap` rung.

use std::time::Duration;

use crate::{Error, Result};

/// TPACKET_V3 ring geometry for the [`Backend::Mmap`](crate::Backend::Mmap) rung.
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
                    self.block_size.max(page).next_power_of_two()
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
                    self.block_count.max(1).next_power_of_two()
                ),
            });
        }
        if self.block_timeout.is_zero() || self.block_timeout > Duration::from_secs(60) {
            return Err(Error::InvalidConfig {
                field: "block timeout",
                why: format!("{:?} is out of range (1 ms to 60 s)", self.block_timeout),
            });
        }
        let total = u64::from(self.block_size) * u64::from(self.block_count);
        if total > u64::from(u32::MAX) {
            return Err(Error::OutOfMemory {
                what: "PACKET_RX_RING",
                asked: total,
                why: "a TPACKET_V3 ring holds at most 4 GiB; use fewer or smaller blocks".into(),
            });
        }
        Ok(())
    }
}
