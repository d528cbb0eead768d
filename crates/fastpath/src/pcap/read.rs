//! [`read_records`]: a whole pcap or pcapng file in memory to records. Meant for tests and
//! fuzzing: it never panics.

use super::encode::option_len;
use super::{
    Format, BLOCK_OVERHEAD, BT_EPB, BT_IDB, BT_SHB, BT_SPB, BYTE_ORDER_MAGIC, NS_PER_S,
    OPT_ENDOFOPT, OPT_IF_TSOFFSET, OPT_IF_TSRESOL, PCAP_MAGIC_NS, PCAP_MAGIC_US,
    PCAP_RECORD_HEADER,
};
use crate::{Error, Result};

/// One packet read back by [`read_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Nanoseconds since the UNIX epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: Vec<u8>,
    /// pcapng: the interface id (index of the interface description block in its section).
    /// pcap: 0.
    pub ifindex_or_idb: u32,
}

/// Parse a whole capture file held in memory: classic pcap (microsecond or nanosecond magic,
/// either byte order) or pcapng (SHB/IDB/EPB and SPB, honoring `if_tsresol` and
/// `if_tsoffset`; other blocks are skipped).
///
/// Never panics: any input yields records or an error.
///
/// # Errors
/// [`Error::InvalidCapture`] with the offset of the first malformed header, record or block,
/// including a truncated last record.
pub fn read_records(bytes: &[u8]) -> Result<(Format, Vec<Record>)> {
    let magic = Endian::Little
        .u32(bytes, 0)
        .ok_or_else(|| invalid(0, "file is shorter than a capture file header"))?;
    match magic {
        PCAP_MAGIC_NS | PCAP_MAGIC_US => read_pcap(bytes, Endian::Little),
        m if m.swap_bytes() == PCAP_MAGIC_NS || m.swap_bytes() == PCAP_MAGIC_US => {
            read_pcap(bytes, Endian::Big)
        }
        BT_SHB => read_pcapng(bytes),
        m => Err(invalid(
            0,
            format!("unknown magic number {m:#010x}, not pcap or pcapng"),
        )),
    }
}

pub(super) fn invalid(offset: usize, why: impl Into<String>) -> Error {
    Error::InvalidCapture {
        offset,
        why: why.into(),
    }
}

/// Byte order of the file being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

impl Endian {
    fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
        b.get(at..at.checked_add(N)?)?.try_into().ok()
    }

    pub(super) fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let a = Self::array(b, at)?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        })
    }

    pub(super) fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let a = Self::array(b, at)?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        })
    }

    pub(super) fn i64(self, b: &[u8], at: usize) -> Option<i64> {
        let a = Self::array(b, at)?;
        Some(match self {
            Endian::Little => i64::from_le_bytes(a),
            Endian::Big => i64::from_be_bytes(a),
        })
    }
}

fn read_pcap(bytes: &[u8], e: Endian) -> Result<(Format, Vec<Record>)> {
    const HEADER: usize = 24;
    if bytes.len() < HEADER {
        return Err(invalid(0, "truncated pcap file header"));
    }
    let magic = e.u32(bytes, 0).unwrap_or_default();
    let major = e.u16(bytes, 4).unwrap_or_default();
    if major != 2 {
        return Err(invalid(
            4,
            format!("unsupported pcap version {major}, expected 2"),
        ));
    }
    let frac_ns: u64 = if magic == PCAP_MAGIC_NS { 1 } else { 1_000 };
    let mut records = Vec::new();
    let mut pos = HEADER;
    while pos < bytes.len() {
        let (Some(sec), Some(frac), Some(caplen), Some(orig_len)) = (
            e.u32(bytes, pos),
            e.u32(bytes, pos + 4),
            e.u32(bytes, pos + 8),
            e.u32(bytes, pos + 12),
        ) else {
            return Err(invalid(pos, "truncated pcap record header"));
        };
        let start = pos + PCAP_RECORD_HEADER;
        let data = start
            .checked_add(caplen as usize)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| {
                invalid(
                    pos,
                    format!("pcap record claims {caplen} bytes, file ends first"),
                )
            })?;
        // u32::MAX * 1e9 + u32::MAX * 1e3 < u64::MAX: no overflow.
        let ts_ns = u64::from(sec) * NS_PER_S + u64::from(frac) * frac_ns;
        records.push(Record {
            ts_ns,
            orig_len,
            data: data.to_vec(),
            ifindex_or_idb: 0,
        });
        pos = start + data.len();
    }
    Ok((Format::Pcap, records))
}

/// Timestamp settings of one pcapng interface.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interface {
    /// `if_tsresol`: bit 7 clear: units of 10^-n s; set: units of 2^-n s. Default 6 (µs).
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    tsoffset: i64,
}

fn read_pcapng(bytes: &[u8]) -> Result<(Format, Vec<Record>)> {
    let mut records = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut endian: Option<Endian> = None;
    let mut pos = 0;
    while pos < bytes.len() {
        if bytes.len() - pos < BLOCK_OVERHEAD {
            return Err(invalid(pos, "truncated pcapng block header"));
        }
        // The SHB type reads the same in both byte orders; its byte-order magic sets the order.
        if Endian::Little.u32(bytes, pos) == Some(BT_SHB) {
            endian = Some(section_byte_order(bytes, pos)?);
            interfaces.clear();
        }
        let Some(e) = endian else {
            return Err(invalid(
                0,
                "pcapng file does not start with a section header block",
            ));
        };
        let (btype, body, end) = block(bytes, pos, e)?;
        match btype {
            BT_SHB => check_section_header(body, e, pos)?,
            BT_IDB => {
                if body.len() < 8 {
                    return Err(invalid(pos, "truncated interface description block"));
                }
                interfaces.push(read_idb_options(&body[8..], e, pos)?);
            }
            BT_EPB => records.push(read_epb(body, e, pos, &interfaces)?),
            BT_SPB => records.push(read_spb(body, e, pos, &interfaces)?),
            _ => {} // name resolution, statistics, custom blocks...
        }
        pos = end;
    }
    Ok((Format::Pcapng, records))
}

/// The byte order of the section whose header block starts at `pos`, from its byte-order magic.
fn section_byte_order(bytes: &[u8], pos: usize) -> Result<Endian> {
    match Endian::Little.u32(bytes, pos + 8) {
        Some(BYTE_ORDER_MAGIC) => Ok(Endian::Little),
        Some(m) if m.swap_bytes() == BYTE_ORDER_MAGIC => Ok(Endian::Big),
        _ => Err(invalid(
            pos,
            "section header block has a bad byte-order magic",
        )),
    }
}

/// The block at `pos` (at least [`BLOCK_OVERHEAD`] bytes are there): its type, its body
/// between the leading and trailing lengths, and where the next block starts.
fn block(bytes: &[u8], pos: usize, e: Endian) -> Result<(u32, &[u8], usize)> {
    let btype = e.u32(bytes, pos).unwrap_or_default();
    let blen = e.u32(bytes, pos + 4).unwrap_or_default() as usize;
    if blen < BLOCK_OVERHEAD || blen & 3 != 0 {
        return Err(invalid(
            pos,
            format!("pcapng block length {blen} is not a multiple of 4 of at least 12"),
        ));
    }
    let end = pos
        .checked_add(blen)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            invalid(
                pos,
                format!("pcapng block of {blen} bytes, file ends first"),
            )
        })?;
    if e.u32(bytes, end - 4) != Some(blen as u32) {
        return Err(invalid(
            pos,
            "pcapng block's trailing length differs from its leading length",
        ));
    }
    Ok((btype, &bytes[pos + 8..end - 4], end))
}

/// Checks the body of a section header block (at `pos`): version 1.
pub(super) fn check_section_header(body: &[u8], e: Endian, pos: usize) -> Result<()> {
    if body.len() < 16 {
        return Err(invalid(pos, "truncated section header block"));
    }
    let major = e.u16(body, 4).unwrap_or_default();
    if major != 1 {
        return Err(invalid(
            pos,
            format!("unsupported pcapng version {major}, expected 1"),
        ));
    }
    Ok(())
}

/// The record in the body of an enhanced packet block (at `pos`).
fn read_epb(body: &[u8], e: Endian, pos: usize, interfaces: &[Interface]) -> Result<Record> {
    let (Some(id), Some(hi), Some(lo), Some(caplen), Some(orig_len)) = (
        e.u32(body, 0),
        e.u32(body, 4),
        e.u32(body, 8),
        e.u32(body, 12),
        e.u32(body, 16),
    ) else {
        return Err(invalid(pos, "truncated enhanced packet block"));
    };
    let iface = interfaces.get(id as usize).ok_or_else(|| {
        invalid(
            pos,
            format!("packet on interface {id}, which was not described"),
        )
    })?;
    let data = body
        .get(20..20usize.saturating_add(caplen as usize))
        .ok_or_else(|| {
            invalid(
                pos,
                format!("packet block claims {caplen} bytes, block ends first"),
            )
        })?;
    let ts = (u64::from(hi) << 32) | u64::from(lo);
    Ok(Record {
        ts_ns: to_ns(ts, *iface),
        orig_len,
        data: data.to_vec(),
        ifindex_or_idb: id,
    })
}

/// The record in the body of a simple packet block (at `pos`): no timestamp, interface 0.
fn read_spb(body: &[u8], e: Endian, pos: usize, interfaces: &[Interface]) -> Result<Record> {
    let orig_len = e
        .u32(body, 0)
        .ok_or_else(|| invalid(pos, "truncated simple packet block"))?;
    if interfaces.is_empty() {
        return Err(invalid(
            pos,
            "simple packet block before any interface description",
        ));
    }
    let data = &body[4..];
    let data = &data[..data.len().min(orig_len as usize)];
    Ok(Record {
        ts_ns: 0,
        orig_len,
        data: data.to_vec(),
        ifindex_or_idb: 0,
    })
}

/// Read the options of an interface description block that matter for timestamps.
pub(super) fn read_idb_options(mut opts: &[u8], e: Endian, pos: usize) -> Result<Interface> {
    let mut iface = Interface {
        tsresol: 6,
        tsoffset: 0,
    };
    while let (Some(code), Some(len)) = (e.u16(opts, 0), e.u16(opts, 2)) {
        if code == OPT_ENDOFOPT {
            break;
        }
        let len = usize::from(len);
        let value = opts
            .get(4..4 + len)
            .ok_or_else(|| invalid(pos, format!("interface option {code} runs past its block")))?;
        match code {
            OPT_IF_TSRESOL if len >= 1 => iface.tsresol = value[0],
            OPT_IF_TSOFFSET if len >= 8 => iface.tsoffset = e.i64(value, 0).unwrap_or_default(),
            _ => {}
        }
        opts = opts.get(option_len(len)..).unwrap_or_default();
    }
    Ok(iface)
}

/// Convert a pcapng timestamp in the interface's units to nanoseconds since the epoch,
/// saturating at the ends of `u64`.
pub(super) fn to_ns(ts: u64, iface: Interface) -> u64 {
    let ts = u128::from(ts);
    let exp = u32::from(iface.tsresol & 0x7f);
    let ns = if iface.tsresol & 0x80 != 0 {
        // Units of 2^-exp s; ts * 1e9 < 2^94 and exp < 128, so neither step overflows.
        (ts * u128::from(NS_PER_S)) >> exp
    } else if exp <= 9 {
        ts * 10u128.pow(9 - exp)
    } else {
        // Finer than ns. 10^39 overflows u128, but then the quotient is 0 anyway.
        10u128.checked_pow(exp - 9).map_or(0, |div| ts / div)
    };
    let ns = i128::try_from(ns).unwrap_or(i128::MAX);
    let ns = ns.saturating_add(i128::from(iface.tsoffset) * i128::from(NS_PER_S));
    u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::pcap::encode::{pad4, put_u32};
    use crate::pcap::fixtures::{blocks, encode, packet, TS, UDP_FRAME};
    use crate::pcap::{Encoder, EPB_FIXED};

    #[test]
    fn round_trip_both_formats() {
        let snaplen = 1000;
        let mut packets: Vec<(u64, u32, Vec<u8>, u32)> = (0..50)
            .map(|i| {
                let (ts, orig, data) = packet(i);
                (ts, orig, data, [7, 9, 7, 3][i as usize % 4])
            })
            .collect();
        packets.push((0, 0, Vec::new(), 7)); // empty packet at the epoch
        packets.push((
            u64::from(u32::MAX) * NS_PER_S + 999_999_999,
            5,
            vec![1, 2, 3],
            7,
        ));
        for format in [Format::Pcap, Format::Pcapng] {
            let bytes = encode(format, snaplen, &packets);
            let snap_at = if format == Format::Pcap {
                16
            } else {
                blocks(&bytes)[0].1.len() + 12 + 12
            };
            assert_eq!(
                bytes[snap_at..snap_at + 4],
                snaplen.to_le_bytes(),
                "{format:?} snaplen"
            );
            let (got_format, recs) = read_records(&bytes).unwrap();
            assert_eq!(got_format, format);
            assert_eq!(recs.len(), packets.len());
            for (rec, (ts, orig, data, ifindex)) in recs.iter().zip(&packets) {
                assert_eq!(rec.ts_ns, *ts, "{format:?}");
                assert_eq!(
                    rec.orig_len,
                    (*orig).max(data.len().min(snaplen as usize) as u32)
                );
                assert_eq!(rec.data, data[..data.len().min(snaplen as usize)]);
                let want_if = match (format, ifindex) {
                    (Format::Pcap, _) => 0,
                    (Format::Pcapng, 7) => 0,
                    (Format::Pcapng, 9) => 1,
                    (Format::Pcapng, _) => 2,
                };
                assert_eq!(rec.ifindex_or_idb, want_if);
            }
        }
    }

    #[test]
    fn reads_microsecond_and_big_endian_pcap() {
        let mut be = Vec::new();
        be.extend_from_slice(&PCAP_MAGIC_US.to_be_bytes());
        be.extend_from_slice(&[
            0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1,
        ]);
        be.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 9, 0xaa, 0xbb]);
        let (format, recs) = read_records(&be).unwrap();
        assert_eq!(format, Format::Pcap);
        assert_eq!(
            recs,
            [Record {
                ts_ns: 10 * NS_PER_S + 20_000,
                orig_len: 9,
                data: vec![0xaa, 0xbb],
                ifindex_or_idb: 0
            }]
        );
    }

    /// A pcapng file built by hand: an IDB with the given options, one EPB with timestamp `ts`.
    fn pcapng_with_idb_options(options: &[u8], ts: u64) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new(Format::Pcapng, 0).header(&mut out);
        let idb_len = (20 + options.len()) as u32;
        put_u32(&mut out, BT_IDB);
        put_u32(&mut out, idb_len);
        out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 4, 0]);
        out.extend_from_slice(options);
        put_u32(&mut out, idb_len);
        // An unknown block (name resolution) to skip.
        out.extend_from_slice(&[4, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0]);
        put_u32(&mut out, BT_EPB);
        put_u32(&mut out, 36);
        put_u32(&mut out, 0);
        put_u32(&mut out, (ts >> 32) as u32);
        put_u32(&mut out, ts as u32);
        out.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 0x55, 0, 0, 0]);
        put_u32(&mut out, 36);
        out
    }

    #[test]
    fn pcapng_honors_tsresol_and_tsoffset() {
        // No if_tsresol: microseconds.
        let (_, recs) = read_records(&pcapng_with_idb_options(&[], 1_500_000)).unwrap();
        assert_eq!(recs[0].ts_ns, 1_500_000_000);
        assert_eq!(recs[0].data, [0x55]);
        // 2^-10 s units, plus if_tsoffset 100 s.
        let mut opts = vec![9, 0, 1, 0, 0x8a, 0, 0, 0, 14, 0, 8, 0];
        opts.extend_from_slice(&100i64.to_le_bytes());
        opts.extend_from_slice(&[0, 0, 0, 0]);
        let (_, recs) = read_records(&pcapng_with_idb_options(&opts, 1024 * 3 + 512)).unwrap();
        assert_eq!(recs[0].ts_ns, 103_500_000_000);
        // Picoseconds.
        let (_, recs) = read_records(&pcapng_with_idb_options(
            &[9, 0, 1, 0, 12, 0, 0, 0],
            5_000_000,
        ))
        .unwrap();
        assert_eq!(recs[0].ts_ns, 5_000);
        // Absurd resolutions saturate instead of overflowing.
        let (_, recs) = read_records(&pcapng_with_idb_options(
            &[9, 0, 1, 0, 127, 0, 0, 0],
            u64::MAX,
        ))
        .unwrap();
        assert_eq!(recs[0].ts_ns, 0);
        let (_, recs) = read_records(&pcapng_with_idb_options(
            &[9, 0, 1, 0, 0, 0, 0, 0],
            u64::MAX,
        ))
        .unwrap();
        assert_eq!(recs[0].ts_ns, u64::MAX);
    }

    #[test]
    fn reader_rejects_malformed_input() {
        let good_pcap = encode(Format::Pcap, 0, &[(TS, 46, UDP_FRAME.to_vec(), 1)]);
        let good_ng = encode(Format::Pcapng, 0, &[(TS, 46, UDP_FRAME.to_vec(), 1)]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("bad magic", vec![0x7f, b'E', b'L', b'F', 0, 0, 0, 0]),
            ("short pcap header", good_pcap[..20].to_vec()),
            (
                "truncated pcap record",
                good_pcap[..good_pcap.len() - 1].to_vec(),
            ),
            ("truncated pcap record header", good_pcap[..24 + 8].to_vec()),
            ("truncated pcapng", good_ng[..good_ng.len() - 4].to_vec()),
            (
                "pcapng without SHB",
                good_ng[blocks(&good_ng)[0].1.len() + 12..].to_vec(),
            ),
        ];
        for (name, bytes) in cases {
            let err = read_records(&bytes).expect_err(name);
            assert!(matches!(err, Error::InvalidCapture { .. }), "{name}: {err}");
        }
        // Block length not a multiple of 4.
        let mut bad = good_ng.clone();
        bad[4] += 1;
        assert!(read_records(&bad).is_err());
        // EPB on an undeclared interface.
        let mut bad = good_ng.clone();
        let epb = bad.len() - (EPB_FIXED + UDP_FRAME.len() + pad4(UDP_FRAME.len()));
        bad[epb + 8] = 2; // ids 0 (ifindex 7, registered) and 1 (ifindex 1) exist
        let err = read_records(&bad).unwrap_err().to_string();
        assert!(err.contains("interface 2"), "{err}");
        // Wrong pcap version.
        let mut bad = good_pcap;
        bad[4] = 3;
        assert!(read_records(&bad)
            .unwrap_err()
            .to_string()
            .contains("version 3"));
    }

    /// xorshift64: deterministic noise without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn reader_never_panics() {
        let packets: Vec<_> = (0..6)
            .map(|i| {
                let (t, o, d) = packet(i);
                (t, o, d[..d.len().min(40)].to_vec(), i % 2)
            })
            .collect();
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        for format in [Format::Pcap, Format::Pcapng] {
            let good = encode(format, 0, &packets);
            for cut in 0..good.len() {
                let _ = read_records(&good[..cut]);
            }
            for _ in 0..20_000 {
                let mut bytes = good.clone();
                for _ in 0..1 + xorshift(&mut rng) % 4 {
                    let at = (xorshift(&mut rng) % bytes.len() as u64) as usize;
                    bytes[at] = xorshift(&mut rng) as u8;
                }
                if xorshift(&mut rng) & 3 == 0 {
                    bytes.truncate((xorshift(&mut rng) % bytes.len() as u64) as usize);
                }
                let _ = read_records(&bytes);
            }
        }
    }
}
