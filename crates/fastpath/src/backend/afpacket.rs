//! AF_PACKET plumbing shared by the `recv` and `mmap` rungs: the socket, the kernel filter
//! program, promiscuous mode and fanout after `bind`, `PACKET_STATISTICS` accumulation, and
//! putting a stripped VLAN tag back in place.

use std::os::fd::OwnedFd;

use crate::config::{CaptureDirection, Config, FanoutMode, TimestampType, MAX_SNAPLEN};
use crate::packet::Stats;
use crate::sys::packet::{self as pk, VLAN_TAG_LEN};
use crate::{sys, Error, Result};

/// The interface name that stands for every interface: the socket binds to ifindex 0, as
/// libpcap's `any` device does.
pub(crate) const ANY: &str = "any";

/// The ifindex to bind to: 0 for [`ANY`], else `cfg.interface`'s.
pub(crate) fn bind_index(cfg: &Config) -> Result<u32> {
    if cfg.interface == ANY {
        Ok(0)
    } else {
        sys::ifindex(&cfg.interface)
    }
}

/// An AF_PACKET socket (protocol 0: it queues nothing until bound) for `cfg.interface`, which
/// must be up (any interface for [`ANY`]).
pub(crate) fn socket(cfg: &Config) -> Result<OwnedFd> {
    let fd = sys::packet_socket()?;
    if cfg.interface != ANY {
        sys::ensure_up(&fd, &cfg.interface)?;
    }
    Ok(fd)
}

/// With [`TimestampType::Adapter`]: checks that the interface stamps received packets in
/// hardware and turns that on; returns whether the socket must ask for hardware stamps.
pub(crate) fn hw_timestamps(fd: &OwnedFd, cfg: &Config) -> Result<bool> {
    if cfg.timestamps != TimestampType::Adapter {
        return Ok(false);
    }
    if cfg.interface == ANY {
        return Err(Error::Unsupported {
            backend: cfg.backend.name(),
            why: "`any` is no device: no NIC clock can stamp its packets".into(),
            fix: "capture with -j host, or name the interfaces (-i a,b)",
        });
    }
    sys::tstamp::enable_hw_rx(fd, &cfg.interface, cfg.backend.name())?;
    Ok(true)
}

/// `ARPHRD_ETHER` and `ARPHRD_LOOPBACK` (`<linux/if_arp.h>`): the device types whose frames
/// start with an Ethernet header (the loopback's has zero addresses).
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

/// For [`ANY`]: in front of `rest` (or of `ret #snaplen`), a check that rejects packets of
/// devices whose frames are not Ethernet (tunnels, PPP, ...), so that every packet handed out,
/// filtered or written has an Ethernet header, as on one interface. `rest`'s jumps are relative:
/// prepending keeps them right.
fn ethernet_devices_only(rest: Option<Vec<pk::sock_filter>>, snaplen: u32) -> Vec<pk::sock_filter> {
    use crate::filter::cbpf::SKF_AD_OFF;
    use crate::filter::Insn;
    /// `SKF_AD_HATYPE`: the device type of the packet's interface.
    const SKF_AD_HATYPE: u32 = 28;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    let mut prog = vec![
        Insn::stmt(LD_W_ABS, SKF_AD_OFF + SKF_AD_HATYPE),
        Insn::jump(JEQ_K, ARPHRD_ETHER, 2, 0),
        Insn::jump(JEQ_K, ARPHRD_LOOPBACK, 1, 0),
        Insn::ret(0),
    ];
    prog.extend(rest.unwrap_or_else(|| pk::snaplen_filter(snaplen).to_vec()));
    prog
}

/// Which sent copies of loopback packets the kernel program drops (every packet on a loopback
/// device is seen twice, sent and received; like libpcap, a capture keeps the received copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loopback {
    /// The interface is no loopback device.
    No,
    /// The interface is one: [`CaptureDirection::InOut`] keeps received packets only.
    Device,
    /// [`ANY`]: the sent copies on the loopback device with this ifindex are dropped.
    Any(u32),
}

/// What [`kernel_program`] needs to know about loopback (asked once, at open).
pub(crate) fn loopback(fd: &OwnedFd, cfg: &Config) -> Result<Loopback> {
    if cfg.interface == ANY {
        // A namespace without `lo` has no copies to drop.
        return Ok(sys::ifindex("lo").map_or(Loopback::No, Loopback::Any));
    }
    Ok(if sys::interface_is_loopback(fd, &cfg.interface)? {
        Loopback::Device
    } else {
        Loopback::No
    })
}

/// The classic BPF program the kernel runs for `cfg`: the filter's socket form (which reads a
/// VLAN tag the kernel moved out of the frame as if in place) with its accepting return values
/// lowered to the snapshot length, or `ret #snaplen` alone, or none when neither is needed;
/// for [`ANY`] behind a check that passes on Ethernet devices' packets only; behind
/// [`pk::direction_prefix`] when only one direction is wanted: `cfg.direction` says which, and
/// on a `loopback` interface `InOut` keeps only the received copy of each packet (every packet
/// there is seen sent and received; libpcap drops the sent copy too), as it does for the
/// loopback device's packets on [`ANY`] ([`pk::loopback_sent_copy_prefix`]).
pub(crate) fn kernel_program(
    cfg: &Config,
    loopback: Loopback,
) -> Result<Option<Vec<pk::sock_filter>>, Error> {
    let body = filter_program(cfg)?;
    let body = if cfg.interface == ANY {
        Some(ethernet_devices_only(body, cfg.snaplen))
    } else {
        body
    };
    let prefix = match (cfg.direction, loopback) {
        (CaptureDirection::Out, _) => pk::direction_prefix(true).to_vec(),
        (CaptureDirection::In, _) | (CaptureDirection::InOut, Loopback::Device) => {
            pk::direction_prefix(false).to_vec()
        }
        (CaptureDirection::InOut, Loopback::Any(lo)) => pk::loopback_sent_copy_prefix(lo).to_vec(),
        (CaptureDirection::InOut, Loopback::No) => Vec::new(),
    };
    if prefix.is_empty() && cfg.interface != ANY {
        return Ok(body);
    }
    let mut prog = prefix;
    prog.extend(body.unwrap_or_else(|| pk::snaplen_filter(cfg.snaplen).to_vec()));
    if prog.len() > crate::filter::cbpf::BPF_MAXINSNS {
        return Err(Error::InvalidConfig {
            field: "filter",
            why: format!(
                "with the direction and device checks in front the program has {} instructions, \
                 more than the kernel's {}; simplify the filter",
                prog.len(),
                crate::filter::cbpf::BPF_MAXINSNS
            ),
        });
    }
    Ok(Some(prog))
}

/// The filter part of [`kernel_program`].
fn filter_program(cfg: &Config) -> Result<Option<Vec<pk::sock_filter>>, Error> {
    Ok(match &cfg.filter {
        Some(f) => {
            Some(
                f.socket_program_clamped(cfg.snaplen)
                    .map_err(|e| Error::InvalidConfig {
                        field: "filter",
                        why: e.message,
                    })?,
            )
        }
        None if cfg.snaplen < MAX_SNAPLEN => Some(pk::snaplen_filter(cfg.snaplen).to_vec()),
        None => None,
    })
}

/// What follows `bind`: promiscuous mode if `cfg` asks for it, then the fanout group. Returns
/// the group joined, if any.
pub(crate) fn join(fd: &OwnedFd, cfg: &Config, ifindex: u32) -> Result<Option<u16>> {
    // `any` has no device to make promiscuous (libpcap refuses it too).
    if cfg.promiscuous && ifindex != 0 {
        pk::add_promisc(fd, ifindex)?;
    }
    Ok(match cfg.fanout {
        Some((mode, group)) => Some(pk::join_fanout(fd, fanout_mode(mode), group)?),
        None => None,
    })
}

fn fanout_mode(m: FanoutMode) -> u16 {
    match m {
        FanoutMode::Hash => pk::PACKET_FANOUT_HASH,
        FanoutMode::Lb => pk::PACKET_FANOUT_LB,
        FanoutMode::Cpu => pk::PACKET_FANOUT_CPU,
        FanoutMode::Qm => pk::PACKET_FANOUT_QM,
    }
}

/// Stops intake: a program that rejects every packet replaces the socket's, so the kernel
/// queues and counts nothing new (`PACKET_STATISTICS` counts only packets a filter passed);
/// what is already queued stays readable.
pub(crate) fn stop_intake(fd: &OwnedFd) -> Result<()> {
    pk::attach_filter(fd, &[pk::REJECT_ALL])
}

/// Reads (and so resets) an AF_PACKET socket's `PACKET_STATISTICS` and adds them to `stats`:
/// the kernel counts since the last read, fastpath accumulates since `open`. On a non-V3 socket
/// the kernel writes only the first two fields and `tp_freeze_q_cnt` stays 0.
pub(crate) fn add_statistics(fd: &OwnedFd, stats: &mut Stats) -> Result<()> {
    let k = pk::statistics(fd)?;
    stats.received += u64::from(k.tp_packets);
    stats.dropped += u64::from(k.tp_drops);
    stats.freeze_queue += u64::from(k.tp_freeze_q_cnt);
    Ok(())
}

/// Puts an 802.1Q tag back after the MAC addresses. `slot` holds the frame at
/// `VLAN_TAG_LEN..` (at least its 12 bytes of MAC addresses); afterwards the tagged frame starts
/// at 0. Shared by the recv rungs and the mmap ring.
pub(crate) fn insert_vlan(slot: &mut [u8], tci: u16, tpid: u16) {
    slot.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + 12, 0);
    slot[12..14].copy_from_slice(&tpid.to_be_bytes());
    slot[14..16].copy_from_slice(&tci.to_be_bytes());
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn vlan_tag_goes_back_after_the_macs() {
        let mut slot = [0u8; 40];
        let frame: Vec<u8> = (1..=20).collect();
        slot[4..24].copy_from_slice(&frame);
        insert_vlan(&mut slot, 0x0064, 0x8100);
        assert_eq!(&slot[..12], &frame[..12]);
        assert_eq!(&slot[12..16], &[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(&slot[16..24], &frame[12..20]);
    }
}
