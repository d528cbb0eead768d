//! Where captured packets go: a line each on standard output, or a pcap/pcapng file or stream.

use std::io::{self, Write};

use anyhow::Result;
use fastpath::pcap::PcapWriter;

use super::options::Args;

/// Where packets go.
pub(super) enum Sink {
    /// One tcpdump-like line per packet.
    Lines(io::BufWriter<io::Stdout>),
    /// A pcap/pcapng file or stream.
    File(PcapWriter),
}

impl Sink {
    /// Opens what `-w` names (creating the file), or standard output for lines without `-w`.
    pub(super) fn open(args: &Args) -> Result<Sink> {
        let format = args.format();
        Ok(match &args.write {
            None => Sink::Lines(io::BufWriter::with_capacity(64 << 10, io::stdout())),
            Some(p) if p.as_os_str() == "-" => {
                Sink::File(PcapWriter::stdout(format, args.snaplen)?)
            }
            Some(p) => Sink::File(PcapWriter::create(p, format, args.snaplen)?),
        })
    }

    /// Names the interface `ifindex` in a file's header (pcapng), even if no packet arrives.
    pub(super) fn add_interface(&mut self, ifindex: u32, name: &str) {
        if let Sink::File(w) = self {
            w.add_interface(ifindex, name);
        }
    }

    pub(super) fn write(&mut self, pkt: &fastpath::Packet<'_>) -> Result<()> {
        match self {
            Sink::Lines(out) => {
                crate::print::write_line(out, pkt.timestamp_ns(), pkt.orig_len(), pkt.data())?
            }
            Sink::File(w) => w.write_packet(
                pkt.timestamp_ns(),
                pkt.orig_len(),
                pkt.data(),
                pkt.ifindex(),
            )?,
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        match self {
            Sink::Lines(out) => out.flush()?,
            Sink::File(w) => w.flush()?,
        }
        Ok(())
    }

    /// The end of the capture: the last lines out, or the file completed and synced.
    pub(super) fn finish(self) -> Result<()> {
        match self {
            Sink::Lines(mut out) => out.flush().map_err(anyhow::Error::from),
            Sink::File(w) => w.finish().map(|_| ()).map_err(anyhow::Error::from),
        }
    }
}
