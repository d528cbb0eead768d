//! [`Reader`]: a pcap or pcapng file read record by record from any [`Read`] (a file, a pipe,
//! standard input), into one reused buffer.

use std::fmt;
use std::io::{self, Read};

use super::read::{check_section_header, invalid, read_idb_options, to_ns, Endian, Interface};
use super::{
    Format, BLOCK_OVERHEAD, BT_EPB, BT_IDB, BT_SHB, BT_SPB, BYTE_ORDER_MAGIC, NS_PER_S,
    OPT_ENDOFOPT, OPT_IF_NAME, PCAP_MAGIC_NS, PCAP_MAGIC_US, PCAP_RECORD_HEADER,
};
use crate::{Error, Result};

/// Largest record or block accepted, so that a corrupt length cannot make the reader allocate
/// gigabytes (libpcap refuses blocks above 16 MiB).
const MAX_BLOCK: usize = 64 << 20;

/// One interface of a capture file: from the pcap header, or a pcapng interface description
/// block.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfaceInfo {
    /// The link type (`LINKTYPE_*`, 1 for Ethernet).
    pub linktype: u16,
    /// The snapshot length recorded for it.
    pub snaplen: u32,
    /// `if_name`, where the file has one.
    pub name: Option<String>,
}

/// One packet lent by [`Reader::next_packet`], valid until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PacketRef<'a> {
    /// Nanoseconds since the UNIX epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The interface, an index into [`Reader::interfaces`] (counted over all pcapng sections;
    /// always 0 for pcap).
    pub interface: u32,
    /// That interface's description (link type, name).
    pub info: &'a InterfaceInfo,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Pcap { e: Endian, frac_ns: u64 },
    Pcapng { e: Endian },
}

/// Reads a pcap (micro- or nanosecond, either byte order) or pcapng (either byte order, any
/// `if_tsresol`/`if_tsoffset`, several sections) capture from a stream, one packet at a time.
///
/// Memory: one buffer, as large as the largest record, reused; nothing is allocated per
/// packet. Blocks other than section headers, interface descriptions and packets
/// (statistics, name resolution, custom blocks) are skipped. Never panics: malformed input
/// is an [`Error::InvalidCapture`] with the byte offset, a file that ends inside a record is
/// one too ("file ends inside ...").
///
/// ```
/// use fastpath::pcap::{Encoder, Format, Reader};
/// let mut bytes = Vec::new();
/// let mut enc = Encoder::new(Format::Pcapng, 0);
/// enc.header(&mut bytes);
/// enc.packet(&mut bytes, 1_000, 60, &[0xaa; 60], 7);
/// let mut r = Reader::new(&bytes[..])?;
/// let pkt = r.next_packet()?.expect("one packet");
/// assert_eq!((pkt.ts_ns, pkt.data.len(), pkt.interface), (1_000, 60, 0));
/// assert!(r.next_packet()?.is_none());
/// # Ok::<(), fastpath::Error>(())
/// ```
pub struct Reader<R> {
    src: R,
    buf: Vec<u8>,
    /// Offset in the stream of the next byte to read.
    offset: u64,
    kind: Kind,
    interfaces: Vec<InterfaceInfo>,
    /// Timestamp settings, parallel to `interfaces`.
    ts: Vec<Interface>,
    /// Index in `interfaces` of the current pcapng section's interface 0.
    section_base: usize,
}

impl<R> fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("offset", &self.offset)
            .field("kind", &self.kind)
            .field("interfaces", &self.interfaces)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Reader<R> {
    /// Reads the file header (pcap) or first section header block (pcapng).
    ///
    /// # Errors
    /// [`Error::InvalidCapture`] for anything that is not a capture file;
    /// [`Error::Syscall`] if reading fails.
    pub fn new(src: R) -> Result<Reader<R>> {
        let mut r = Reader {
            src,
            buf: Vec::with_capacity(64 << 10),
            offset: 0,
            kind: Kind::Pcap {
                e: Endian::Little,
                frac_ns: 1,
            },
            interfaces: Vec::new(),
            ts: Vec::new(),
            section_base: 0,
        };
        let mut magic = [0u8; 4];
        if !r.fill_exact(&mut magic, "file header")? {
            return Err(invalid(0, "empty input: not a pcap or pcapng file"));
        }
        let m = u32::from_le_bytes(magic);
        match m {
            PCAP_MAGIC_NS | PCAP_MAGIC_US => r.pcap_header(Endian::Little, m)?,
            _ if m.swap_bytes() == PCAP_MAGIC_NS || m.swap_bytes() == PCAP_MAGIC_US => {
                r.pcap_header(Endian::Big, m.swap_bytes())?
            }
            BT_SHB => r.section_header()?,
            _ => {
                return Err(invalid(
                    0,
                    format!("unknown magic number {m:#010x}, not pcap or pcapng"),
                ))
            }
        }
        Ok(r)
    }

    /// The format of the file.
    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Pcap { .. } => Format::Pcap,
            Kind::Pcapng { .. } => Format::Pcapng,
        }
    }

    /// The interfaces described so far (pcapng describes them as it goes: look again after a
    /// packet names a new one).
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        &self.interfaces
    }

    /// The next packet, `None` at the end of the input.
    ///
    /// # Errors
    /// [`Error::InvalidCapture`] for a malformed or truncated record or block;
    /// [`Error::Syscall`] if reading fails.
    pub fn next_packet(&mut self) -> Result<Option<PacketRef<'_>>> {
        match self.kind {
            Kind::Pcap { e, frac_ns } => self.next_pcap(e, frac_ns),
            Kind::Pcapng { .. } => self.next_pcapng(),
        }
    }

    /// Reads exactly `out.len()` bytes. `Ok(false)` if the input ended before the first byte;
    /// an error if it ended after it.
    fn fill_exact(&mut self, out: &mut [u8], what: &str) -> Result<bool> {
        let mut got = 0;
        while got < out.len() {
            match self.src.read(&mut out[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(invalid(
                        self.offset as usize,
                        format!("file ends inside {what} ({got} of {} bytes)", out.len()),
                    ))
                }
                Ok(n) => {
                    got += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Syscall {
                        call: "read(capture file)",
                        source,
                    })
                }
            }
        }
        Ok(true)
    }

    /// Reads `len` bytes into `self.buf` (replacing it).
    fn fill_buf(&mut self, len: usize, what: &str) -> Result<()> {
        self.buf.resize(len, 0);
        let mut buf = std::mem::take(&mut self.buf);
        let res = self.fill_exact(&mut buf, what);
        self.buf = buf;
        match res? {
            true => Ok(()),
            false if len == 0 => Ok(()),
            false => Err(invalid(
                self.offset as usize,
                format!("file ends before {what}"),
            )),
        }
    }

    fn pcap_header(&mut self, e: Endian, magic: u32) -> Result<()> {
        let mut rest = [0u8; 20];
        if !self.fill_exact(&mut rest, "the pcap file header")? {
            return Err(invalid(0, "truncated pcap file header"));
        }
        let major = e.u16(&rest, 0).unwrap_or_default();
        if major != 2 {
            return Err(invalid(
                4,
                format!("unsupported pcap version {major}, expected 2"),
            ));
        }
        let snaplen = e.u32(&rest, 12).unwrap_or_default();
        // The low 16 bits are the link type; the upper ones FCS flags we do not use.
        let linktype = e.u32(&rest, 16).unwrap_or_default() as u16;
        self.kind = Kind::Pcap {
            e,
            frac_ns: if magic == PCAP_MAGIC_NS { 1 } else { 1_000 },
        };
        self.interfaces.push(InterfaceInfo {
            linktype,
            snaplen,
            name: None,
        });
        Ok(())
    }

    fn next_pcap(&mut self, e: Endian, frac_ns: u64) -> Result<Option<PacketRef<'_>>> {
        let at = self.offset as usize;
        let mut hdr = [0u8; PCAP_RECORD_HEADER];
        if !self.fill_exact(&mut hdr, "a pcap record header")? {
            return Ok(None);
        }
        let sec = e.u32(&hdr, 0).unwrap_or_default();
        let frac = e.u32(&hdr, 4).unwrap_or_default();
        let caplen = e.u32(&hdr, 8).unwrap_or_default() as usize;
        let orig_len = e.u32(&hdr, 12).unwrap_or_default();
        if caplen > MAX_BLOCK {
            return Err(invalid(
                at,
                format!("pcap record claims {caplen} bytes, more than any capture holds"),
            ));
        }
        self.fill_buf(caplen, "the end of a pcap record")?;
        // u32::MAX * 1e9 + u32::MAX * 1e3 < u64::MAX: no overflow.
        Ok(Some(PacketRef {
            ts_ns: u64::from(sec) * NS_PER_S + u64::from(frac) * frac_ns,
            orig_len,
            data: &self.buf,
            interface: 0,
            info: &self.interfaces[0],
        }))
    }

    /// After the 4 bytes of an SHB's type: its length and byte-order magic, then the body.
    fn section_header(&mut self) -> Result<()> {
        let at = self.offset as usize - 4;
        let mut head = [0u8; 8];
        if !self.fill_exact(&mut head, "a section header block")? {
            return Err(invalid(at, "truncated section header block"));
        }
        let e = match Endian::Little.u32(&head, 4) {
            Some(BYTE_ORDER_MAGIC) => Endian::Little,
            Some(m) if m.swap_bytes() == BYTE_ORDER_MAGIC => Endian::Big,
            _ => {
                return Err(invalid(
                    at,
                    "section header block has a bad byte-order magic",
                ))
            }
        };
        let len = e.u32(&head, 0).unwrap_or_default() as usize;
        self.check_block_len(at, len, 28)?;
        // The body after the byte-order magic, and the trailing length.
        self.fill_buf(len - 12, "the end of a section header block")?;
        let mut body = Vec::with_capacity(len);
        body.extend_from_slice(&head[4..]);
        body.extend_from_slice(&self.buf[..len - 16]);
        check_section_header(&body, e, at)?;
        self.check_trailer(at, len, e)?;
        self.kind = Kind::Pcapng { e };
        self.section_base = self.interfaces.len();
        Ok(())
    }

    fn check_block_len(&self, at: usize, len: usize, min: usize) -> Result<()> {
        if len < min.max(BLOCK_OVERHEAD) || len % 4 != 0 || len > MAX_BLOCK {
            return Err(invalid(
                at,
                format!("pcapng block length {len} is not a multiple of 4 between {min} and {MAX_BLOCK}"),
            ));
        }
        Ok(())
    }

    /// `self.buf` ends with the block's trailing length, which must equal `len`.
    fn check_trailer(&self, at: usize, len: usize, e: Endian) -> Result<()> {
        if e.u32(&self.buf, self.buf.len() - 4) != Some(len as u32) {
            return Err(invalid(
                at,
                "pcapng block's trailing length differs from its leading length",
            ));
        }
        Ok(())
    }

    fn next_pcapng(&mut self) -> Result<Option<PacketRef<'_>>> {
        loop {
            let at = self.offset as usize;
            let mut btype = [0u8; 4];
            if !self.fill_exact(&mut btype, "a pcapng block header")? {
                return Ok(None);
            }
            if u32::from_le_bytes(btype) == BT_SHB {
                self.section_header()?;
                continue;
            }
            let Kind::Pcapng { e } = self.kind else {
                unreachable!("next_pcapng runs on pcapng input only");
            };
            let btype = e.u32(&btype, 0).unwrap_or_default();
            let mut lenb = [0u8; 4];
            if !self.fill_exact(&mut lenb, "a pcapng block header")? {
                return Err(invalid(at, "truncated pcapng block header"));
            }
            let len = e.u32(&lenb, 0).unwrap_or_default() as usize;
            self.check_block_len(at, len, BLOCK_OVERHEAD)?;
            // Body and trailing length.
            self.fill_buf(len - 8, "the end of a pcapng block")?;
            self.check_trailer(at, len, e)?;
            let body_len = len - BLOCK_OVERHEAD;
            match btype {
                BT_IDB => self.interface_block(at, body_len, e)?,
                BT_EPB => return self.enhanced_packet(at, body_len, e).map(Some),
                BT_SPB => return self.simple_packet(at, body_len, e).map(Some),
                _ => {}
            }
        }
    }

    fn interface_block(&mut self, at: usize, body_len: usize, e: Endian) -> Result<()> {
        let body = &self.buf[..body_len];
        if body.len() < 8 {
            return Err(invalid(at, "truncated interface description block"));
        }
        let linktype = e.u16(body, 0).unwrap_or_default();
        let snaplen = e.u32(body, 4).unwrap_or_default();
        let ts = read_idb_options(&body[8..], e, at)?;
        let name = if_name(&body[8..], e);
        self.interfaces.push(InterfaceInfo {
            linktype,
            snaplen,
            name,
        });
        self.ts.push(ts);
        Ok(())
    }

    /// The global index of section interface `id`, or an error naming it.
    fn interface(&self, at: usize, id: u32) -> Result<usize> {
        let idx = self.section_base + id as usize;
        if idx >= self.interfaces.len() {
            return Err(invalid(
                at,
                format!("packet on interface {id}, which was not described"),
            ));
        }
        Ok(idx)
    }

    fn enhanced_packet(&mut self, at: usize, body_len: usize, e: Endian) -> Result<PacketRef<'_>> {
        let body = &self.buf[..body_len];
        let (Some(id), Some(hi), Some(lo), Some(caplen), Some(orig_len)) = (
            e.u32(body, 0),
            e.u32(body, 4),
            e.u32(body, 8),
            e.u32(body, 12),
            e.u32(body, 16),
        ) else {
            return Err(invalid(at, "truncated enhanced packet block"));
        };
        let idx = self.interface(at, id)?;
        let data = body
            .get(20..20usize.saturating_add(caplen as usize))
            .ok_or_else(|| {
                invalid(
                    at,
                    format!("packet block claims {caplen} bytes, block ends first"),
                )
            })?;
        let ts = (u64::from(hi) << 32) | u64::from(lo);
        Ok(PacketRef {
            ts_ns: to_ns(ts, self.ts[idx]),
            orig_len,
            data,
            interface: idx as u32,
            info: &self.interfaces[idx],
        })
    }

    fn simple_packet(&mut self, at: usize, body_len: usize, e: Endian) -> Result<PacketRef<'_>> {
        let body = &self.buf[..body_len];
        let orig_len = e
            .u32(body, 0)
            .ok_or_else(|| invalid(at, "truncated simple packet block"))?;
        let idx = self
            .interface(at, 0)
            .map_err(|_| invalid(at, "simple packet block before any interface description"))?;
        let data = &body[4..];
        let snap = self.interfaces[idx].snaplen as usize;
        let keep = data
            .len()
            .min(orig_len as usize)
            .min(if snap == 0 { usize::MAX } else { snap });
        Ok(PacketRef {
            ts_ns: 0,
            orig_len,
            data: &data[..keep],
            interface: idx as u32,
            info: &self.interfaces[idx],
        })
    }
}

/// The `if_name` option of an interface block's options, if there is one (lossy UTF-8).
fn if_name(mut opts: &[u8], e: Endian) -> Option<String> {
    while let (Some(code), Some(len)) = (e.u16(opts, 0), e.u16(opts, 2)) {
        if code == OPT_ENDOFOPT {
            break;
        }
        let len = usize::from(len);
        let value = opts.get(4..4 + len)?;
        if code == OPT_IF_NAME {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            return Some(String::from_utf8_lossy(&value[..end]).into_owned());
        }
        opts = opts.get(super::encode::option_len(len)..)?;
    }
    None
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::pcap::fixtures::{encode, packet, TS, UDP_FRAME};
    use crate::pcap::{read_records, Encoder};

    /// `(ts_ns, orig_len, data, interface)` of one packet.
    type Owned = (u64, u32, Vec<u8>, u32);

    /// Everything the reader yields, as owned records.
    fn read_all(bytes: &[u8]) -> Result<Vec<Owned>> {
        let mut r = Reader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(p) = r.next_packet()? {
            out.push((p.ts_ns, p.orig_len, p.data.to_vec(), p.interface));
        }
        Ok(out)
    }

    /// A reader that hands out one byte per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || out.is_empty() {
                return Ok(0);
            }
            out[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn agrees_with_read_records_on_both_formats() {
        let packets: Vec<_> = (0..40)
            .map(|i| {
                let (ts, orig, data) = packet(i);
                (ts, orig, data, [7, 9, 3][i as usize % 3])
            })
            .collect();
        for format in [Format::Pcap, Format::Pcapng] {
            let bytes = encode(format, 500, &packets);
            let (_, want) = read_records(&bytes).unwrap();
            let got = read_all(&bytes).unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(
                    (g.0, g.1, &g.2, g.3),
                    (w.ts_ns, w.orig_len, &w.data, w.ifindex_or_idb)
                );
            }
            let mut r = Reader::new(Trickle(&bytes)).unwrap();
            let mut n = 0;
            while r.next_packet().unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, packets.len());
            if format == Format::Pcapng {
                assert_eq!(r.interfaces().len(), 3);
                assert_eq!(r.interfaces()[0].name.as_deref(), Some("eth0"));
                assert_eq!(r.interfaces()[0].linktype, 1);
            }
        }
    }

    #[test]
    fn big_endian_pcapng_and_several_sections() {
        // A big-endian section by hand: SHB, IDB (ns resolution), one EPB.
        let mut be = Vec::new();
        let w32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
        w32(&mut be, BT_SHB);
        w32(&mut be, 28);
        w32(&mut be, BYTE_ORDER_MAGIC);
        be.extend_from_slice(&[0, 1, 0, 0]);
        be.extend_from_slice(&[0xff; 8]);
        w32(&mut be, 28);
        w32(&mut be, BT_IDB);
        w32(&mut be, 28);
        be.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0xff, 0xff]); // ethernet, snaplen 65535
        be.extend_from_slice(&[0, 9, 0, 1, 9, 0, 0, 0]); // if_tsresol 9
        w32(&mut be, 28);
        w32(&mut be, BT_EPB);
        w32(&mut be, 36);
        w32(&mut be, 0);
        w32(&mut be, (TS >> 32) as u32);
        w32(&mut be, TS as u32);
        w32(&mut be, 2);
        w32(&mut be, 60);
        be.extend_from_slice(&[0xab, 0xcd, 0, 0]);
        w32(&mut be, 36);
        // Followed by a little-endian section of ours: interfaces count on.
        let le = encode(Format::Pcapng, 0, &[(TS + 5, 46, UDP_FRAME.to_vec(), 7)]);
        let mut both = be.clone();
        both.extend_from_slice(&le);
        let got = read_all(&both).unwrap();
        assert_eq!(got[0], (TS, 60, vec![0xab, 0xcd], 0));
        assert_eq!(got[1], (TS + 5, 46, UDP_FRAME.to_vec(), 1));
    }

    #[test]
    fn truncation_and_garbage_are_errors_never_panics() {
        let bytes = encode(Format::Pcapng, 0, &[(TS, 46, UDP_FRAME.to_vec(), 7)]);
        for cut in 1..bytes.len() {
            let res = read_all(&bytes[..cut]);
            // A cut exactly between blocks is a shorter valid file.
            if let Err(e) = res {
                assert!(matches!(e, Error::InvalidCapture { .. }), "{e}");
            }
        }
        let err = read_all(&bytes[..bytes.len() - 3]).unwrap_err().to_string();
        assert!(err.contains("file ends"), "{err}");
        assert!(Reader::new(&b""[..])
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(Reader::new(&b"\x7fELF...."[..]).is_err());
        let mut rng = 0x1234_5678_9abc_def0u64;
        for _ in 0..5_000 {
            let mut b = bytes.clone();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = (rng % b.len() as u64) as usize;
            b[at] = (rng >> 32) as u8;
            let _ = read_all(&b);
        }
        // An absurd record length does not allocate it.
        let mut pcap = Vec::new();
        let mut enc = Encoder::new(Format::Pcap, 0);
        enc.header(&mut pcap);
        pcap.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        assert!(read_all(&pcap)
            .unwrap_err()
            .to_string()
            .contains("more than"));
    }
}
