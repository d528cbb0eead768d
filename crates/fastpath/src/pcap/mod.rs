//! Capture files: a sans-IO pcap/pcapng [`Encoder`], a [`PcapWriter`] sink, and a small reader.
//!
//! - [`Encoder`] turns packets into bytes appended to a `Vec<u8>` the caller owns. It does no I/O
//!   and, once an interface has been seen, no allocation: the caller's `Vec` is reused.
//! - [`PcapWriter`] buffers encoded records and writes them in large chunks to a file or a stream
//!   (standard output for `-w -`). **It never leaves an invalid file behind**: after every
//!   successful flush it remembers the file length, and when a write fails (disk full, I/O error)
//!   it cuts a regular file back to that length with `ftruncate(2)`, so the file ends on a
//!   complete record, then refuses further writes. A stream cannot be cut back; a broken pipe is
//!   reported so that [`Error::is_broken_pipe`](crate::Error::is_broken_pipe) recognises it.
//! - [`read_records`] parses what we write, and more (microsecond pcap, either byte order,
//!   pcapng with any `if_tsresol`). It is meant for tests and fuzzing: on any input it returns a
//!   value or an [`Error::InvalidCapture`](crate::Error::InvalidCapture), it never panics.
//!
//! - [`RotatingWriter`] splits a capture over files by size and wall-clock time, keeping at most N
//!   (tcpdump's `-C`, `-G`, `-W`); every file is complete on its own.
//! - [`Reader`] reads a pcap or pcapng stream (a file, a pipe) one packet at a time into one
//!   reused buffer.
//! - [`Encoder::interface_statistics`] writes pcapng interface statistics blocks
//!   ([`InterfaceStats`]): drops inside the file.
//!
//! What we write:
//! - [`Format::Pcap`]: classic pcap, little-endian, magic `0xa1b23c4d` (nanosecond timestamps),
//!   version 2.4, `LINKTYPE_ETHERNET`. Seconds are stored in 32 bits, as the format demands, so
//!   timestamps wrap in 2106.
//! - [`Format::Pcapng`]: little-endian section header block (with `shb_userappl`), one interface
//!   description block per interface on first use (`LINKTYPE_ETHERNET`, snaplen, `if_name` when
//!   known, `if_tsresol` = 9, i.e. nanoseconds), and enhanced packet blocks; written through
//!   [`Encoder::packet_with_direction`], they carry `epb_flags` with the direction (inbound,
//!   outbound) and the reception type (unicast, multicast, broadcast, promiscuous).
//!
//! Captured data longer than the snaplen is cut to the snaplen; the original length is kept.
//!
//! # References
//! - pcap: <https://www.tcpdump.org/manpages/pcap-savefile.5.html>
//! - pcapng: <https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html>
//! - link types: <https://www.tcpdump.org/linktypes.html>
//!
//! Implementation: `encode.rs` ([`Encoder`]), `write.rs` ([`PcapWriter`]), `read.rs`
//! ([`read_records`]), `stream.rs` ([`Reader`]), `rotate.rs` ([`RotatingWriter`]).

mod cut;
mod encode;
#[cfg(test)]
mod fixtures;
mod open;
mod read;
mod rotate;
mod stream;
mod write;

pub use cut::CutBack;
pub use encode::{epb_flags, Encoder};
pub use read::{read_records, Record};
pub use rotate::{AfterOpen, BeforeClose, RotatingWriter, Rotation};
pub use stream::{InterfaceInfo, PacketRef, Reader};
pub use write::PcapWriter;

/// Classic pcap magic with nanosecond timestamps, as written in the file's byte order.
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Classic pcap magic with microsecond timestamps.
const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`: frames start with an Ethernet II header.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// pcapng block types.
const BT_SHB: u32 = 0x0a0d_0d0a;
const BT_IDB: u32 = 0x0000_0001;
const BT_SPB: u32 = 0x0000_0003;
const BT_EPB: u32 = 0x0000_0006;
const BT_ISB: u32 = 0x0000_0005;
/// pcapng byte-order magic, read in the file's byte order.
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// pcapng option codes.
const OPT_ENDOFOPT: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const OPT_EPB_FLAGS: u16 = 2;
const OPT_ISB_STARTTIME: u16 = 2;
const OPT_ISB_ENDTIME: u16 = 3;
const OPT_ISB_IFRECV: u16 = 4;
const OPT_ISB_IFDROP: u16 = 5;
const OPT_ISB_FILTERACCEPT: u16 = 6;
const OPT_ISB_OSDROP: u16 = 7;
const OPT_ISB_USRDELIV: u16 = 8;
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

/// The counters of one pcapng interface statistics block
/// ([`Encoder::interface_statistics`]); each is left out of the block when `None`. All count
/// from the start of the capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// When counting started (`isb_starttime`), ns since the UNIX epoch.
    pub start_ns: Option<u64>,
    /// Packets the capture saw arrive, dropped ones included (`isb_ifrecv`; the
    /// "received by kernel" of the summary).
    pub received: Option<u64>,
    /// Packets the interface itself dropped for lack of resources (`isb_ifdrop`), where the
    /// driver counts them.
    pub if_dropped: Option<u64>,
    /// Packets the filter accepted (`isb_filteraccept`).
    pub filter_accepted: Option<u64>,
    /// Packets the operating system dropped: the capture's ring or socket buffer was full
    /// (`isb_osdrop`; the "dropped by kernel" of the summary).
    pub os_dropped: Option<u64>,
    /// Packets handed to the application (`isb_usrdeliv`).
    pub delivered: Option<u64>,
}

/// Capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Classic pcap, nanosecond variant (magic `0xa1b23c4d`). Read by every tool; one link type
    /// per file and no interface information.
    Pcap,
    /// pcapng, with one interface description block per interface and nanosecond timestamps.
    Pcapng,
}
