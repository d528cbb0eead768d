//! Capture files: a sans-IO pcap/pcapng [`Encoder`], a [`PcapWriter`] sink, and a small reader.
//!
//! - [`Encoder`] turns packets into bytes appended to a `Vec<u8>` the caller owns. It does no I/O
//!   and, once an interface has been seen, no allocation: the caller's `Vec` is reused.
//! - [`PcapWriter`] buffers encoded records and writes them in large chunks to a file or a stream
//!   (standard output for `-w -`). **It never leaves an invalid file behind**: after every
//!   successful flush it remembers the file length, and when a write fails (disk full, I/O error)
//!   it cuts a regular file back to that length with `ftruncate(2)`, so the file ends on a
//!   complete record, then refuses further writes. A stream cannot be cut back; a broken pipe is
//!   reported so that [`Error::is_broken_pipe`] recognises it.
//! - [`read_records`] parses what we write, and more (microsecond pcap, either byte order,
//!   pcapng with any `if_tsresol`). It is meant for tests and fuzzing: on any input it returns a
//!   value or an [`Error::InvalidCapture`], it never panics.
//!
//! What we write:
//! - [`Format::Pcap`]: classic pcap, little-endian, magic `0xa1b23c4d` (nanosecond timestamps),
//!   version 2.4, `LINKTYPE_ETHERNET`. Seconds are stored in 32 bits, as the format demands, so
//!   timestamps wrap in 2106.
//! - [`Format::Pcapng`]: little-endian section header block (with `shb_userappl`), one interface
//!   description block per interface on first use (`LINKTYPE_ETHERNET`, snaplen, `if_name` when
//!   known, `if_tsresol` = 9, i.e. nanoseconds), and enhanced packet blocks.
//!
//! Captured data longer than the snaplen is cut to the snaplen; the original length is kept.
//!
//! # References
//! - pcap: <https://www.tcpdump.org/manpages/pcap-savefile.5.html>
//! - pcapng: <https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html>
//! - link types: <https://www.tcpdump.org/linktypes.html>

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::Path;

use crate::{Error, Result, MAX_SNAPLEN};

/// Classic pcap magic with nanosecond timestamps, as written in the file's byte order.
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Classic pcap magic with microsecond timestamps.
const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`: frames start with an Ethernet II header.
const LINKTYPE_ETHERNET: u16 = 1;
/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// pcapng block types.
const BT_SHB: u32 = 0x0a0d_0d0a;
const BT_IDB: u32 = 0x0000_0001;
const BT_SPB: u32 = 0x0000_0003;
const BT_EPB: u32 = 0x0000_0006;
/// pcapng byte-order magic, read in the file's byte order.
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// pcapng option codes.
const OPT_ENDOFOPT: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// Written into the section header block's `shb_userappl` option.
const USERAPPL: &[u8] = b"fastpath";
/// Longest `if_name` we write; Linux names are at most 15 bytes (`IFNAMSIZ` - 1).
const MAX_IF_NAME: usize = 255;

/// pcapng block framing: type + total length in front, total length again behind.
const BLOCK_OVERHEAD: usize = 12;
/// Enhanced packet block without data or options.
const EPB_FIXED: usize = BLOCK_OVERHEAD + 20;
/// Classic pcap record header.
const PCAP_RECORD_HEADER: usize = 16;

/// [`PcapWriter`] writes its buffer out once it holds this many bytes.
pub const DEFAULT_FLUSH_BYTES: usize = 256 * 1024;

/// Capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Classic pcap, nanosecond variant (magic `0xa1b23c4d`). Read by every tool; one link type
    /// per file and no interface information.
    Pcap,
    /// pcapng, with one interface description block per interface and nanosecond timestamps.
    Pcapng,
}

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
                put_u32(out, u32::from(LINKTYPE_ETHERNET));
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
        put_u16(out, LINKTYPE_ETHERNET);
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

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Padding that brings `len` to a multiple of 4.
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Bytes taken by a pcapng option with a `len`-byte value, padding included.
fn option_len(len: usize) -> usize {
    4 + len + pad4(len)
}

/// Append a pcapng option; `value` is at most [`MAX_IF_NAME`] bytes.
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

/// What a regular file can do that a stream cannot.
struct FileOps<W> {
    /// Cut the output back to this many bytes and continue writing there.
    truncate: fn(&mut W, u64) -> io::Result<()>,
    /// Make everything written durable.
    sync: fn(&mut W) -> io::Result<()>,
}

fn truncate_file(file: &mut File, len: u64) -> io::Result<()> {
    file.set_len(len)?;
    file.seek(SeekFrom::Start(len))?;
    Ok(())
}

fn sync_file(file: &mut File) -> io::Result<()> {
    file.sync_all()
}

/// Why a [`PcapWriter`] stopped: enough to rebuild the error for later calls.
#[derive(Debug, Clone, Copy)]
struct Failure {
    os: Option<i32>,
    kind: io::ErrorKind,
}

impl Failure {
    fn io_error(self) -> io::Error {
        match self.os {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::from(self.kind),
        }
    }
}

/// Buffered capture-file sink over a [`File`] (or any [`Write`]) that never leaves a partial
/// record in a regular file.
///
/// Records are encoded into an internal buffer that is written out once it holds
/// [`DEFAULT_FLUSH_BYTES`] (see [`PcapWriter::set_flush_threshold`]), on [`PcapWriter::flush`],
/// on [`PcapWriter::finish`], and, best effort, on drop. The file header is written by the
/// first packet or flush, so interfaces registered with [`PcapWriter::add_interface`] before
/// that are described in it (see [`Encoder`]); it is written on its own, so that cutting back
/// never removes it.
///
/// If a write fails, a regular file is cut back to its length after the last successful flush,
/// so it holds exactly [`PcapWriter::packets_written`] complete packets; the error says how
/// many, and every later call returns an error too. (If not even the header could be written,
/// the file is left empty.) Records of the failing write that reached the file whole are kept; the rest are lost.
///
/// For pcapng, a file cut back before the first packet of an interface that was not registered
/// may describe no interface at all: Wireshark reads it, tcpdump refuses it. Register the
/// capture interfaces to avoid that.
pub struct PcapWriter<W: Write = File> {
    out: W,
    /// `Some` for regular files: they can be cut back and synced.
    file_ops: Option<FileOps<W>>,
    /// The path for error messages, `-` for standard output.
    path: String,
    enc: Encoder,
    buf: Vec<u8>,
    /// End offset in `buf` of each packet record encoded there (one per buffered packet), so
    /// that a write that fails part-way keeps every record that reached the file whole.
    ends: Vec<usize>,
    /// Packets complete in the output after the last successful flush.
    written: u64,
    /// Output length after the last successful flush: a record boundary.
    committed: u64,
    flush_bytes: usize,
    /// The file header has not been encoded yet.
    header_pending: bool,
    failed: Option<Failure>,
    finished: bool,
}

impl<W: Write> fmt::Debug for PcapWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("path", &self.path)
            .field("format", &self.enc.format())
            .field("regular_file", &self.file_ops.is_some())
            .field("written", &self.written)
            .field("buffered", &self.packets_buffered())
            .field("committed_bytes", &self.committed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl PcapWriter<File> {
    /// Create (or truncate) the capture file at `path`.
    ///
    /// If `path` is not a regular file (a FIFO, `/dev/stdout`), it is written as a stream:
    /// nothing can be cut back on error.
    ///
    /// # Errors
    /// [`Error::CreateOutput`] if the file cannot be opened.
    pub fn create(path: &Path, format: Format, snaplen: u32) -> Result<Self> {
        let label = path.display().to_string();
        let file = File::create(path).map_err(|source| Error::CreateOutput {
            path: label.clone(),
            source,
        })?;
        let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        let ops = regular.then_some(FileOps {
            truncate: truncate_file,
            sync: sync_file,
        });
        Ok(Self::with_ops(file, label, ops, format, snaplen))
    }

    /// Write the capture to standard output (`-w -`), as a stream.
    ///
    /// Writes go straight to a duplicate of file descriptor 1, bypassing [`std::io::Stdout`]'s
    /// buffer: do not print anything else to standard output meanwhile.
    ///
    /// # Errors
    /// [`Error::CreateOutput`] if descriptor 1 cannot be duplicated (it is closed).
    pub fn stdout(format: Format, snaplen: u32) -> Result<Self> {
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::CreateOutput {
                path: "-".to_owned(),
                source,
            })?;
        Ok(Self::with_ops(
            File::from(fd),
            "-".to_owned(),
            None,
            format,
            snaplen,
        ))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Write a capture to the stream `w`. `name` labels it in errors.
    ///
    /// A stream cannot be cut back: on error it may end in a partial record.
    pub fn new(w: W, name: &str, format: Format, snaplen: u32) -> Self {
        Self::with_ops(w, name.to_owned(), None, format, snaplen)
    }

    fn with_ops(
        out: W,
        path: String,
        file_ops: Option<FileOps<W>>,
        format: Format,
        snaplen: u32,
    ) -> Self {
        let enc = Encoder::new(format, snaplen);
        let mut w = PcapWriter {
            out,
            file_ops,
            path,
            buf: Vec::new(),
            ends: Vec::new(),
            written: 0,
            committed: 0,
            flush_bytes: DEFAULT_FLUSH_BYTES,
            header_pending: true,
            failed: None,
            finished: false,
            enc,
        };
        w.reserve_buffer();
        w
    }

    /// Room for a full buffer plus one largest record and an interface block, so that the hot
    /// path does not grow the buffer.
    fn reserve_buffer(&mut self) {
        let want = self.flush_bytes + self.enc.snaplen() as usize + 512;
        self.buf.reserve(want.saturating_sub(self.buf.len()));
        // A record is at least 16 bytes (pcap record header).
        let records = self.flush_bytes / 16 + 2;
        self.ends.reserve(records.saturating_sub(self.ends.len()));
    }

    /// Write the buffer out once it holds at least `bytes` bytes. 0 writes every packet out at
    /// once (like `tcpdump -U`); the default is [`DEFAULT_FLUSH_BYTES`].
    pub fn set_flush_threshold(&mut self, bytes: usize) {
        self.flush_bytes = bytes;
        self.reserve_buffer();
    }

    /// Register an interface name for pcapng's `if_name` option; see [`Encoder::add_interface`].
    /// Call it before the first packet so that the interface is described in the header.
    pub fn add_interface(&mut self, ifindex: u32, name: &str) {
        self.enc.add_interface(ifindex, name);
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.enc.format()
    }

    /// Encode one packet into the buffer, writing the buffer out when it is full. Arguments as
    /// for [`Encoder::packet`].
    ///
    /// # Errors
    /// [`Error::Output`] if writing the buffer out fails, or failed before.
    pub fn write_packet(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
    ) -> Result<()> {
        self.check_failed()?;
        if self.header_pending {
            // The header gets a write of its own, so that cutting back never removes it.
            self.flush()?;
        }
        self.enc
            .packet(&mut self.buf, ts_ns, orig_len, data, ifindex);
        self.ends.push(self.buf.len());
        if self.buf.len() >= self.flush_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Write the buffer out (and flush `W`).
    ///
    /// # Errors
    /// [`Error::Output`] if the write fails, or failed before. A regular file has been cut back
    /// to its last complete record.
    pub fn flush(&mut self) -> Result<()> {
        self.check_failed()?;
        if self.header_pending {
            debug_assert!(self.buf.is_empty(), "packets are encoded after the header");
            self.header_pending = false;
            self.enc.header(&mut self.buf);
        }
        // write_all, but knowing how far it got: on failure every record that reached the
        // output whole is kept (and counted), and only the partial one is cut off.
        let mut pos = 0;
        let mut res = Ok(());
        while pos < self.buf.len() {
            match self.out.write(&self.buf[pos..]) {
                Ok(0) => {
                    res = Err(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        let res = res.and_then(|()| self.out.flush());
        match res {
            Ok(()) => {
                self.committed += self.buf.len() as u64;
                self.written += self.packets_buffered();
                self.buf.clear();
                self.ends.clear();
                Ok(())
            }
            Err(source) => {
                let whole = self.ends.partition_point(|&end| end <= pos);
                if whole > 0 {
                    self.committed += self.ends[whole - 1] as u64;
                    self.written += whole as u64;
                }
                Err(self.fail(source))
            }
        }
    }

    /// Write everything out and, for a regular file, `fsync(2)` it. Returns the number of
    /// packets in the output.
    ///
    /// # Errors
    /// [`Error::Output`] if a write or the sync fails, or a write failed before.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        self.finished = true;
        if let Some(ops) = &self.file_ops {
            if let Err(source) = (ops.sync)(&mut self.out) {
                return Err(Error::Output {
                    path: self.path.clone(),
                    source,
                    kept: self.written,
                    note: "but fsync failed, so they may not all be on disk (check the disk and the file system)",
                });
            }
        }
        Ok(self.written)
    }

    /// Packets that are complete in the file or stream, as of the last successful flush.
    pub fn packets_written(&self) -> u64 {
        self.written
    }

    /// Packets encoded but not yet written out.
    pub fn packets_buffered(&self) -> u64 {
        self.ends.len() as u64
    }

    fn check_failed(&self) -> Result<()> {
        match self.failed {
            None => Ok(()),
            Some(failure) => Err(Error::Output {
                path: self.path.clone(),
                source: failure.io_error(),
                kept: self.written,
                note: "an earlier write failed; nothing more is written",
            }),
        }
    }

    /// Record the failure, cut a regular file back to the last flush, and build the error.
    fn fail(&mut self, source: io::Error) -> Error {
        self.failed = Some(Failure {
            os: source.raw_os_error(),
            kind: source.kind(),
        });
        self.buf.clear();
        self.ends.clear();
        let enospc = source.raw_os_error() == Some(libc::ENOSPC);
        let note = match &self.file_ops {
            Some(ops) => match (ops.truncate)(&mut self.out, self.committed) {
                Ok(()) if enospc => {
                    "file cut back to the last complete record (free some disk space or write elsewhere)"
                }
                Ok(()) => "file cut back to the last complete record (check the disk and the file system)",
                Err(_) => "but cutting the file back failed too: it may end in a partial record (check the disk and the file system)",
            },
            None if source.raw_os_error() == Some(libc::EPIPE) => "the reader closed the pipe",
            None if enospc => "the stream may end in a partial record (free some disk space)",
            None => "the stream may end in a partial record",
        };
        Error::Output {
            path: self.path.clone(),
            source,
            kept: self.written,
            note,
        }
    }
}

impl<W: Write> Drop for PcapWriter<W> {
    /// Writes buffered packets out, best effort; call [`PcapWriter::finish`] to see errors.
    fn drop(&mut self) {
        if !self.finished && self.failed.is_none() {
            let _ = self.flush();
        }
    }
}

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

fn invalid(offset: usize, why: impl Into<String>) -> Error {
    Error::InvalidCapture {
        offset,
        why: why.into(),
    }
}

/// Byte order of the file being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
        b.get(at..at.checked_add(N)?)?.try_into().ok()
    }

    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let a = Self::array(b, at)?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let a = Self::array(b, at)?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        })
    }

    fn i64(self, b: &[u8], at: usize) -> Option<i64> {
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
struct Interface {
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
            endian = match Endian::Little.u32(bytes, pos + 8) {
                Some(BYTE_ORDER_MAGIC) => Some(Endian::Little),
                Some(m) if m.swap_bytes() == BYTE_ORDER_MAGIC => Some(Endian::Big),
                _ => {
                    return Err(invalid(
                        pos,
                        "section header block has a bad byte-order magic",
                    ))
                }
            };
            interfaces.clear();
        }
        let Some(e) = endian else {
            return Err(invalid(
                0,
                "pcapng file does not start with a section header block",
            ));
        };
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
        let body = &bytes[pos + 8..end - 4];
        match btype {
            BT_SHB => {
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
            }
            BT_IDB => {
                if body.len() < 8 {
                    return Err(invalid(pos, "truncated interface description block"));
                }
                interfaces.push(read_idb_options(&body[8..], e, pos)?);
            }
            BT_EPB => {
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
                records.push(Record {
                    ts_ns: to_ns(ts, *iface),
                    orig_len,
                    data: data.to_vec(),
                    ifindex_or_idb: id,
                });
            }
            BT_SPB => {
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
                records.push(Record {
                    ts_ns: 0,
                    orig_len,
                    data: data.to_vec(),
                    ifindex_or_idb: 0,
                });
            }
            _ => {} // name resolution, statistics, custom blocks...
        }
        pos = end;
    }
    Ok((Format::Pcapng, records))
}

/// Read the options of an interface description block that matter for timestamps.
fn read_idb_options(mut opts: &[u8], e: Endian, pos: usize) -> Result<Interface> {
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
fn to_ns(ts: u64, iface: Interface) -> u64 {
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
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Ethernet + IPv4 + UDP 10.0.0.1:1234 -> 10.0.0.2:53, 4 bytes of payload.
    const UDP_FRAME: [u8; 46] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst mac
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src mac
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x66,
        0xca, // ver..checksum
        10, 0, 0, 1, // src
        10, 0, 0, 2, // dst
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, // udp 1234 -> 53, len 12
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    const TS: u64 = 1_700_000_000_123_456_789;

    /// A deterministic packet `i`: varying length (so pcapng padding varies) and contents.
    fn packet(i: u32) -> (u64, u32, Vec<u8>) {
        let len = 60 + (i as usize * 37) % 1400;
        let data: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
        (TS + u64::from(i) * 1_001, len as u32 + 4, data)
    }

    fn encode(format: Format, snaplen: u32, packets: &[(u64, u32, Vec<u8>, u32)]) -> Vec<u8> {
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
    fn blocks(bytes: &[u8]) -> Vec<(u32, &[u8])> {
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

    /// A sink with room for `room` bytes that then fails with `errno`, after a partial write.
    /// With `FileOps` it acts like a regular file.
    #[derive(Debug)]
    struct Fake {
        data: Vec<u8>,
        room: usize,
        errno: i32,
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room - self.data.len());
            if n == 0 && !buf.is_empty() {
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn fake_file(room: usize, errno: i32, format: Format) -> PcapWriter<Fake> {
        let fake = Fake {
            data: Vec::new(),
            room,
            errno,
        };
        let ops = FileOps {
            truncate: |f: &mut Fake, len| {
                f.data.truncate(len as usize);
                Ok(())
            },
            sync: |_: &mut Fake| Ok(()),
        };
        PcapWriter::with_ops(fake, "fake.pcap".to_owned(), Some(ops), format, 0)
    }

    /// Write packets until the writer fails; return the error and how many were accepted.
    fn write_until_error<W: Write>(w: &mut PcapWriter<W>, limit: u32) -> (Error, u32) {
        for i in 0..limit {
            let (ts, orig, data) = packet(i);
            if let Err(e) = w.write_packet(ts, orig, &data, 1) {
                return (e, i);
            }
        }
        panic!("no error after {limit} packets");
    }

    /// The records must be the first `n` packets of `packet(i)`.
    fn check_prefix(recs: &[Record], n: u64) {
        assert_eq!(recs.len() as u64, n);
        for (i, rec) in recs.iter().enumerate() {
            let (ts, orig, data) = packet(i as u32);
            assert_eq!((rec.ts_ns, rec.orig_len, &rec.data), (ts, orig, &data));
        }
    }

    #[test]
    fn disk_full_cuts_back_to_last_record() {
        for format in [Format::Pcap, Format::Pcapng] {
            let mut w = fake_file(100_000, libc::ENOSPC, format);
            w.set_flush_threshold(10_000);
            let (err, accepted) = write_until_error(&mut w, 10_000);
            let kept = w.packets_written();
            assert!(
                kept > 0 && kept < u64::from(accepted),
                "kept {kept} of {accepted}"
            );
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
            let msg = err.to_string();
            assert!(
                msg.contains("disk full") && msg.contains(&format!("kept {kept} packets")),
                "{msg}"
            );
            assert!(msg.contains("cut back"), "{msg}");
            // The fake filled up mid-flush; the partial chunk is gone again.
            let (_, recs) = read_records(&w.out.data).unwrap();
            check_prefix(&recs, kept);
            // Refuses further work, with the same errno.
            let again = w.write_packet(TS, 60, &[0; 60], 1).unwrap_err();
            assert_eq!(again.raw_os_error(), Some(libc::ENOSPC));
            assert!(w.flush().is_err());
            let len = w.out.data.len();
            w.out.room = usize::MAX;
            assert!(w.write_packet(TS, 60, &[0; 60], 1).is_err(), "stays failed");
            assert_eq!(w.out.data.len(), len);
        }
    }

    #[test]
    fn broken_pipe_is_recognisable() {
        let fake = Fake {
            data: Vec::new(),
            room: 5_000,
            errno: libc::EPIPE,
        };
        let mut w = PcapWriter::new(fake, "-", Format::Pcap, 0);
        w.set_flush_threshold(0);
        let (err, _) = write_until_error(&mut w, 100);
        assert!(err.is_broken_pipe(), "{err}");
        assert!(err.to_string().contains("reader closed the pipe"), "{err}");
        // A stream is not cut back: it ends in the partial record.
        assert_eq!(w.out.data.len(), 5_000);
        assert!(w.finish().unwrap_err().is_broken_pipe());
    }

    #[test]
    fn broken_pipe_on_a_real_pipe() {
        let mut child = match Command::new("sh")
            .args(["-c", "head -c 100 >/dev/null"])
            .stdin(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return eprintln!("SKIP broken_pipe_on_a_real_pipe: cannot run sh: {e}"),
        };
        let stdin = child.stdin.take().unwrap();
        let mut w = PcapWriter::new(stdin, "-", Format::Pcapng, 0);
        w.set_flush_threshold(0);
        let (err, _) = write_until_error(&mut w, 1_000_000);
        assert!(err.is_broken_pipe(), "{err}");
        child.wait().unwrap();
    }

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            // Relaxed: only uniqueness matters.
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("fastpath-pcap-{tag}-{}-{n}", std::process::id()));
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn file_round_trip_and_finish() {
        let dir = TempDir::new("file");
        for format in [Format::Pcap, Format::Pcapng] {
            let path = dir.0.join("out.cap");
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            for i in 0..600 {
                let (ts, orig, data) = packet(i);
                w.write_packet(ts, orig, &data, 1).unwrap();
            }
            assert_eq!(w.packets_written() + w.packets_buffered(), 600);
            assert!(
                w.packets_written() > 0,
                "256 KiB threshold crossed at least once"
            );
            assert_eq!(w.finish().unwrap(), 600);
            let (got, recs) = read_records(&fs::read(&path).unwrap()).unwrap();
            assert_eq!(got, format);
            check_prefix(&recs, 600);
        }
        // Drop flushes what is buffered.
        let path = dir.0.join("dropped.pcap");
        let mut w = PcapWriter::create(&path, Format::Pcap, 0).unwrap();
        w.write_packet(TS, 46, &UDP_FRAME, 1).unwrap();
        assert_eq!(w.packets_written(), 0);
        drop(w);
        assert_eq!(read_records(&fs::read(&path).unwrap()).unwrap().1.len(), 1);
    }

    #[test]
    fn create_error_names_path_and_fix() {
        let err =
            PcapWriter::create(Path::new("/nonexistent-dir/x.pcap"), Format::Pcap, 0).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent-dir/x.pcap") && msg.contains("directory exists"),
            "{msg}"
        );
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    /// Print `SKIP` and return, unless `FASTPATH_REQUIRE_PRIV=1`, which turns the skip into a
    /// failure.
    fn skip(test: &str, why: &str) {
        if std::env::var_os("FASTPATH_REQUIRE_PRIV").is_some_and(|v| v == "1") {
            panic!("{test}: {why} (FASTPATH_REQUIRE_PRIV=1 forbids skipping)");
        }
        eprintln!("SKIP {test}: {why}");
    }

    /// A tmpfs mounted on a directory, unmounted on drop (also when the test panics).
    struct Tmpfs<'a>(&'a Path);

    impl<'a> Tmpfs<'a> {
        fn mount(dir: &'a Path, options: &str) -> std::result::Result<Self, String> {
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "fastpath-test"])
                .arg(dir)
                .output()
                .map_err(|e| format!("cannot run mount: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "mount tmpfs failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(Tmpfs(dir))
        }
    }

    impl Drop for Tmpfs<'_> {
        fn drop(&mut self) {
            let ok = Command::new("umount")
                .arg(self.0)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Something still holds it open: detach it now, it goes away when closed.
                let _ = Command::new("umount").arg("-l").arg(self.0).status();
            }
        }
    }

    #[test]
    fn disk_full_on_a_real_tmpfs() {
        const TEST: &str = "disk_full_on_a_real_tmpfs";
        if !fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
            return skip(TEST, "needs root to mount a tmpfs");
        }
        let dir = TempDir::new("tmpfs");
        let mnt = match Tmpfs::mount(&dir.0, "size=64k") {
            Ok(mnt) => mnt,
            Err(why) => return skip(TEST, &why),
        };
        for (format, threshold) in [
            (Format::Pcap, 10_000),
            (Format::Pcapng, 0),
            (Format::Pcapng, DEFAULT_FLUSH_BYTES),
        ] {
            let path = mnt.0.join("cap");
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            w.set_flush_threshold(threshold);
            let (err, _) = write_until_error(&mut w, 100_000);
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
            let kept = w.packets_written();
            assert!(err.to_string().contains("disk full"), "{err}");
            assert!(
                err.to_string().contains(&format!("kept {kept} packets")),
                "{err}"
            );
            drop(w);
            let bytes = fs::read(&path).unwrap();
            let (got, recs) = read_records(&bytes).unwrap();
            assert_eq!(got, format);
            check_prefix(&recs, kept);
            if threshold < DEFAULT_FLUSH_BYTES {
                assert!(kept > 0, "{format:?}: some packets fit in 64 KiB");
            }
            if let Some(lines) = tcpdump_lines(&path) {
                assert_eq!(
                    lines.len() as u64,
                    kept,
                    "{format:?}: tcpdump reads the cut file"
                );
            }
            fs::remove_file(&path).unwrap();
        }
    }

    /// `tcpdump -nn -tt --time-stamp-precision=nano -r path` output, one line per packet (hex
    /// dumps of unknown payloads left out), `None` if tcpdump is not installed. Panics if tcpdump
    /// rejects the file.
    fn tcpdump_lines(path: &Path) -> Option<Vec<String>> {
        let out = Command::new("tcpdump")
            .args(["-nn", "-tt", "--time-stamp-precision=nano", "-r"])
            .arg(path)
            .output()
            .ok()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tcpdump rejects {}: {stderr}",
            path.display()
        );
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with(char::is_whitespace))
                .map(str::to_owned)
                .collect(),
        )
    }

    #[test]
    fn tcpdump_reads_our_files() {
        if Command::new("tcpdump").arg("--version").output().is_err() {
            return eprintln!("SKIP tcpdump_reads_our_files: tcpdump is not installed");
        }
        let dir = TempDir::new("tcpdump");
        for format in [Format::Pcap, Format::Pcapng] {
            let path = dir.0.join("out.cap");
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            w.write_packet(TS, 46, &UDP_FRAME, 1).unwrap();
            w.write_packet(TS + 1, 46, &UDP_FRAME, 2).unwrap();
            w.write_packet(TS + NS_PER_S, 1500, &UDP_FRAME, 1).unwrap(); // 46 of 1500 captured
            w.finish().unwrap();
            let lines = tcpdump_lines(&path).unwrap();
            assert_eq!(lines.len(), 3, "{format:?}: {lines:?}");
            let want = "1700000000.123456789 IP 10.0.0.1.1234 > 10.0.0.2.53:";
            assert!(lines[0].starts_with(want), "{format:?}: {lines:?}");
            assert!(
                lines[1].starts_with("1700000000.123456790 IP "),
                "{format:?}: {lines:?}"
            );
            assert!(
                lines[2].starts_with("1700000001.123456789 IP "),
                "{format:?}: {lines:?}"
            );
            // A capture without packets is readable too (pcapng: the IDB is in the header).
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            assert_eq!(w.finish().unwrap(), 0);
            assert_eq!(tcpdump_lines(&path).unwrap().len(), 0, "{format:?}");
        }
    }
}
