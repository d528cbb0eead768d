//! Ethernet / [802.1Q] / IPv4 / UDP frames (sans-IO).
//!
//! [`UdpHeaders::write`] fills in the headers and both checksums in front of a
//! payload; [`checksum`] is the RFC 1071 Internet checksum. On top of them,
//! the deterministic test frames ([`udp_frame`], [`vlan_frame`],
//! [`udp_frames`]): the UDP payload is `b"FPT0"`, `seq` as big-endian u32,
//! then pattern bytes `payload[i] = (seq + i) as u8` for `i >= 8`.
//! Guarantee: [`frame_seq`] never panics, whatever the input.

/// Magic at the start of every UDP payload built here.
pub const MAGIC: [u8; 4] = *b"FPT0";

/// Default destination MAC: locally administered and owned by nobody, so the
/// receiving stack classifies frames as `PACKET_OTHERHOST` and drops them
/// after the capture taps have seen them.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Default source MAC (locally administered).
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// IPv4 source address, 10.99.0.1.
pub const SRC_IP: [u8; 4] = [10, 99, 0, 1];

/// IPv4 destination address, 10.99.0.2.
pub const DST_IP: [u8; 4] = [10, 99, 0, 2];

/// UDP destination port (discard).
pub const DST_PORT: u16 = 9;

/// Smallest frame length accepted: the Ethernet minimum without FCS.
pub const MIN_LEN: usize = 60;

const ETH_LEN: usize = 14;
const VLAN_LEN: usize = 4;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;

/// Builds an Ethernet/IPv4/UDP frame of exactly `len` bytes (no FCS).
///
/// Source 10.99.0.1 port `1000 + seq % 1000`, destination 10.99.0.2 port 9.
///
/// # Panics
///
/// If `len < 60` ([`MIN_LEN`]) or the IPv4 packet would exceed 65535 bytes.
///
/// # Examples
///
/// ```
/// use fastpath_harness::frame::{frame_seq, udp_frame, DST_MAC, SRC_MAC};
/// let f = udp_frame(7, 128, DST_MAC, SRC_MAC);
/// assert_eq!(f.len(), 128);
/// assert_eq!(frame_seq(&f), Some(7));
/// ```
#[track_caller]
pub fn udp_frame(seq: u32, len: usize, dst_mac: [u8; 6], src_mac: [u8; 6]) -> Vec<u8> {
    build(seq, len, None, dst_mac, src_mac)
}

/// `n` frames built by [`udp_frame`] to [`DST_MAC`] from `src_mac`, sequence
/// numbers `0..n`, lengths sweeping 60..=1514 (`60 + seq * 97 % 1455`) so
/// block packing and slot boundaries are exercised.
///
/// # Examples
///
/// ```
/// use fastpath_harness::frame::{frame_seq, udp_frames, SRC_MAC};
/// let fs = udp_frames(3, SRC_MAC);
/// assert_eq!(fs.iter().map(Vec::len).collect::<Vec<_>>(), [60, 157, 254]);
/// assert_eq!(frame_seq(&fs[2]), Some(2));
/// ```
pub fn udp_frames(n: u32, src_mac: [u8; 6]) -> Vec<Vec<u8>> {
    (0..n)
        .map(|s| udp_frame(s, 60 + (s as usize * 97) % 1455, DST_MAC, src_mac))
        .collect()
}

/// Like [`udp_frame`] with an 802.1Q tag (PCP 0, DEI 0, `vid`) after the
/// MAC addresses; the whole frame, tag included, is `len` bytes.
///
/// # Panics
///
/// If `len < 60`, the IPv4 packet would exceed 65535 bytes, or `vid > 4095`.
#[track_caller]
pub fn vlan_frame(seq: u32, len: usize, vid: u16, dst_mac: [u8; 6], src_mac: [u8; 6]) -> Vec<u8> {
    assert!(vid <= 0x0fff, "VLAN id {vid} does not fit 12 bits");
    build(seq, len, Some(vid), dst_mac, src_mac)
}

#[track_caller]
fn build(seq: u32, len: usize, vid: Option<u16>, dst_mac: [u8; 6], src_mac: [u8; 6]) -> Vec<u8> {
    assert!(
        len >= MIN_LEN,
        "frame length {len} is below the Ethernet minimum {MIN_LEN}"
    );
    let headers = UdpHeaders {
        dst_mac,
        src_mac,
        vlan: vid,
        src_ip: SRC_IP,
        dst_ip: DST_IP,
        // The IPv4 id is the low 16 bits of seq.
        ip_id: seq as u16,
        src_port: 1000 + (seq % 1000) as u16,
        dst_port: DST_PORT,
    };
    let l3 = headers.header_len() - IP_LEN - UDP_LEN;
    assert!(
        len - l3 <= usize::from(u16::MAX),
        "frame length {len} exceeds the IPv4 maximum"
    );
    let mut f = vec![0u8; len];
    let payload = &mut f[headers.header_len()..];
    payload[..4].copy_from_slice(&MAGIC);
    payload[4..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in payload.iter_mut().enumerate().skip(8) {
        *b = seq.wrapping_add(i as u32) as u8;
    }
    headers.write(&mut f);
    f
}

/// The headers of one Ethernet / [802.1Q] / IPv4 / UDP frame: IPv4 without options, DSCP 0,
/// DF set, TTL 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpHeaders {
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// An 802.1Q tag (PCP 0, DEI 0, this VLAN id) after the MAC addresses.
    pub vlan: Option<u16>,
    /// IPv4 source address.
    pub src_ip: [u8; 4],
    /// IPv4 destination address.
    pub dst_ip: [u8; 4],
    /// IPv4 identification.
    pub ip_id: u16,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
}

impl UdpHeaders {
    /// Bytes of headers in front of the UDP payload: 42, or 46 with a VLAN tag.
    pub fn header_len(&self) -> usize {
        ETH_LEN + if self.vlan.is_some() { VLAN_LEN } else { 0 } + IP_LEN + UDP_LEN
    }

    /// Writes these headers over the first [`UdpHeaders::header_len`] bytes of `frame`, taking the
    /// rest as the UDP payload, with the IPv4 total length, UDP length and both checksums
    /// (an all-zero UDP checksum is sent as all ones, RFC 768).
    ///
    /// # Panics
    ///
    /// If `frame` is shorter than the headers, the IPv4 packet would exceed 65535 bytes, or
    /// the VLAN id does not fit 12 bits.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastpath_harness::frame::{checksum, UdpHeaders};
    /// let h = UdpHeaders {
    ///     dst_mac: [2, 0, 0, 0, 0, 2],
    ///     src_mac: [2, 0, 0, 0, 0, 1],
    ///     vlan: None,
    ///     src_ip: [10, 0, 0, 1],
    ///     dst_ip: [10, 0, 0, 2],
    ///     ip_id: 0,
    ///     src_port: 1024,
    ///     dst_port: 9,
    /// };
    /// let mut f = vec![0u8; 64];
    /// f[h.header_len()..].fill(0xab);
    /// h.write(&mut f);
    /// assert_eq!(checksum(&f[14..34], 0), 0); // a valid IPv4 header sums to all ones
    /// ```
    #[track_caller]
    pub fn write(&self, frame: &mut [u8]) {
        let len = frame.len();
        assert!(
            len >= self.header_len(),
            "frame of {len} bytes is shorter than its headers"
        );
        let l3 = self.header_len() - IP_LEN - UDP_LEN;
        let ip_total = u16::try_from(len - l3).expect("the IPv4 packet exceeds 65535 bytes");
        let udp_len = ip_total - IP_LEN as u16;
        frame[0..6].copy_from_slice(&self.dst_mac);
        frame[6..12].copy_from_slice(&self.src_mac);
        if let Some(vid) = self.vlan {
            assert!(vid <= 0x0fff, "VLAN id {vid} does not fit 12 bits");
            frame[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            frame[14..16].copy_from_slice(&vid.to_be_bytes());
        }
        frame[l3 - 2..l3].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());

        // IPv4: version 4, IHL 5, DSCP 0, total length, id, DF, TTL 64, UDP,
        // checksum filled below.
        let ip = &mut frame[l3..l3 + IP_LEN];
        ip[0..2].copy_from_slice(&[0x45, 0]);
        ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        ip[6..12].copy_from_slice(&[0x40, 0, 64, 17, 0, 0]);
        ip[12..16].copy_from_slice(&self.src_ip);
        ip[16..20].copy_from_slice(&self.dst_ip);
        let csum = checksum(ip, 0);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());

        let udp = l3 + IP_LEN;
        let u = &mut frame[udp..udp + UDP_LEN];
        u[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        u[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        u[4..6].copy_from_slice(&udp_len.to_be_bytes());
        u[6..8].copy_from_slice(&[0, 0]);

        // Pseudo-header: src, dst, zero + protocol, UDP length.
        let mut pseudo = 0u32;
        for w in self.src_ip.chunks(2).chain(self.dst_ip.chunks(2)) {
            pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        pseudo += 17 + u32::from(udp_len);
        let csum = match checksum(&frame[udp..], pseudo) {
            0 => 0xffff, // RFC 768: a computed 0 is sent as all ones
            c => c,
        };
        frame[udp + 6..udp + 8].copy_from_slice(&csum.to_be_bytes());
    }
}

/// Internet checksum (RFC 1071) of `data`, starting from partial sum `sum`: the one's
/// complement of the folded one's-complement sum. Over data that includes a valid checksum
/// it is 0.
pub fn checksum(data: &[u8], mut sum: u32) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Returns the sequence number of a frame built by [`udp_frame`] or
/// [`vlan_frame`], or `None` for any other frame (so tests can skip foreign
/// traffic). Accepts up to two VLAN tags, so it also works after a capture
/// path stripped or kept the tag.
pub fn frame_seq(frame: &[u8]) -> Option<u32> {
    let mut off = 12;
    let mut ethertype = be16(frame, off)?;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        off += VLAN_LEN;
        ethertype = be16(frame, off)?;
    }
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let l3 = off + 2;
    let vihl = *frame.get(l3)?;
    if vihl >> 4 != 4 || vihl & 0x0f < 5 || *frame.get(l3 + 9)? != 17 {
        return None;
    }
    let payload = l3 + usize::from(vihl & 0x0f) * 4 + UDP_LEN;
    if frame.get(payload..payload + 4)? != MAGIC {
        return None;
    }
    let seq = frame.get(payload + 4..payload + 8)?;
    Some(u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]))
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

#[cfg(test)]
mod test {
    use super::*;

    /// `udp_frame(0x01020304, 60, DST_MAC, SRC_MAC)`; checksums computed
    /// independently (Python, RFC 1071 fold).
    const FRAME_60: [u8; 60] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x2e, // ver/ihl, tos, total length 46
        0x03, 0x04, 0x40, 0x00, // id = seq as u16, DF
        0x40, 0x11, 0x22, 0xf3, // ttl 64, UDP, header checksum
        10, 99, 0, 1, 10, 99, 0, 2, // addresses
        0x04, 0x24, 0x00, 0x09, // sport 1000 + 16909060 % 1000 = 1060, dport 9
        0x00, 0x1a, 0xf7, 0xe8, // UDP length 26, checksum
        b'F', b'P', b'T', b'0', 0x01, 0x02, 0x03, 0x04, // magic, seq
        0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14,
        0x15, // (seq + i) as u8, i = 8..18
    ];

    /// The one's-complement sum over data including its checksum is 0xffff,
    /// so `checksum` returns 0.
    fn verify(data: &[u8], pseudo: u32) -> bool {
        checksum(data, pseudo) == 0
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(
            udp_frame(0x0102_0304, 60, DST_MAC, SRC_MAC)[..],
            FRAME_60[..]
        );
    }

    #[test]
    fn checksums_verify() {
        for (seq, len) in [(0, 60), (1, 61), (0xffff_ffff, 1514), (12345, 9000)] {
            let f = udp_frame(seq, len, DST_MAC, SRC_MAC);
            assert_eq!(f.len(), len);
            assert!(verify(&f[14..34], 0), "ip checksum seq {seq} len {len}");
            let udp_len = u32::from(u16::from_be_bytes([f[38], f[39]]));
            assert_eq!(udp_len as usize, len - 34);
            let pseudo = 0x0a63 + 0x0001 + 0x0a63 + 0x0002 + 17 + udp_len;
            assert!(verify(&f[34..], pseudo), "udp checksum seq {seq} len {len}");
        }
    }

    #[test]
    fn known_ip_checksum() {
        // Example from RFC 1071 style hand computation: a header whose
        // checksum is known (Wikipedia "IPv4 header checksum" example).
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr, 0), 0xb861);
    }

    #[test]
    fn seq_roundtrip_and_vlan() {
        for seq in [0, 1, 999, 1000, u32::MAX] {
            assert_eq!(frame_seq(&udp_frame(seq, 64, DST_MAC, SRC_MAC)), Some(seq));
            let v = vlan_frame(seq, 64, 100, DST_MAC, SRC_MAC);
            assert_eq!(v.len(), 64);
            assert_eq!(&v[12..16], &[0x81, 0x00, 0x00, 100]);
            assert!(verify(&v[18..38], 0));
            assert_eq!(frame_seq(&v), Some(seq));
        }
        // The untagged view of a VLAN frame (what a receiver sees after the
        // kernel strips the tag) is a valid frame with the same seq.
        let v = vlan_frame(5, 100, 7, DST_MAC, SRC_MAC);
        let stripped: Vec<u8> = v[..12].iter().chain(&v[16..]).copied().collect();
        assert_eq!(frame_seq(&stripped), Some(5));
    }

    #[test]
    fn foreign_and_truncated_frames() {
        let f = udp_frame(3, 60, DST_MAC, SRC_MAC);
        for cut in 0..f.len() {
            let _ = frame_seq(&f[..cut]); // must not panic
        }
        assert_eq!(frame_seq(&f[..49]), None);
        assert_eq!(frame_seq(&f[..50]), Some(3));
        let mut ipv6 = f.clone();
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(frame_seq(&ipv6), None);
        let mut bad_magic = f.clone();
        bad_magic[42] = b'X';
        assert_eq!(frame_seq(&bad_magic), None);
        assert_eq!(frame_seq(&[]), None);
    }

    #[test]
    #[should_panic(expected = "below the Ethernet minimum")]
    fn too_short_panics() {
        let _ = udp_frame(0, 59, DST_MAC, SRC_MAC);
    }

    #[test]
    #[should_panic(expected = "does not fit 12 bits")]
    fn bad_vid_panics() {
        let _ = vlan_frame(0, 64, 4096, DST_MAC, SRC_MAC);
    }
}
