//! AF_PACKET plumbing shared by the `recv` and `mmap` rungs: the socket, the kernel filter
//! program, promiscuous mode and fanout after `bind`, `PACKET_STATISTICS` accumulation, and
//! putting a stripped VLAN tag back in place.

use std::os::fd::OwnedFd;

use crate::config::{CaptureDirection, Config, FanoutMode, MAX_SNAPLEN};
use crate::packet::Stats;
use crate::sys::packet::{self as pk, VLAN_TAG_LEN};
use crate::{sys, Error, Result};

/// An AF_PACKET socket (protocol 0: it queues nothing until bound) for `cfg.interface`, which
/// must be up.
pub(crate) fn socket(cfg: &Config) -> Result<OwnedFd> {
    let fd = sys::packet_socket()?;
    sys::ensure_up(&fd, &cfg.interface)?;
    Ok(fd)
}

/// Whether the socket's interface is a loopback device (asked once, at open).
pub(crate) fn is_loopback(fd: &OwnedFd, cfg: &Config) -> Result<bool> {
    sys::interface_is_loopback(fd, &cfg.interface)
}

/// The classic BPF program the kernel runs for `cfg`: the filter's socket form (which reads a
/// VLAN tag the kernel moved out of the frame as if in place) with its accepting return values
/// lowered to the snapshot length, or `ret #snaplen` alone, or none when neither is needed;
/// behind [`pk::direction_prefix`] when only one direction is wanted: `cfg.direction` says
/// which, and on a `loopback` interface `InOut` keeps only the received copy of each packet
/// (every packet there is seen sent and received; libpcap drops the sent copy too).
pub(crate) fn kernel_program(
    cfg: &Config,
    loopback: bool,
) -> Result<Option<Vec<pk::sock_filter>>, Error> {
    let body = filter_program(cfg)?;
    let outgoing = match (cfg.direction, loopback) {
        (CaptureDirection::Out, _) => true,
        (CaptureDirection::In, _) | (CaptureDirection::InOut, true) => false,
        (CaptureDirection::InOut, false) => return Ok(body),
    };
    let mut prog = pk::direction_prefix(outgoing).to_vec();
    prog.extend(body.unwrap_or_else(|| pk::snaplen_filter(cfg.snaplen).to_vec()));
    if prog.len() > crate::filter::cbpf::BPF_MAXINSNS {
        return Err(Error::InvalidConfig {
            field: "filter",
            why: format!(
                "with the direction check in front the program has {} instructions, more than \
                 the kernel's {}; simplify the filter",
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
    if cfg.promiscuous {
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
