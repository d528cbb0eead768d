//! DPDK options for the `dpdk` rung.

use crate::{Error, Result};

/// DPDK options for [`Backend::Dpdk`](crate::Backend::Dpdk) (cargo feature `dpdk`).
///
/// With `dpdk`, [`Config::new`](crate::Config::new)'s interface names a DPDK device: a PCI
/// address bound to vfio-pci (`0000:03:00.0`), a virtual device (`net_af_packet0,iface=eth0`,
/// `net_af_xdp0,iface=eth0`, `net_ring0`, `net_null0`) or a port number attached by your own
/// [`eal_args`](Self::eal_args).
///
/// ```
/// use fastpath::{Backend, Config, DpdkConfig};
/// let cfg = Config::new("net_af_packet0,iface=eth0")
///     .backend(Backend::Dpdk)
///     .dpdk(DpdkConfig::default().eal_args(["--log-level=info"]).ring_size(2048));
/// # let _ = cfg;
/// ```
// Implementation: backend/dpdk/.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpdkConfig {
    /// Extra EAL arguments, appended after fastpath's defaults (CLI `--dpdk-args`). The EAL
    /// starts once per process, so only the first `dpdk` handle's arguments count. fastpath's
    /// defaults: `--lcores 0@(<the caller's CPUs>)`; `--vdev <spec> --no-pci` for a virtual
    /// device or `-a <address>` for PCI; `--in-memory -m 256`, `--no-huge` unless that much is
    /// free in reserved huge pages; `--no-telemetry --log-level=lib.eal:error`. Each default is
    /// left out when these arguments set the same option.
    pub eal_args: Vec<String>,
    /// RX and TX descriptors per queue (64 to 16384, default 1024; the driver may round it).
    pub ring_size: u16,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal_args: Vec::new(),
            ring_size: 1024,
        }
    }
}

impl DpdkConfig {
    /// Sets [`eal_args`](Self::eal_args).
    pub fn eal_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.eal_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`ring_size`](Self::ring_size).
    pub fn ring_size(mut self, n: u16) -> Self {
        self.ring_size = n;
        self
    }

    /// Checks the ring size (part of [`Config::validate`](crate::Config::validate)).
    pub(crate) fn validate(&self) -> Result<()> {
        if !(64..=16384).contains(&self.ring_size) {
            return Err(Error::InvalidConfig {
                field: "ring size",
                why: format!("{} is out of range (64 to 16384)", self.ring_size),
            });
        }
        Ok(())
    }
}
