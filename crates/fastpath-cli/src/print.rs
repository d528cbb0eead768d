//! tcpdump-like one-line packet summaries (`fastpath capture` without `-w`).
//!
//! One line per Ethernet frame, close to `tcpdump -nn -S` with a UTC time of day:
//!
//! ```text
//! 22:13:20.123456789 IP 10.0.0.1.1234 > 10.0.0.2.53: UDP, length 4
//! 22:13:20.123456789 IP 10.0.0.2.80 > 10.0.0.1.1234: Flags [S.], seq 1000, ack 2001, win 65535, length 0
//! 22:13:20.123456789 vlan 100, IP6 fe80::1 > fe80::2: ICMP6, echo request, id 1, seq 2, length 12
//! 22:13:20.123456789 ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28
//! 22:13:20.123456789 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x88b5, length 24
//! 22:13:20.123456789 IP 10.0.0.1.1234 > 10.0.0.2.80: Flags [.], seq 1:1449, ack 1, win 502, length 1448 [|snap 64 of 1514]
//! ```
//!
//! Lengths are those on the wire, taken from the headers, so they stay right when the capture
//! was cut by the snaplen; the ` [|snap C of O]` suffix then says how much was captured.
//!
//! Guarantee: [`write_line`] never panics, whatever the bytes. Frames it cannot decode (other
//! ethertypes, malformed or truncated headers) get the Ethernet line with the MAC addresses and
//! the ethertype. It builds no `String`: everything is formatted straight into `out`.

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    err::Layer, icmpv6, ip_number, ArpHardwareId, ArpOperation, ArpPacketSlice, EtherType,
    Icmpv4Slice, Icmpv4Type, Icmpv6Slice, Icmpv6Type, LaxIpPayloadSlice, LaxLinkExtSlice,
    LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice,
};

/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// Write one summary line (with its `\n`) for an Ethernet frame: `ts_ns` = ns since the UNIX
/// epoch, `orig_len` = length on the wire, `data` = captured bytes.
#[cfg(test)]
pub(crate) fn write_line(
    out: &mut impl Write,
    ts_ns: u64,
    orig_len: u32,
    data: &[u8],
) -> io::Result<()> {
    write_line_on(out, ts_ns, None, orig_len, data)
}

/// [`write_line`] with the interface name after the time when `interface` is given (captures
/// on several interfaces), as `tcpdump -i any` prints it: `22:13:20.123456789 eth0 IP ...`.
pub(crate) fn write_line_on(
    out: &mut impl Write,
    ts_ns: u64,
    interface: Option<&str>,
    orig_len: u32,
    data: &[u8],
) -> io::Result<()> {
    let day = ts_ns / NS_PER_S % 86_400;
    write!(
        out,
        "{:02}:{:02}:{:02}.{:09} ",
        day / 3600,
        day / 60 % 60,
        day % 60,
        ts_ns % NS_PER_S
    )?;
    if let Some(name) = interface {
        write!(out, "{name} ")?;
    }
    write_summary(out, orig_len, data)?;
    if (data.len() as u64) < u64::from(orig_len) {
        write!(out, " [|snap {} of {orig_len}]", data.len())?;
    }
    writeln!(out)
}

/// Everything after the timestamp, without the snap suffix.
fn write_summary(out: &mut impl Write, orig_len: u32, data: &[u8]) -> io::Result<()> {
    let Ok(pkt) = LaxSlicedPacket::from_ethernet(data) else {
        return write!(out, "[|ether], length {orig_len}");
    };
    for ext in &pkt.link_exts {
        if let LaxLinkExtSlice::Vlan(vlan) = ext {
            write!(out, "vlan {}, ", vlan.vlan_identifier().value())?;
        }
    }
    let stop_layer = pkt.stop_err.as_ref().map(|(_, layer)| *layer);
    match &pkt.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let frag_offset = (h.more_fragments() || h.fragments_offset().value() != 0)
                .then(|| u32::from(h.fragments_offset().value()) * 8);
            let l3 = L3 {
                family: "IP",
                src: h.source_addr().into(),
                dst: h.destination_addr().into(),
                l4_wire_len: l4_wire_len(h.slice(), ip.payload(), usize::from(h.total_len())),
                frag_offset,
            };
            write_ip(out, &l3, ip.payload(), pkt.transport.as_ref(), stop_layer)
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let l3 = L3 {
                family: "IP6",
                src: h.source_addr().into(),
                dst: h.destination_addr().into(),
                l4_wire_len: l4_wire_len(
                    h.slice(),
                    ip.payload(),
                    40 + usize::from(h.payload_length()),
                ),
                frag_offset: None,
            };
            write_ip(out, &l3, ip.payload(), pkt.transport.as_ref(), stop_layer)
        }
        Some(LaxNetSlice::Arp(arp)) => {
            let l2_len = offset_in(data, arp.slice());
            let len = (orig_len as usize).saturating_sub(l2_len);
            write_arp(out, arp, len)
        }
        None => write_ether(out, &pkt, orig_len, stop_layer),
    }
}

/// The network-layer facts a transport line needs.
struct L3 {
    /// `IP` or `IP6`.
    family: &'static str,
    src: IpAddr,
    dst: IpAddr,
    /// Length on the wire of what follows the IP header and its extension headers.
    l4_wire_len: usize,
    /// IPv4 fragment offset in bytes, for fragments (`None` for unfragmented packets and IPv6).
    frag_offset: Option<u32>,
}

/// Position of `part` inside `whole`, both slices of the same frame.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// Length on the wire of the IP payload: exact when it was captured whole, else the IP total
/// length (`wire_total`) minus the headers in front of the payload.
fn l4_wire_len(ip_header: &[u8], payload: &LaxIpPayloadSlice<'_>, wire_total: usize) -> usize {
    if payload.incomplete {
        wire_total.saturating_sub(offset_in(ip_header, payload.payload))
    } else {
        payload.payload.len()
    }
}

/// `IP src.port > dst.port: ...` for TCP, UDP, ICMP and ICMPv6; `IP src > dst: PROTO, length N`
/// for other protocols, fragments and transport headers that could not be read.
fn write_ip(
    out: &mut impl Write,
    l3: &L3,
    payload: &LaxIpPayloadSlice<'_>,
    transport: Option<&TransportSlice<'_>>,
    stop_layer: Option<Layer>,
) -> io::Result<()> {
    let L3 {
        family, src, dst, ..
    } = l3;
    let wire = l3.l4_wire_len;
    if payload.ip_number == ip_number::TCP && !payload.fragmented {
        if let Some(tcp) = TcpFixed::parse(payload.payload) {
            let (sport, dport) = (tcp.sport, tcp.dport);
            write!(out, "{family} {src}.{sport} > {dst}.{dport}: ")?;
            return write_tcp(out, &tcp, wire);
        }
    }
    match transport {
        Some(TransportSlice::Udp(udp)) => {
            let (sport, dport) = (udp.source_port(), udp.destination_port());
            let len = match usize::from(udp.length()) {
                n if n >= 8 => n - 8,
                _ => wire.saturating_sub(8),
            };
            write!(
                out,
                "{family} {src}.{sport} > {dst}.{dport}: UDP, length {len}"
            )
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
            write!(out, "{family} {src} > {dst}: ")?;
            write_icmpv4(out, icmp, wire)
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            write!(out, "{family} {src} > {dst}: ")?;
            write_icmpv6(out, icmp, wire)
        }
        // TCP only lands here when its fixed header is cut (handled above otherwise).
        None | Some(TransportSlice::Tcp(_)) => {
            write!(out, "{family} {src} > {dst}: ")?;
            match payload.ip_number.keyword_str() {
                Some(name) => write!(out, "{name}")?,
                None => write!(out, "ip-proto-{}", payload.ip_number.0)?,
            }
            if payload.fragmented {
                match l3.frag_offset {
                    Some(off) => write!(out, " fragment, offset {off}")?,
                    None => write!(out, " fragment")?,
                }
            } else if let Some(layer) = stop_layer {
                write!(out, ", bad or truncated {layer}")?;
            }
            write!(out, ", length {wire}")
        }
    }
}

/// The fixed 20 bytes of a TCP header (RFC 9293 section 3.1), read directly so that a header
/// whose options were cut by the snaplen still prints (etherparse wants the options too).
struct TcpFixed {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    /// Header length in bytes, options included (`data offset` * 4).
    header_len: usize,
    /// CWR ECE URG ACK PSH RST SYN FIN, from bit 7 down to bit 0.
    flags: u8,
    win: u16,
}

impl TcpFixed {
    /// `None` if fewer than 20 bytes were captured or the data offset is below 5.
    fn parse(b: &[u8]) -> Option<TcpFixed> {
        let b: &[u8; 20] = b.get(..20)?.try_into().ok()?;
        let header_len = usize::from(b[12] >> 4) * 4;
        (header_len >= 20).then(|| TcpFixed {
            sport: u16::from_be_bytes([b[0], b[1]]),
            dport: u16::from_be_bytes([b[2], b[3]]),
            seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            header_len,
            flags: b[13],
            win: u16::from_be_bytes([b[14], b[15]]),
        })
    }
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// `Flags [S.], seq 1000:1100, ack 2001, win 502, length 100` (absolute sequence numbers, like
/// `tcpdump -S`).
fn write_tcp(out: &mut impl Write, tcp: &TcpFixed, l4_wire_len: usize) -> io::Result<()> {
    let len = l4_wire_len.saturating_sub(tcp.header_len);
    // tcpdump's letters, in its order (print-tcp.c `tcp_flag_values`): FIN SYN RST PSH ACK URG
    // ECE CWR.
    const LETTERS: [(u8, char); 8] = [
        (TCP_FIN, 'F'),
        (TCP_SYN, 'S'),
        (TCP_RST, 'R'),
        (0x08, 'P'),
        (TCP_ACK, '.'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ];
    write!(out, "Flags [")?;
    if tcp.flags == 0 {
        write!(out, "none")?;
    }
    for (bit, letter) in LETTERS {
        if tcp.flags & bit != 0 {
            write!(out, "{letter}")?;
        }
    }
    write!(out, "]")?;
    // Like tcpdump: no sequence number on a bare ACK.
    if len > 0 {
        write!(
            out,
            ", seq {}:{}",
            tcp.seq,
            tcp.seq.wrapping_add(len as u32)
        )?;
    } else if tcp.flags & (TCP_SYN | TCP_FIN | TCP_RST) != 0 {
        write!(out, ", seq {}", tcp.seq)?;
    }
    if tcp.flags & TCP_ACK != 0 {
        write!(out, ", ack {}", tcp.ack)?;
    }
    write!(out, ", win {}, length {len}", tcp.win)
}

/// `ICMP echo request, id 1, seq 2, length 64`, or `ICMP type T code C, length N`.
fn write_icmpv4(
    out: &mut impl Write,
    icmp: &Icmpv4Slice<'_>,
    l4_wire_len: usize,
) -> io::Result<()> {
    match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(echo) => {
            write!(out, "ICMP echo request, id {}, seq {}", echo.id, echo.seq)?
        }
        Icmpv4Type::EchoReply(echo) => {
            write!(out, "ICMP echo reply, id {}, seq {}", echo.id, echo.seq)?
        }
        _ => write!(out, "ICMP type {} code {}", icmp.type_u8(), icmp.code_u8())?,
    }
    write!(out, ", length {l4_wire_len}")
}

/// `ICMP6, echo request, id 1, seq 2, length 64`, a name for the common types, or
/// `ICMP6, type T code C, length N`.
fn write_icmpv6(
    out: &mut impl Write,
    icmp: &Icmpv6Slice<'_>,
    l4_wire_len: usize,
) -> io::Result<()> {
    write!(out, "ICMP6, ")?;
    match icmp.icmp_type() {
        Icmpv6Type::EchoRequest(echo) => {
            write!(out, "echo request, id {}, seq {}", echo.id, echo.seq)?
        }
        Icmpv6Type::EchoReply(echo) => write!(out, "echo reply, id {}, seq {}", echo.id, echo.seq)?,
        _ => {
            let name = match icmp.type_u8() {
                icmpv6::TYPE_DST_UNREACH => "destination unreachable",
                icmpv6::TYPE_PACKET_TOO_BIG => "packet too big",
                icmpv6::TYPE_TIME_EXCEEDED => "time exceeded",
                icmpv6::TYPE_ROUTER_SOLICITATION => "router solicitation",
                icmpv6::TYPE_ROUTER_ADVERTISEMENT => "router advertisement",
                icmpv6::TYPE_NEIGHBOR_SOLICITATION => "neighbor solicitation",
                icmpv6::TYPE_NEIGHBOR_ADVERTISEMENT => "neighbor advertisement",
                _ => "",
            };
            if name.is_empty() {
                write!(out, "type {} code {}", icmp.type_u8(), icmp.code_u8())?
            } else {
                write!(out, "{name}")?
            }
        }
    }
    write!(out, ", length {l4_wire_len}")
}

/// `ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28` and friends. `len` is the length on
/// the wire after the Ethernet (and VLAN) header, as tcpdump prints it.
fn write_arp(out: &mut impl Write, arp: &ArpPacketSlice<'_>, len: usize) -> io::Result<()> {
    let ipv4_over_ethernet = arp.hw_addr_type() == ArpHardwareId::ETHERNET
        && arp.proto_addr_type() == EtherType::IPV4
        && arp.hw_addr_size() == 6
        && arp.proto_addr_size() == 4;
    if !ipv4_over_ethernet {
        return write!(
            out,
            "ARP, hardware type {}, protocol 0x{:04x}, operation {}, length {len}",
            arp.hw_addr_type().0,
            arp.proto_addr_type().0,
            arp.operation().0
        );
    }
    let spa = ipv4(arp.sender_protocol_addr());
    let tpa = ipv4(arp.target_protocol_addr());
    let op = arp.operation();
    if op == ArpOperation::REQUEST {
        write!(out, "ARP, Request who-has {tpa} tell {spa}, length {len}")
    } else if op == ArpOperation::REPLY {
        let sha = Mac(arp.sender_hw_addr());
        write!(out, "ARP, Reply {spa} is-at {sha}, length {len}")
    } else {
        write!(out, "ARP, operation {}, length {len}", op.0)
    }
}

/// An IPv4 address from 4 bytes (`0.0.0.0` if there are not exactly 4).
fn ipv4(bytes: &[u8]) -> Ipv4Addr {
    <[u8; 4]>::try_from(bytes).map_or(Ipv4Addr::UNSPECIFIED, Ipv4Addr::from)
}

/// The fallback: `src > dst, ethertype 0x88b5, length N`.
fn write_ether(
    out: &mut impl Write,
    pkt: &LaxSlicedPacket<'_>,
    orig_len: u32,
    stop_layer: Option<Layer>,
) -> io::Result<()> {
    if let Some(LinkSlice::Ethernet2(eth)) = &pkt.link {
        let (src, dst) = (eth.source(), eth.destination());
        write!(out, "{} > {}, ", Mac(&src), Mac(&dst))?;
    }
    // The innermost ethertype, after any VLAN tags.
    let ether_type = pkt.ether_payload().map_or(0, |p| p.ether_type.0);
    if ether_type < 0x0600 {
        // A length, not a type: IEEE 802.3 framing (LLC follows).
        write!(out, "802.3, length {orig_len}")?;
    } else {
        write!(out, "ethertype 0x{ether_type:04x}, length {orig_len}")?;
    }
    if let Some(layer) = stop_layer {
        write!(out, ", bad or truncated {layer}")?;
    }
    Ok(())
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`, written without allocating.
struct Mac<'a>(&'a [u8]);

impl fmt::Display for Mac<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// 2023-11-14 22:13:20.123456789 UTC.
    const TS: u64 = 1_700_000_000_123_456_789;

    const ETH_IPV4: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];

    /// Ethernet + IPv4 + UDP 10.0.0.1:1234 -> 10.0.0.2:53, 4 bytes of payload.
    #[rustfmt::skip]
    const UDP: [u8; 46] = [
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x66, 0xca,
        10, 0, 0, 1, 10, 0, 0, 2,
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00,
        0xde, 0xad, 0xbe, 0xef,
    ];

    /// Ethernet + IPv4 + TCP SYN-ACK 10.0.0.2:80 -> 10.0.0.1:1234, seq 1000, ack 2001.
    #[rustfmt::skip]
    const TCP_SYN_ACK: [u8; 54] = [
        2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00,
        10, 0, 0, 2, 10, 0, 0, 1,
        0x00, 0x50, 0x04, 0xd2, // ports
        0x00, 0x00, 0x03, 0xe8, // seq 1000
        0x00, 0x00, 0x07, 0xd1, // ack 2001
        0x50, 0x12, 0xff, 0xff, // doff 5, SYN|ACK, win 65535
        0x00, 0x00, 0x00, 0x00, // checksum, urgent pointer
    ];

    /// Ethernet + IPv4 + TCP PSH-ACK with `hello`; IP total length `total`.
    fn tcp_psh(total: u16) -> Vec<u8> {
        let mut f = TCP_SYN_ACK.to_vec();
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[47] = 0x18; // PSH|ACK
        f.extend_from_slice(b"hello");
        f
    }

    /// Ethernet + IPv4 + ICMP type/code, id 1, seq 2, 4 bytes of data.
    fn icmp(icmp_type: u8, code: u8) -> Vec<u8> {
        let mut f = ETH_IPV4.to_vec();
        f.extend_from_slice(&[
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend_from_slice(&[icmp_type, code, 0, 0, 0, 1, 0, 2, 1, 2, 3, 4]);
        f
    }

    /// Ethernet + IPv6 fe80::1 -> fe80::2 with `next_header` and `payload`.
    fn ipv6(next_header: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, payload.len() as u8, next_header, 64]);
        f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(payload);
        f
    }

    /// ARP over Ethernet: `op` 1 (request) from .1 asking for .2, or 2 (reply) from .2.
    fn arp(op: u8) -> Vec<u8> {
        let mut f = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
        ];
        f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, op]);
        if op == 1 {
            f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        } else {
            f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 10, 0, 0, 2, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        }
        f
    }

    /// The line for `data` captured whole, without the timestamp and the newline.
    fn line(data: &[u8]) -> String {
        line_cut(data, data.len() as u32)
    }

    fn line_cut(data: &[u8], orig_len: u32) -> String {
        let mut out = Vec::new();
        write_line(&mut out, TS, orig_len, data).unwrap();
        let s = String::from_utf8(out).unwrap();
        let s = s.strip_prefix("22:13:20.123456789 ").expect("timestamp");
        s.strip_suffix('\n').expect("newline").to_owned()
    }

    #[test]
    fn timestamp_is_utc_time_of_day() {
        let mut out = Vec::new();
        write_line(&mut out, 0, 0, &[]).unwrap();
        assert_eq!(out, b"00:00:00.000000000 [|ether], length 0\n");
        out.clear();
        write_line(&mut out, 86_399 * NS_PER_S + 5, 0, &[]).unwrap();
        assert!(out.starts_with(b"23:59:59.000000005 "));
    }

    #[test]
    fn udp() {
        assert_eq!(line(&UDP), "IP 10.0.0.1.1234 > 10.0.0.2.53: UDP, length 4");
    }

    #[test]
    fn tcp() {
        assert_eq!(
            line(&TCP_SYN_ACK),
            "IP 10.0.0.2.80 > 10.0.0.1.1234: Flags [S.], seq 1000, ack 2001, win 65535, length 0"
        );
        assert_eq!(
            line(&tcp_psh(45)),
            "IP 10.0.0.2.80 > 10.0.0.1.1234: Flags [P.], seq 1000:1005, ack 2001, win 65535, length 5"
        );
        // Cut by the snaplen: lengths come from the IP header.
        assert_eq!(
            line_cut(&tcp_psh(1500), 1514),
            "IP 10.0.0.2.80 > 10.0.0.1.1234: Flags [P.], seq 1000:2460, ack 2001, win 65535, length 1460 [|snap 59 of 1514]"
        );
        // SYN with 20 bytes of options, captured with snaplen 60: options cut, header still read.
        let mut syn = TCP_SYN_ACK.to_vec();
        syn[16..18].copy_from_slice(&60u16.to_be_bytes());
        syn[46] = 0xa0; // data offset 10: 40-byte header
        syn[47] = 0x02;
        syn.resize(74, 1); // options (nop)
        assert_eq!(
            line_cut(&syn[..60], 74),
            "IP 10.0.0.2.80 > 10.0.0.1.1234: Flags [S], seq 1000, win 65535, length 0 [|snap 60 of 74]"
        );
        let mut none = TCP_SYN_ACK;
        none[47] = 0;
        assert!(line(&none).contains("Flags [none], win 65535, length 0"));
        let mut ack = TCP_SYN_ACK;
        ack[47] = 0x10;
        assert!(line(&ack).contains("Flags [.], ack 2001, win 65535, length 0"));
        let mut all = TCP_SYN_ACK;
        all[47] = 0xff;
        assert!(line(&all).contains("Flags [FSRP.UEW], seq 1000, ack 2001"));
    }

    #[test]
    fn icmp_lines() {
        assert_eq!(
            line(&icmp(8, 0)),
            "IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 2, length 12"
        );
        assert_eq!(
            line(&icmp(0, 0)),
            "IP 10.0.0.1 > 10.0.0.2: ICMP echo reply, id 1, seq 2, length 12"
        );
        assert_eq!(
            line(&icmp(3, 3)),
            "IP 10.0.0.1 > 10.0.0.2: ICMP type 3 code 3, length 12"
        );
    }

    #[test]
    fn ipv6_lines() {
        let udp = [0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4];
        assert_eq!(
            line(&ipv6(17, &udp)),
            "IP6 fe80::1.5353 > fe80::2.53: UDP, length 4"
        );
        let echo = [0x80, 0, 0, 0, 0, 1, 0, 2, 1, 2, 3, 4];
        assert_eq!(
            line(&ipv6(58, &echo)),
            "IP6 fe80::1 > fe80::2: ICMP6, echo request, id 1, seq 2, length 12"
        );
        let ns = [135, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            line(&ipv6(58, &ns)),
            "IP6 fe80::1 > fe80::2: ICMP6, neighbor solicitation, length 8"
        );
        // Some other protocol (OSPF): named, with its length.
        assert_eq!(
            line(&ipv6(89, &[0; 6])),
            "IP6 fe80::1 > fe80::2: OSPFIGP, length 6"
        );
    }

    #[test]
    fn vlan() {
        let mut f = UDP[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]); // 802.1Q, VLAN 100
        f.extend_from_slice(&UDP[12..]);
        assert_eq!(
            line(&f),
            "vlan 100, IP 10.0.0.1.1234 > 10.0.0.2.53: UDP, length 4"
        );
    }

    #[test]
    fn arp_lines() {
        assert_eq!(
            line(&arp(1)),
            "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28"
        );
        assert_eq!(
            line(&arp(2)),
            "ARP, Reply 10.0.0.2 is-at 02:00:00:00:00:02, length 28"
        );
        // Padded to the 60-byte Ethernet minimum, as on the wire: tcpdump says 46 too.
        let mut padded = arp(1);
        padded.resize(60, 0);
        assert!(line(&padded).ends_with("tell 10.0.0.1, length 46"));
    }

    #[test]
    fn other_ethertypes_and_garbage() {
        let mut f = UDP[..12].to_vec();
        f.extend_from_slice(&[0x88, 0xb5]);
        f.extend_from_slice(&[0xab; 10]);
        assert_eq!(
            line(&f),
            "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x88b5, length 24"
        );
        // An IPv4 ethertype whose header is not IPv4.
        let mut bad = ETH_IPV4.to_vec();
        bad.extend_from_slice(&[0x65; 20]);
        assert_eq!(
            line(&bad),
            "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x0800, length 34, bad or truncated IP header"
        );
        // A TCP header cut short by the snaplen: the length on the wire still comes from IP.
        assert_eq!(
            line_cut(&TCP_SYN_ACK[..40], 54),
            "IP 10.0.0.2 > 10.0.0.1: TCP, bad or truncated TCP header, length 20 [|snap 40 of 54]"
        );
        // 802.3 length field instead of an ethertype.
        let mut llc = UDP[..12].to_vec();
        llc.extend_from_slice(&[0x00, 0x26, 0x42, 0x42, 0x03]);
        assert!(line(&llc).ends_with(", 802.3, length 17"));
        // Shorter than an Ethernet header, or nothing at all.
        assert_eq!(
            line_cut(&UDP[..5], 46),
            "[|ether], length 46 [|snap 5 of 46]"
        );
        assert_eq!(line(&[]), "[|ether], length 0");
    }

    #[test]
    fn ipv4_fragment() {
        let mut f = UDP;
        f[20] = 0x20; // more fragments, offset 0... then a later one at offset 185*8
        assert!(line(&f).contains("IP 10.0.0.1 > 10.0.0.2: UDP fragment, offset 0, length 12"));
        f[20] = 0x00;
        f[21] = 185;
        assert!(line(&f).contains("UDP fragment, offset 1480, length 12"));
    }

    /// xorshift64: deterministic noise without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn never_panics() {
        let frames = [
            UDP.to_vec(),
            TCP_SYN_ACK.to_vec(),
            tcp_psh(45),
            icmp(8, 0),
            ipv6(17, &[0x14, 0xe9, 0, 0x35, 0, 0x0c, 0, 0, 1, 2, 3, 4]),
            ipv6(58, &[0x80, 0, 0, 0, 0, 1, 0, 2]),
            ipv6(0, &[17, 0, 1, 4, 0, 0, 0, 0]), // hop-by-hop options
            arp(1),
        ];
        let mut out = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1d;
        for frame in &frames {
            for cut in 0..=frame.len() {
                out.clear();
                write_line(&mut out, TS, frame.len() as u32, &frame[..cut]).unwrap();
            }
            for _ in 0..5_000 {
                let mut f = frame.clone();
                for _ in 0..1 + xorshift(&mut rng) % 4 {
                    let at = (xorshift(&mut rng) % f.len() as u64) as usize;
                    f[at] = xorshift(&mut rng) as u8;
                }
                out.clear();
                let orig = xorshift(&mut rng) as u32;
                write_line(&mut out, xorshift(&mut rng), orig, &f).unwrap();
                assert_eq!(out.last(), Some(&b'\n'));
            }
        }
    }
}
