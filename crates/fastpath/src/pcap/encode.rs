//! [`Encoder`]: packets to capture-file bytes in a caller's buffer. Sans-IO.

use std::collections::HashMap;

use super::{
    Format, InterfaceStats, BLOCK_OVERHEAD, BT_EPB, BT_IDB, BT_ISB, BT_SHB, BYTE_ORDER_MAGIC,
    EPB_FIXED, LINKTYPE_ETHERNET, MAX_IF_NAME, NS_PER_S, OPT_ENDOFOPT, OPT_EPB_FLAGS, OPT_IF_NAME,
    OPT_IF_TSRESOL, OPT_ISB_ENDTIME, OPT_ISB_FILTERACCEPT, OPT_ISB_IFDROP, OPT_ISB_IFRECV,
    OPT_ISB_OSDROP, OPT_ISB_STARTTIME, OPT_ISB_USRDELIV, OPT_SHB_USERAPPL, PCAP_MAGIC_NS,
    PCAP_RECORD_HEADER, USERAPPL,
};
use crate::limits::MAX_SNAPLEN;
use crate::packet::Direction;

/// The pcapng `epb_flags` word of a packet's direction: bits 0-1 the direction (01 inbound,
/// 10 outbound), bits 2-4 the reception type (001 unicast, 010 multicast, 011 broadcast, 100
/// promiscuous; 000, not given, for sent packets).
pub fn epb_flags(direction: Direction) -> u32 {
    const INBOUND: u32 = 0b01;
    const OUTBOUND: u32 = 0b10;
    match direction {
        Direction::Host => INBOUND | 1 << 2,
        Direction::Multicast => INBOUND | 2 << 2,
        Direction::Broadcast => INBOUND | 3 << 2,
        Direction::OtherHost => INBOUND | 4 << 2,
        Direction::Outgoing => OUTBOUND,
    }
}

/// Bytes the `epb_flags` option adds to an enhanced packet block: the option (4 + 4) and the
/// end of options (4).
pub(super) const EPB_FLAGS_LEN: usize = 12;

/// Sans-IO capture-file encoder: appends the file header and packet records to a caller's
/// `Vec<u8>`.
///
/// It keeps only the per-interface state pcapng needs (which interfaces already have an
/// interface description block, and their names). Reuse one `Vec` and [`Vec::clear`] it after
/// writing it out: once every interface has been seen, the encoder allocates nothing per packet.
///
/// For pcapng, register the interfaces with [`Encoder::add_interface`] before calling
/// [`Encoder::header`]: their description blocks then go into the header, so even a capture with
/// no packet is readable by tcpdump, which rejects pcapng files that describe no interface.
#[derive(Debug, Clone)]
pub struct Encoder {
    format: Format,
    snaplen: u32,
    /// `(ifindex, if_name)` registered with [`Encoder::add_interface`], in registration order.
    names: Vec<(u32, String)>,
    /// The link type of the pcap header and of every interface block not listed in
    /// `linktypes`.
    linktype: u16,
    /// `(ifindex, link type)` set with [`Encoder::set_interface_linktype`].
    linktypes: Vec<(u32, u16)>,
    /// ifindex -> interface id (position of its IDB in the current section).
    idbs: HashMap<u32, u32>,
    /// The last lookup in `idbs`: captures are usually on one interface.
    last: Option<(u32, u32)>,
}

impl Encoder {
    /// An encoder for `format` that keeps at most `snaplen` bytes of each packet.
    ///
    /// `snaplen` 0 means 262144 (libpcap's `MAXIMUM_SNAPLEN`, like `tcpdump -s 0`); larger values
    /// are lowered to 262144, since libpcap rejects longer records for Ethernet.
    pub fn new(format: Format, snaplen: u32) -> Self {
        let snaplen = if snaplen == 0 {
            MAX_SNAPLEN
        } else {
            snaplen.min(MAX_SNAPLEN)
        };
        Encoder {
            format,
            snaplen,
            names: Vec::new(),
            linktype: LINKTYPE_ETHERNET,
            linktypes: Vec::new(),
            idbs: HashMap::new(),
            last: None,
        }
    }

    /// The format this encoder writes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The snaplen written into the file, after the adjustments described in [`Encoder::new`].
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Append the file header (pcap global header, or pcapng SHB) to `out`.
    ///
    /// For pcapng this starts a new section: it is followed by an interface description block for
    /// each interface registered so far (ids 0, 1, ... in registration order), and other
    /// interfaces get one when first seen.
    pub fn header(&mut self, out: &mut Vec<u8>) {
        match self.format {
            Format::Pcap => {
                put_u32(out, PCAP_MAGIC_NS);
                put_u16(out, 2); // version_major
                put_u16(out, 4); // version_minor
                put_u32(out, 0); // thiszone: timestamps are UTC
                put_u32(out, 0); // sigfigs
                put_u32(out, self.snaplen);
                put_u32(out, u32::from(self.linktype));
            }
            Format::Pcapng => {
                self.idbs.clear();
                self.last = None;
                let opts = option_len(USERAPPL.len()) + 4;
                let total = BLOCK_OVERHEAD + 16 + opts;
                put_u32(out, BT_SHB);
                put_u32(out, total as u32);
                put_u32(out, BYTE_ORDER_MAGIC);
                put_u16(out, 1); // major_version
                put_u16(out, 0); // minor_version
                out.extend_from_slice(&(-1i64).to_le_bytes()); // section length: not given
                put_option(out, OPT_SHB_USERAPPL, USERAPPL);
                put_option(out, OPT_ENDOFOPT, &[]);
                put_u32(out, total as u32);
                for i in 0..self.names.len() {
                    self.interface_id(out, self.names[i].0);
                }
            }
        }
    }

    /// Append one packet record. `ts_ns` = ns since UNIX epoch, `orig_len` = length on the wire,
    /// `data` = captured bytes.
    ///
    /// `data` beyond the snaplen is dropped. `orig_len` is raised to the captured length if it is
    /// smaller, since readers reject records that claim to hold more than was on the wire.
    ///
    /// `ifindex` identifies the interface: pcapng emits an interface description block
    /// (linktype Ethernet, snaplen, `if_name` when given via [`Encoder::add_interface`],
    /// `if_tsresol` = 9) the first time an ifindex is seen in the section. Pcap ignores it.
    pub fn packet(
        &mut self,
        out: &mut Vec<u8>,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
    ) {
        // The snaplen is at most MAX_SNAPLEN, so `caplen` fits in u32 and block lengths in u32.
        let data = &data[..data.len().min(self.snaplen as usize)];
        let caplen = data.len() as u32;
        let orig_len = orig_len.max(caplen);
        match self.format {
            Format::Pcap => {
                out.reserve(PCAP_RECORD_HEADER + data.len());
                // The format has 32 bits of seconds: this wraps in 2106.
                put_u32(out, (ts_ns / NS_PER_S) as u32);
                put_u32(out, (ts_ns % NS_PER_S) as u32);
                put_u32(out, caplen);
                put_u32(out, orig_len);
                out.extend_from_slice(data);
            }
            Format::Pcapng => {
                let id = self.interface_id(out, ifindex);
                let pad = pad4(data.len());
                let total = (EPB_FIXED + data.len() + pad) as u32;
                out.reserve(total as usize);
                put_u32(out, BT_EPB);
                put_u32(out, total);
                put_u32(out, id);
                put_u32(out, (ts_ns >> 32) as u32); // if_tsresol = 9: units are nanoseconds
                put_u32(out, ts_ns as u32);
                put_u32(out, caplen);
                put_u32(out, orig_len);
                out.extend_from_slice(data);
                out.extend_from_slice(&[0; 3][..pad]);
                put_u32(out, total);
            }
        }
    }

    /// [`Encoder::packet`], and for pcapng the packet's direction in the block's `epb_flags`
    /// option (see [`epb_flags`]; 12 bytes more per block). Pcap has nowhere to put it.
    pub fn packet_with_direction(
        &mut self,
        out: &mut Vec<u8>,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
        direction: Direction,
    ) {
        if self.format == Format::Pcap {
            return self.packet(out, ts_ns, orig_len, data, ifindex);
        }
        let data = &data[..data.len().min(self.snaplen as usize)];
        let caplen = data.len() as u32;
        let orig_len = orig_len.max(caplen);
        let id = self.interface_id(out, ifindex);
        let pad = pad4(data.len());
        let total = (EPB_FIXED + data.len() + pad + EPB_FLAGS_LEN) as u32;
        out.reserve(total as usize);
        put_u32(out, BT_EPB);
        put_u32(out, total);
        put_u32(out, id);
        put_u32(out, (ts_ns >> 32) as u32); // if_tsresol = 9: units are nanoseconds
        put_u32(out, ts_ns as u32);
        put_u32(out, caplen);
        put_u32(out, orig_len);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 3][..pad]);
        put_option(out, OPT_EPB_FLAGS, &epb_flags(direction).to_le_bytes());
        put_option(out, OPT_ENDOFOPT, &[]);
        put_u32(out, total);
    }

    /// Pre-register an interface name for pcapng (`if_name` option). Optional, but see the
    /// type's docs: registering before [`Encoder::header`] puts the interface in the header.
    ///
    /// A name registered later is used when the interface is first seen, unless its description
    /// block is already written in the current section. Names longer than 255 bytes are
    /// shortened. Pcap ignores names.
    pub fn add_interface(&mut self, ifindex: u32, name: &str) {
        match self.names.iter_mut().find(|(i, _)| *i == ifindex) {
            Some((_, old)) => name.clone_into(old),
            None => self.names.push((ifindex, name.to_owned())),
        }
    }

    /// The link type written into the pcap header and into interface blocks (default
    /// `LINKTYPE_ETHERNET`, 1). Set it before [`Encoder::header`]; for re-writing a file read
    /// back with another link type.
    pub fn set_linktype(&mut self, linktype: u16) {
        self.linktype = linktype;
    }

    /// The link type of one pcapng interface, when it differs from [`Encoder::set_linktype`]'s.
    /// Set it before the interface's first block. (Readers built on libpcap, tcpdump among
    /// them, refuse pcapng files whose interfaces differ in link type.)
    pub fn set_interface_linktype(&mut self, ifindex: u32, linktype: u16) {
        match self.linktypes.iter_mut().find(|(i, _)| *i == ifindex) {
            Some((_, old)) => *old = linktype,
            None => self.linktypes.push((ifindex, linktype)),
        }
    }

    /// Whether `ifindex` already has its interface description block in the current section.
    pub fn has_interface_block(&self, ifindex: u32) -> bool {
        self.idbs.contains_key(&ifindex)
    }

    /// Append a pcapng interface statistics block for `ifindex` (its description block first,
    /// if the section has none yet), stamped `ts_ns`. Counters that are `None` are left out.
    /// Pcap has no such block: nothing is written.
    ///
    /// Options written (pcapng §4.6): `isb_starttime`, `isb_endtime` (nanoseconds, the
    /// interface's `if_tsresol`), `isb_ifrecv`, `isb_ifdrop`, `isb_filteraccept`,
    /// `isb_osdrop`, `isb_usrdeliv`.
    pub fn interface_statistics(
        &mut self,
        out: &mut Vec<u8>,
        ifindex: u32,
        ts_ns: u64,
        stats: &InterfaceStats,
    ) {
        if self.format != Format::Pcapng {
            return;
        }
        let id = self.interface_id(out, ifindex);
        let counters = [
            (OPT_ISB_STARTTIME, stats.start_ns.map(split_ts)),
            (OPT_ISB_ENDTIME, Some(split_ts(ts_ns))),
            (OPT_ISB_IFRECV, stats.received),
            (OPT_ISB_IFDROP, stats.if_dropped),
            (OPT_ISB_FILTERACCEPT, stats.filter_accepted),
            (OPT_ISB_OSDROP, stats.os_dropped),
            (OPT_ISB_USRDELIV, stats.delivered),
        ];
        let present = counters.iter().filter(|(_, v)| v.is_some()).count();
        let total = (BLOCK_OVERHEAD + 12 + present * option_len(8) + 4) as u32;
        put_u32(out, BT_ISB);
        put_u32(out, total);
        put_u32(out, id);
        put_u32(out, (ts_ns >> 32) as u32);
        put_u32(out, ts_ns as u32);
        for (code, value) in counters {
            if let Some(v) = value {
                put_option(out, code, &v.to_le_bytes());
            }
        }
        put_option(out, OPT_ENDOFOPT, &[]);
        put_u32(out, total);
    }

    /// The pcapng interface id of `ifindex`, writing its description block first if needed.
    fn interface_id(&mut self, out: &mut Vec<u8>, ifindex: u32) -> u32 {
        if let Some((seen, id)) = self.last {
            if seen == ifindex {
                return id;
            }
        }
        let id = match self.idbs.get(&ifindex) {
            Some(&id) => id,
            None => {
                let id = self.idbs.len() as u32;
                self.idbs.insert(ifindex, id);
                self.interface_block(out, ifindex);
                id
            }
        };
        self.last = Some((ifindex, id));
        id
    }

    /// Append the interface description block for `ifindex`.
    fn interface_block(&self, out: &mut Vec<u8>, ifindex: u32) {
        let name = self
            .names
            .iter()
            .find(|(i, _)| *i == ifindex)
            .map(|(_, n)| truncate_utf8(n, MAX_IF_NAME).as_bytes());
        let opts = name.map_or(0, |n| option_len(n.len())) + option_len(1) + 4;
        let total = (BLOCK_OVERHEAD + 8 + opts) as u32;
        put_u32(out, BT_IDB);
        put_u32(out, total);
        let linktype = self
            .linktypes
            .iter()
            .find(|(i, _)| *i == ifindex)
            .map_or(self.linktype, |&(_, l)| l);
        put_u16(out, linktype);
        put_u16(out, 0); // reserved
        put_u32(out, self.snaplen);
        if let Some(name) = name {
            put_option(out, OPT_IF_NAME, name);
        }
        put_option(out, OPT_IF_TSRESOL, &[9]);
        put_option(out, OPT_ENDOFOPT, &[]);
        put_u32(out, total);
    }
}

/// A nanosecond timestamp as pcapng stores it in options: high 32 bits first, then low, in a
/// 64-bit value written as two u32 (so in the file's byte order, the high word comes first).
fn split_ts(ts_ns: u64) -> u64 {
    ts_ns.rotate_left(32)
}

pub(super) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Padding that brings `len` to a multiple of 4.
pub(super) fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Bytes taken by a pcapng option with a `len`-byte value, padding included.
pub(super) fn option_len(len: usize) -> usize {
    4 + len + pad4(len)
}

/// Append a pcapng option; `value` is at most 65535 bytes (names are cut at [`MAX_IF_NAME`]).
fn put_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    put_u16(out, code);
    put_u16(out, value.len() as u16);
    out.extend_from_slice(value);
    out.extend_from_slice(&[0; 3][..pad4(value.len())]);
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::pcap::fixtures::{blocks, encode, TS};
    use crate::pcap::read_records;

    #[test]
    fn pcap_global_header_golden() {
        let mut out = Vec::new();
        Encoder::new(Format::Pcap, 65535).header(&mut out);
        #[rustfmt::skip]
        let want = [
            0x4d, 0x3c, 0xb2, 0xa1, // magic, nanosecond
            0x02, 0x00, 0x04, 0x00, // version 2.4
            0x00, 0x00, 0x00, 0x00, // thiszone
            0x00, 0x00, 0x00, 0x00, // sigfigs
            0xff, 0xff, 0x00, 0x00, // snaplen 65535
            0x01, 0x00, 0x00, 0x00, // LINKTYPE_ETHERNET
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn pcap_record_golden() {
        let mut enc = Encoder::new(Format::Pcap, 65535);
        let mut out = Vec::new();
        enc.packet(&mut out, TS, 60, &[1, 2, 3, 4], 3);
        #[rustfmt::skip]
        let want = [
            0x00, 0xf1, 0x53, 0x65, // 1_700_000_000 s
            0x15, 0xcd, 0x5b, 0x07, // 123_456_789 ns
            0x04, 0x00, 0x00, 0x00, // caplen
            0x3c, 0x00, 0x00, 0x00, // orig_len 60
            1, 2, 3, 4,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn snaplen_is_clamped() {
        assert_eq!(Encoder::new(Format::Pcap, 0).snaplen(), MAX_SNAPLEN);
        assert_eq!(Encoder::new(Format::Pcap, u32::MAX).snaplen(), MAX_SNAPLEN);
        assert_eq!(Encoder::new(Format::Pcapng, 64).snaplen(), 64);
    }

    #[test]
    fn epb_flags_carry_the_direction() {
        let mut enc = Encoder::new(Format::Pcapng, 65535);
        let mut out = Vec::new();
        enc.header(&mut out);
        let kinds = [
            (Direction::Host, 0x05),
            (Direction::Multicast, 0x09),
            (Direction::Broadcast, 0x0d),
            (Direction::OtherHost, 0x11),
            (Direction::Outgoing, 0x02),
        ];
        for (i, (d, _)) in kinds.iter().enumerate() {
            enc.packet_with_direction(&mut out, TS, 60, &[i as u8; 5], 3, *d);
        }
        let framed = blocks(&out);
        let epbs: Vec<&[u8]> = framed
            .iter()
            .filter(|b| b.0 == BT_EPB)
            .map(|b| b.1)
            .collect();
        assert_eq!(epbs.len(), kinds.len());
        for (body, (_, flags)) in epbs.iter().zip(kinds) {
            // 20 bytes of fields, 5 of data + 3 of padding, then the options.
            #[rustfmt::skip]
            let want = [
                2, 0, 4, 0, flags, 0, 0, 0, // epb_flags
                0, 0, 0, 0, // opt_endofopt
            ];
            assert_eq!(&body[28..], want);
        }
        // The reader still reads them; pcap ignores the direction.
        let (_, recs) = read_records(&out).unwrap();
        assert_eq!(recs.len(), kinds.len());
        assert_eq!(recs[4].data, [4; 5]);
        let mut enc = Encoder::new(Format::Pcap, 65535);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        enc.packet(&mut a, TS, 60, &[1; 5], 3);
        enc.packet_with_direction(&mut b, TS, 60, &[1; 5], 3, Direction::Outgoing);
        assert_eq!(a, b);
    }

    #[test]
    fn pcapng_blocks_are_framed() {
        let packets: Vec<_> = (0..9u32)
            .map(|i| {
                (
                    TS + u64::from(i),
                    100,
                    vec![i as u8; i as usize],
                    if i % 3 == 0 { 7 } else { 9 },
                )
            })
            .collect();
        let bytes = encode(Format::Pcapng, 65535, &packets);
        let framed = blocks(&bytes);
        let types: Vec<u32> = framed.iter().map(|b| b.0).collect();
        // SHB, IDB(7), EPB, IDB(9), EPB, EPB, EPB(7), ...
        assert_eq!(types[..5], [BT_SHB, BT_IDB, BT_EPB, BT_IDB, BT_EPB]);
        assert_eq!(types.iter().filter(|&&t| t == BT_IDB).count(), 2);
        assert_eq!(types.iter().filter(|&&t| t == BT_EPB).count(), 9);
        // SHB body: byte-order magic, version 1.0, section length -1, shb_userappl.
        assert_eq!(
            &framed[0].1[..16],
            &[0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        // IDB of ifindex 7: ethernet, snaplen, if_name "eth0", if_tsresol 9, end of options.
        #[rustfmt::skip]
        let idb7 = [
            1, 0, 0, 0, 0xff, 0xff, 0, 0,
            2, 0, 4, 0, b'e', b't', b'h', b'0',
            9, 0, 1, 0, 9, 0, 0, 0,
            0, 0, 0, 0,
        ];
        assert_eq!(framed[1].1, idb7);
        // IDB of ifindex 9 has no name.
        assert_eq!(
            framed[3].1,
            [1, 0, 0, 0, 0xff, 0xff, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]
        );
        // A new section starts over with interface ids.
        let mut enc = Encoder::new(Format::Pcapng, 100);
        let mut out = Vec::new();
        enc.header(&mut out);
        enc.packet(&mut out, 1, 1, &[0], 5);
        enc.header(&mut out);
        enc.packet(&mut out, 2, 1, &[0], 6);
        let types: Vec<u32> = blocks(&out).iter().map(|b| b.0).collect();
        assert_eq!(types, [BT_SHB, BT_IDB, BT_EPB, BT_SHB, BT_IDB, BT_EPB]);
        let (_, recs) = read_records(&out).unwrap();
        assert_eq!(
            recs.iter().map(|r| r.ifindex_or_idb).collect::<Vec<_>>(),
            [0, 0]
        );
    }
}
