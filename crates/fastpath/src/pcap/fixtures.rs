//! Test fixtures shared by the encoder, reader and writer tests.

use super::{Encoder, Format};

/// Ethernet + IPv4 + UDP 10.0.0.1:1234 -> 10.0.0.2:53, 4 bytes of payload.
pub(super) const UDP_FRAME: [u8; 46] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst mac
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src mac
    0x08, 0x00, // IPv4
    0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x66, 0xca, // ver..checksum
    10, 0, 0, 1, // src
    10, 0, 0, 2, // dst
    0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, // udp 1234 -> 53, len 12
    0xde, 0xad, 0xbe, 0xef, // payload
];

pub(super) const TS: u64 = 1_700_000_000_123_456_789;

/// A deterministic packet `i`: varying length (so pcapng padding varies) and contents.
pub(super) fn packet(i: u32) -> (u64, u32, Vec<u8>) {
    let len = 60 + (i as usize * 37) % 1400;
    let data: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
    (TS + u64::from(i) * 1_001, len as u32 + 4, data)
}

pub(super) fn encode(
    format: Format,
    snaplen: u32,
    packets: &[(u64, u32, Vec<u8>, u32)],
) -> Vec<u8> {
    let mut enc = Encoder::new(format, snaplen);
    enc.add_interface(7, "eth0");
    let mut out = Vec::new();
    enc.header(&mut out);
    for (ts, orig, data, ifindex) in packets {
        enc.packet(&mut out, *ts, *orig, data, *ifindex);
    }
    out
}

/// Walk pcapng blocks, checking the framing; returns (type, body) of each.
pub(super) fn blocks(bytes: &[u8]) -> Vec<(u32, &[u8])> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let btype = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        assert_eq!(
            len % 4,
            0,
            "block at {pos}: length {len} not a multiple of 4"
        );
        let trailing = u32::from_le_bytes(bytes[pos + len - 4..pos + len].try_into().unwrap());
        assert_eq!(trailing as usize, len, "block at {pos}: trailing length");
        out.push((btype, &bytes[pos + 8..pos + len - 4]));
        pos += len;
    }
    assert_eq!(pos, bytes.len());
    out
}
