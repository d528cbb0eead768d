//! AF_PACKET UAPI mirrors (`<linux/if_packet.h>`) and the socket options fastpath uses.
//!
//! Names follow the kernel header so they can be grepped against it. Each struct has a size test.
#![allow(non_camel_case_types)]

use std::os::fd::OwnedFd;

use super::{getsockopt, setsockopt};
use crate::{Error, Result};

// Socket options at level SOL_PACKET (`<linux/if_packet.h>`). Defined here rather than taken from
// `libc` because libc exposes only some of them on every target, and these values are ABI.
pub(crate) const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
pub(crate) const PACKET_RX_RING: libc::c_int = 5;
pub(crate) const PACKET_STATISTICS: libc::c_int = 6;
pub(crate) const PACKET_AUXDATA: libc::c_int = 8;
pub(crate) const PACKET_VERSION: libc::c_int = 10;
pub(crate) const PACKET_RESERVE: libc::c_int = 12;
pub(crate) const PACKET_FANOUT: libc::c_int = 18;

pub(crate) const PACKET_MR_PROMISC: libc::c_ushort = 1;

pub(crate) const TPACKET_V3: libc::c_int = 2;

pub(crate) const PACKET_FANOUT_HASH: u16 = 0;
pub(crate) const PACKET_FANOUT_LB: u16 = 1;
pub(crate) const PACKET_FANOUT_CPU: u16 = 2;
pub(crate) const PACKET_FANOUT_QM: u16 = 5;
pub(crate) const PACKET_FANOUT_FLAG_UNIQUEID: u16 = 0x2000;

// `sockaddr_ll.sll_pkttype` values (`<linux/if_packet.h>`).
pub(crate) const PACKET_HOST: u8 = 0;
pub(crate) const PACKET_OUTGOING: u8 = 4;

/// Byte offset of `sll_pkttype` inside `struct sockaddr_ll` (family, protocol, ifindex,
/// hatype before it).
pub(crate) const SLL_PKTTYPE_OFFSET: usize = std::mem::offset_of!(libc::sockaddr_ll, sll_pkttype);

/// `SKF_AD_OFF + SKF_AD_PKTTYPE` (`<linux/filter.h>`): a classic BPF absolute load from this
/// offset reads the packet type the kernel assigned (`skb->pkt_type`), not packet bytes.
pub(crate) const SKF_AD_PKTTYPE_LOAD: u32 = 0xffff_f000 + 4;
/// `SKF_AD_OFF + SKF_AD_IFINDEX`: loads the index of the packet's interface.
const SKF_AD_IFINDEX_LOAD: u32 = 0xffff_f000 + 8;

pub(crate) const TP_STATUS_KERNEL: u32 = 0;
pub(crate) const TP_STATUS_USER: u32 = 1 << 0;
pub(crate) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
pub(crate) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// Bytes of an 802.1Q tag; also the headroom fastpath reserves in front of every frame so a
/// stripped tag can be put back in place (`PACKET_RESERVE`, as libpcap does).
pub(crate) const VLAN_TAG_LEN: usize = 4;

/// The TPID of a VLAN tag the kernel stripped: the one it reports when
/// `TP_STATUS_VLAN_TPID_VALID` is set, else 802.1Q's `0x8100`.
pub(crate) fn vlan_tpid(tp_status: u32, tp_vlan_tpid: u16) -> u16 {
    if tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
        tp_vlan_tpid
    } else {
        0x8100
    }
}

/// `struct tpacket_req3`: the TPACKET_V3 ring request.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct tpacket_req3 {
    pub(crate) tp_block_size: u32,
    pub(crate) tp_block_nr: u32,
    pub(crate) tp_frame_size: u32,
    pub(crate) tp_frame_nr: u32,
    pub(crate) tp_retire_blk_tov: u32,
    pub(crate) tp_sizeof_priv: u32,
    pub(crate) tp_feature_req_word: u32,
}

/// `struct tpacket_hdr_v1`: the block descriptor header (`tpacket_block_desc.hdr.bh1`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct tpacket_hdr_v1 {
    /// Ownership word: `TP_STATUS_KERNEL` or `TP_STATUS_USER` (| flags). Accessed atomically.
    pub(crate) block_status: u32,
    pub(crate) num_pkts: u32,
    pub(crate) offset_to_first_pkt: u32,
    pub(crate) blk_len: u32,
    pub(crate) seq_num: u64,
    pub(crate) ts_first_pkt: [u32; 2],
    pub(crate) ts_last_pkt: [u32; 2],
}

/// `struct tpacket_block_desc`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct tpacket_block_desc {
    pub(crate) version: u32,
    pub(crate) offset_to_priv: u32,
    pub(crate) bh1: tpacket_hdr_v1,
}

/// `struct tpacket3_hdr`: the per-packet header inside a block.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct tpacket3_hdr {
    pub(crate) tp_next_offset: u32,
    pub(crate) tp_sec: u32,
    pub(crate) tp_nsec: u32,
    pub(crate) tp_snaplen: u32,
    pub(crate) tp_len: u32,
    pub(crate) tp_status: u32,
    pub(crate) tp_mac: u16,
    pub(crate) tp_net: u16,
    // struct tpacket_hdr_variant1 hv1
    pub(crate) tp_rxhash: u32,
    pub(crate) tp_vlan_tci: u32,
    pub(crate) tp_vlan_tpid: u16,
    pub(crate) tp_padding: u16,
    pub(crate) tp_padding2: [u8; 8],
}

/// `struct tpacket_stats_v3`: returned (and reset) by `PACKET_STATISTICS` on a V3 socket.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct tpacket_stats_v3 {
    pub(crate) tp_packets: u32,
    pub(crate) tp_drops: u32,
    pub(crate) tp_freeze_q_cnt: u32,
}

/// `struct tpacket_auxdata`: the `PACKET_AUXDATA` control message of the recv rungs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct tpacket_auxdata {
    pub(crate) tp_status: u32,
    pub(crate) tp_len: u32,
    pub(crate) tp_snaplen: u32,
    pub(crate) tp_mac: u16,
    pub(crate) tp_net: u16,
    pub(crate) tp_vlan_tci: u16,
    pub(crate) tp_vlan_tpid: u16,
}

/// `struct packet_mreq` for `PACKET_ADD_MEMBERSHIP`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct packet_mreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`
/// (`<linux/filter.h>`), which `SO_ATTACH_FILTER` reads.
///
/// The filter compiler works on this very type (it is `fastpath::filter::Insn`, with its
/// constructors), so compiled programs are attached as they are, without a copy.
// Implementation of the constructors: `filter/cbpf.rs`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct sock_filter {
    /// Opcode: class | size | mode, or class | op | source.
    pub code: u16,
    /// Conditional jumps: instructions to skip when the test holds.
    pub jt: u8,
    /// Conditional jumps: instructions to skip when it does not.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// `BPF_RET | BPF_K` (`<linux/bpf_common.h>`): return the constant `k`.
const BPF_RET_K: u16 = 0x06;
/// `BPF_LD | BPF_B | BPF_ABS`.
const BPF_LD_B_ABS: u16 = 0x30;
/// `BPF_LD | BPF_W | BPF_ABS`.
const BPF_LD_W_ABS: u16 = 0x20;
/// `BPF_LD | BPF_W | BPF_IMM`.
const BPF_LD_IMM: u16 = 0x00;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const BPF_JEQ_K: u16 = 0x15;

/// `struct sock_fprog`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct sock_fprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

/// Puts the interface in promiscuous mode for as long as the socket is open (the kernel drops the
/// membership when the socket closes, so nothing is left behind).
pub(crate) fn add_promisc(fd: &OwnedFd, ifindex: u32) -> Result<()> {
    let mreq = packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: PACKET_MR_PROMISC,
        ..Default::default()
    };
    setsockopt(
        fd,
        libc::SOL_PACKET,
        PACKET_ADD_MEMBERSHIP,
        &mreq,
        "setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)",
    )
}

/// Reads and resets the kernel counters of the socket.
///
/// On a TPACKET_V3 socket the kernel writes a [`tpacket_stats_v3`]; on others the first two
/// fields (`struct tpacket_stats`). `tp_packets` already includes `tp_drops`.
pub(crate) fn statistics(fd: &OwnedFd) -> Result<tpacket_stats_v3> {
    getsockopt(
        fd,
        libc::SOL_PACKET,
        PACKET_STATISTICS,
        "getsockopt(PACKET_STATISTICS)",
    )
}

/// Joins (or, with `group == None`, creates with a kernel-chosen unique id) a fanout group and
/// returns the group id.
pub(crate) fn join_fanout(fd: &OwnedFd, mode: u16, group: Option<u16>) -> Result<u16> {
    let (id, flags) = match group {
        Some(id) => (id, 0),
        None => (0, PACKET_FANOUT_FLAG_UNIQUEID),
    };
    let arg: u32 = u32::from(id) | (u32::from(mode | flags) << 16);
    setsockopt(
        fd,
        libc::SOL_PACKET,
        PACKET_FANOUT,
        &arg,
        "setsockopt(PACKET_FANOUT)",
    )
    .map_err(|e| match e {
        Error::Syscall { source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
            Error::InvalidConfig {
                field: "fanout",
                why: format!("the kernel refused fanout group {id} mode {mode}: {source}"),
            }
        }
        other => other,
    })?;
    let got: u32 = getsockopt(
        fd,
        libc::SOL_PACKET,
        PACKET_FANOUT,
        "getsockopt(PACKET_FANOUT)",
    )?;
    Ok((got & 0xffff) as u16)
}

/// Attaches a classic BPF program (`SO_ATTACH_FILTER`).
pub(crate) fn attach_filter(fd: &OwnedFd, prog: &[sock_filter]) -> Result<()> {
    let fprog = sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr(),
    };
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &fprog,
        "setsockopt(SO_ATTACH_FILTER)",
    )
}

/// The one-instruction classic BPF program `ret #snaplen`: accept every packet, truncated to
/// `snaplen` bytes by the kernel before it is copied (libpcap does the same).
pub(crate) fn snaplen_filter(snaplen: u32) -> [sock_filter; 1] {
    [sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: snaplen,
    }]
}

/// Classic BPF that passes on only packets sent by this host (`outgoing: true`) or only
/// packets it received (`false`), judged by the kernel's packet type, then clears the
/// accumulator so the program that follows starts as the kernel starts every program (A = 0; X
/// is untouched). Put it in front of another program: its jumps are relative, so they still
/// land where they did.
///
/// ```text
/// ldb  [pkttype]
/// jeq  #PACKET_OUTGOING   jt, jf   (outgoing: pass on if equal; received: pass on if not)
/// ret  #0
/// ld   #0
/// ```
pub(crate) fn direction_prefix(outgoing: bool) -> [sock_filter; 4] {
    let (jt, jf) = if outgoing { (1, 0) } else { (0, 1) };
    [
        sock_filter {
            code: BPF_LD_B_ABS,
            jt: 0,
            jf: 0,
            k: SKF_AD_PKTTYPE_LOAD,
        },
        sock_filter {
            code: BPF_JEQ_K,
            jt,
            jf,
            k: u32::from(PACKET_OUTGOING),
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: BPF_LD_IMM,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ]
}

/// Classic BPF, for a socket bound to every interface (`any`), that drops the sent copy of each
/// packet on the loopback device `lo_ifindex` (every packet there is seen sent and received;
/// libpcap drops the sent copy too), then clears the accumulator like [`direction_prefix`].
/// Put it in front of another program.
///
/// ```text
/// ldb  [pkttype]
/// jeq  #PACKET_OUTGOING   0, 3   (received: on to `ld #0`)
/// ld   [ifindex]
/// jeq  #lo_ifindex        0, 1   (another device: on to `ld #0`)
/// ret  #0
/// ld   #0
/// ```
pub(crate) fn loopback_sent_copy_prefix(lo_ifindex: u32) -> [sock_filter; 6] {
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    [
        insn(BPF_LD_B_ABS, 0, 0, SKF_AD_PKTTYPE_LOAD),
        insn(BPF_JEQ_K, 0, 3, u32::from(PACKET_OUTGOING)),
        insn(BPF_LD_W_ABS, 0, 0, SKF_AD_IFINDEX_LOAD),
        insn(BPF_JEQ_K, 0, 1, lo_ifindex),
        insn(BPF_RET_K, 0, 0, 0),
        insn(BPF_LD_IMM, 0, 0, 0),
    ]
}

/// `ret #0`: the program that rejects every packet (nothing is queued or counted any more).
pub(crate) const REJECT_ALL: sock_filter = sock_filter {
    code: BPF_RET_K,
    jt: 0,
    jf: 0,
    k: 0,
};

#[cfg(test)]
mod test {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn uapi_sizes_match_the_kernel() {
        assert_eq!(size_of::<tpacket_req3>(), 28);
        assert_eq!(size_of::<tpacket_hdr_v1>(), 40);
        assert_eq!(size_of::<tpacket_block_desc>(), 48);
        assert_eq!(size_of::<tpacket3_hdr>(), 48);
        assert_eq!(size_of::<tpacket_stats_v3>(), 12);
        assert_eq!(size_of::<tpacket_auxdata>(), 20);
        assert_eq!(size_of::<packet_mreq>(), 16);
        assert_eq!(size_of::<sock_filter>(), 8);
        assert_eq!(std::mem::offset_of!(sock_filter, jt), 2);
        assert_eq!(std::mem::offset_of!(sock_filter, jf), 3);
        assert_eq!(std::mem::offset_of!(sock_filter, k), 4);
        assert_eq!(std::mem::offset_of!(tpacket_block_desc, bh1), 8);
        assert_eq!(std::mem::offset_of!(tpacket3_hdr, tp_mac), 24);
        assert_eq!(SLL_PKTTYPE_OFFSET, 10);
    }
}
