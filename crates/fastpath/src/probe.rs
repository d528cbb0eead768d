//! What each rung could do on an interface, asked without opening anything on it (for
//! `fastpath capture -D`): [`interfaces`] and [`probe`].
//!
//! The answers are [`Capabilities`], the very values a [`Receiver`](crate::Receiver) opened there
//! reports, built from what the kernel and the driver say: queues (ethtool channels), hardware
//! receive timestamps (`ETHTOOL_GET_TS_INFO`), and for `xdp` the device's XDP features (the
//! `netdev` generic netlink family, Linux 6.3+): native XDP, AF_XDP zero-copy, receive metadata
//! (timestamps, VLAN tags).

use crate::backend::{mmap, recv, xdp};
use crate::bpf::btf;
use crate::config::Backend;
use crate::packet::Capabilities;
use crate::sys::genl;
use crate::{sys, Result};

/// One interface and what each rung could do on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfaceCaps {
    /// The interface name.
    pub name: String,
    /// Its index.
    pub ifindex: u32,
    /// Administratively up.
    pub up: bool,
    /// Receive queues (what `--queues all` opens).
    pub rx_queues: u32,
    /// The NIC stamps received packets in hardware (`-j adapter` works on the AF_PACKET rungs).
    pub hw_timestamps: bool,
    /// The driver runs XDP programs itself (native mode); `None` where the kernel does not say
    /// (no `netdev` netlink family). Generic mode works everywhere.
    pub xdp_native: Option<bool>,
    /// The driver's XDP receive metadata has timestamps (`bpf_xdp_metadata_rx_timestamp`).
    pub xdp_rx_timestamp: bool,
    /// Per rung: what a handle opened here would report. `dpdk` is absent (its devices are not
    /// kernel interfaces).
    pub rungs: Vec<(Backend, Capabilities)>,
}

/// Every interface of the calling thread's network namespace, probed.
///
/// # Errors
/// [`Error::Syscall`](crate::Error::Syscall) if the interfaces cannot be listed.
pub fn interfaces() -> Result<Vec<InterfaceCaps>> {
    sys::interface_names()?
        .into_iter()
        .map(|(ifindex, name)| probe_one(ifindex, name))
        .collect()
}

/// One interface, probed.
///
/// # Errors
/// [`Error::NoSuchInterface`](crate::Error::NoSuchInterface).
pub fn probe(name: &str) -> Result<InterfaceCaps> {
    let ifindex = sys::ifindex(name)?;
    probe_one(ifindex, name.to_owned())
}

fn probe_one(ifindex: u32, name: String) -> Result<InterfaceCaps> {
    let sock = sys::packet_socket().ok();
    let up = sock
        .as_ref()
        .and_then(|s| sys::interface_is_up(s, &name).ok())
        .unwrap_or(false);
    let hw_timestamps = sock
        .as_ref()
        .and_then(|s| sys::tstamp::ts_info(s, &name).ok())
        .is_some_and(|i| sys::tstamp::has_hw_rx(&i));
    let rx_queues = xdp::rx_queue_count(ifindex).map_or(1, |(_, n)| n.max(1));
    let feats = genl::netdev_features(ifindex);
    let xdp_native = feats.map(|f| {
        let want = genl::NETDEV_XDP_ACT_BASIC | genl::NETDEV_XDP_ACT_REDIRECT;
        f.xdp & want == want
    });
    let f = feats.unwrap_or_default();
    let xdp_caps = xdp::XskSocket::caps(
        true,
        f.xdp & genl::NETDEV_XDP_ACT_XSK_ZEROCOPY != 0,
        xdp_native == Some(true)
            && f.rx_metadata & genl::NETDEV_XDP_RX_METADATA_VLAN_TAG != 0
            && btf::rx_vlan_tag_kfunc().is_some(),
    );
    let rungs = vec![
        (Backend::Recv, recv::caps(hw_timestamps, false)),
        (Backend::RecvBatch, recv::caps(hw_timestamps, true)),
        (Backend::Mmap, mmap::caps(hw_timestamps)),
        (Backend::Xdp, xdp_caps),
    ];
    Ok(InterfaceCaps {
        name,
        ifindex,
        up,
        rx_queues,
        hw_timestamps,
        xdp_native,
        xdp_rx_timestamp: f.rx_metadata & genl::NETDEV_XDP_RX_METADATA_TIMESTAMP != 0,
        rungs,
    })
}
