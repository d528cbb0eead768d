//! An interface's driver statistics (`ethtool -S`), read with the `SIOCETHTOOL` ioctl on a
//! socket of the interface's network namespace. veth reports per-queue XDP counters here
//! (`rx_queue_0_xdp_packets`, `rx_queue_0_xdp_drops`, `rx_queue_0_xdp_redirect`,
//! `tx_queue_0_xdp_xmit_errors`, ...) that `ip -s link` does not show.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::sys;

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// One interface's statistics: their names, read once, and the socket to read values with.
#[derive(Debug)]
pub struct EthtoolStats {
    sock: OwnedFd,
    ifname: CString,
    names: Vec<String>,
}

impl EthtoolStats {
    /// Opens the statistics of `ifname` in the calling thread's network namespace (the socket
    /// keeps that namespace: later reads may come from any thread).
    ///
    /// # Errors
    /// No such interface, or a driver without statistics.
    pub fn open(ifname: &str) -> io::Result<EthtoolStats> {
        let sock = sys::inet_dgram_socket()?;
        let ifname = CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        // struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[1]; }
        let mut info = [0u64; 3];
        info[0] = u64::from(ETHTOOL_GSSET_INFO);
        info[1] = 1 << ETH_SS_STATS;
        sys::ethtool(sock.as_fd(), &ifname, &mut info)?;
        let n = (info[2] & 0xffff_ffff) as usize;
        // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }: the 12-byte
        // header then n × 32 bytes, in a u64 buffer.
        let mut buf = vec![0u64; (12 + n * ETH_GSTRING_LEN).div_ceil(8)];
        buf[0] = u64::from(ETHTOOL_GSTRINGS) | (u64::from(ETH_SS_STATS) << 32);
        buf[1] = n as u64; // len (the low half of the second word)
        sys::ethtool(sock.as_fd(), &ifname, &mut buf)?;
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let names = (0..n)
            .map(|i| {
                let s = &bytes[12 + i * ETH_GSTRING_LEN..12 + (i + 1) * ETH_GSTRING_LEN];
                let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                String::from_utf8_lossy(&s[..end]).into_owned()
            })
            .collect();
        Ok(EthtoolStats {
            sock,
            ifname,
            names,
        })
    }

    /// The statistics' names, in the driver's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads every value now.
    ///
    /// # Errors
    /// The interface went away.
    pub fn read(&self) -> io::Result<EthtoolValues> {
        // struct ethtool_stats { u32 cmd; u32 n_stats; u64 data[]; }
        let n = self.names.len();
        let mut buf = vec![0u64; 1 + n];
        buf[0] = u64::from(ETHTOOL_GSTATS) | ((n as u64) << 32);
        sys::ethtool(self.sock.as_fd(), &self.ifname, &mut buf)?;
        Ok(EthtoolValues {
            pairs: self
                .names
                .iter()
                .cloned()
                .zip(buf[1..].iter().copied())
                .collect(),
        })
    }
}

/// One reading of an interface's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EthtoolValues {
    pairs: Vec<(String, u64)>,
}

impl EthtoolValues {
    /// The value of statistic `name` (0 if the driver has no such statistic).
    pub fn get(&self, name: &str) -> u64 {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |&(_, v)| v)
    }

    /// `later − self` for statistic `name` (0 if it went backwards).
    pub fn delta(&self, later: &EthtoolValues, name: &str) -> u64 {
        later.get(name).saturating_sub(self.get(name))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn unknown_interfaces_and_loopback() {
        if !crate::process::is_root() {
            // fastpath-testutil's `require!` is above this crate; the same rule by hand: CI
            // (FASTPATH_REQUIRE_PRIV=1) fails instead of skipping.
            assert!(
                std::env::var_os("FASTPATH_REQUIRE_PRIV").is_none(),
                "needs root (FASTPATH_REQUIRE_PRIV is set)"
            );
            return eprintln!("SKIP unknown_interfaces_and_loopback: needs root");
        }
        // `lo` has no driver statistics: the ioctl says so.
        assert!(
            EthtoolStats::open("lo").is_err()
                || EthtoolStats::open("lo").unwrap().names().is_empty()
        );
        assert!(EthtoolStats::open("fph-nosuch0").is_err());
    }
}
