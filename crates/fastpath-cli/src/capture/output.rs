//! Where captured packets go: a line each on standard output, or a pcap/pcapng file or stream,
//! or a series of files (`-C`/`-G`/`-W`).

use std::io::{self, Write};

use anyhow::Result;
use fastpath::pcap::{InterfaceStats, PcapWriter, RotatingWriter};

use super::options::Args;

/// Where packets go, and the interface names lines and `any` need.
pub(super) struct Sink {
    out: Out,
    /// Set for several interfaces: see [`Names`].
    names: Option<Names>,
}

/// The output proper. One per capture, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Out {
    /// One tcpdump-like line per packet.
    Lines(io::BufWriter<io::Stdout>),
    /// A pcap/pcapng file or stream.
    File(PcapWriter),
    /// Files rotated by size or time (`-C`, `-G`, `-W`).
    Rotating(RotatingWriter),
}

/// The interface names a sink knows, for lines that name the interface and for `any`, whose
/// interfaces are learnt from the packets.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// `(ifindex, name)`.
    known: Vec<(u32, String)>,
    /// Lines start with the interface name (several interfaces).
    pub(super) on_lines: bool,
    /// Packets may come from interfaces not registered yet (`any`).
    pub(super) learn: bool,
    /// The last ifindex looked up: packets mostly come in runs from one interface.
    last: Option<usize>,
}

impl Names {
    /// The position of `ifindex` in `known`, learning its name if needed; `None` if unknown.
    fn find(&mut self, ifindex: u32) -> Option<usize> {
        if let Some(i) = self.last {
            if self.known[i].0 == ifindex {
                return Some(i);
            }
        }
        let i = self.known.iter().position(|(k, _)| *k == ifindex)?;
        self.last = Some(i);
        Some(i)
    }

    pub(super) fn add(&mut self, ifindex: u32, name: &str) {
        if self.find(ifindex).is_none() {
            self.known.push((ifindex, name.to_owned()));
        }
    }
}

impl Sink {
    /// Opens what `-w` names (creating the file, or the first of a rotated series), or standard
    /// output for lines without `-w`.
    pub(super) fn open(args: &Args) -> Result<Sink> {
        Sink::open_as(args, args.format())
    }

    /// [`Sink::open`] writing `format`.
    pub(super) fn open_as(args: &Args, format: fastpath::pcap::Format) -> Result<Sink> {
        let rotation = super::rotate::rotation(args)?;
        let out = match &args.write {
            None => Out::Lines(io::BufWriter::with_capacity(64 << 10, io::stdout())),
            Some(p) if p.as_os_str() == "-" => Out::File(PcapWriter::stdout(format, args.snaplen)?),
            Some(p) if rotation.size.is_some() || rotation.interval.is_some() => {
                let template = p.to_str().ok_or_else(|| fastpath::Error::InvalidConfig {
                    field: "file name",
                    why: format!("`{}` is not UTF-8, which rotated names need", p.display()),
                })?;
                Out::Rotating(RotatingWriter::create(
                    template,
                    format,
                    args.snaplen,
                    rotation,
                )?)
            }
            Some(p) => Out::File(PcapWriter::create(p, format, args.snaplen)?),
        };
        let names = args.several_interfaces().then(|| Names {
            on_lines: true,
            learn: args.interface == "any",
            ..Names::default()
        });
        Ok(Sink { out, names })
    }

    /// Whether printed lines name the interface (for `-r`, once a file describes several).
    pub(super) fn name_lines(&mut self, on: bool) {
        self.names.get_or_insert_with(Names::default).on_lines = on;
    }

    /// Whether packets are printed as lines.
    pub(super) fn is_lines(&self) -> bool {
        matches!(self.out, Out::Lines(_))
    }

    /// Names the interface `ifindex` in a file's header (pcapng), even if no packet arrives.
    pub(super) fn add_interface(&mut self, ifindex: u32, name: &str) {
        if let Some(names) = &mut self.names {
            names.add(ifindex, name);
        }
        self.out.add_interface(ifindex, name);
    }
}

impl Out {
    fn add_interface(&mut self, ifindex: u32, name: &str) {
        match self {
            Out::Lines(_) => {}
            Out::File(w) => w.add_interface(ifindex, name),
            Out::Rotating(w) => w.add_interface(ifindex, name),
        }
    }
}

impl Sink {
    /// The link type of the file (pcap) and of interfaces not set otherwise.
    pub(super) fn set_linktype(&mut self, linktype: u16) {
        match &mut self.out {
            Out::Lines(_) => {}
            Out::File(w) => w.set_linktype(linktype),
            Out::Rotating(w) => w.set_linktype(linktype),
        }
    }

    /// The link type of one pcapng interface.
    pub(super) fn set_interface_linktype(&mut self, ifindex: u32, linktype: u16) {
        if let Out::File(w) = &mut self.out {
            w.set_interface_linktype(ifindex, linktype);
        }
    }

    /// The interface name of `ifindex` for lines (read back: `ifN` for unnamed ones).
    pub(super) fn add_line_name(&mut self, ifindex: u32, name: &str) {
        self.names
            .get_or_insert_with(Names::default)
            .add(ifindex, name);
    }

    pub(super) fn write(&mut self, pkt: &fastpath::Packet<'_>) -> Result<()> {
        self.write_raw(
            pkt.timestamp_ns(),
            pkt.orig_len(),
            pkt.data(),
            pkt.ifindex(),
        )
    }

    /// Writes one packet given by its parts. With several interfaces, printed lines name the
    /// packet's, and `any`'s interfaces are learnt (and described in the file) on first sight.
    pub(super) fn write_raw(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
    ) -> Result<()> {
        let mut name: Option<&str> = None;
        if let Some(names) = &mut self.names {
            let at = match names.find(ifindex) {
                Some(i) => Some(i),
                None if names.learn => {
                    let learnt = interface_name(ifindex);
                    self.out.add_interface(ifindex, &learnt);
                    names.known.push((ifindex, learnt));
                    Some(names.known.len() - 1)
                }
                None => None,
            };
            if names.on_lines {
                name = at.map(|i| names.known[i].1.as_str());
            }
        }
        match &mut self.out {
            Out::Lines(out) => crate::print::write_line_on(out, ts_ns, name, orig_len, data)?,
            Out::File(w) => w.write_packet(ts_ns, orig_len, data, ifindex)?,
            Out::Rotating(w) => w.write_packet(ts_ns, orig_len, data, ifindex)?,
        }
        Ok(())
    }

    /// Appends a pcapng interface statistics block (nothing for lines or pcap).
    pub(super) fn write_stats(
        &mut self,
        ifindex: u32,
        ts_ns: u64,
        stats: &InterfaceStats,
    ) -> Result<()> {
        match &mut self.out {
            Out::Lines(_) => {}
            Out::File(w) => w.write_interface_stats(ifindex, ts_ns, stats)?,
            Out::Rotating(w) => w.write_interface_stats(ifindex, ts_ns, stats)?,
        }
        Ok(())
    }

    /// Whether the output is a rotated series (it writes statistics blocks into each file as
    /// it closes it: see [`Sink::set_before_close`]).
    pub(super) fn rotates(&self) -> bool {
        matches!(self.out, Out::Rotating(_))
    }

    /// Rotated files get `board`'s statistics blocks just before they close.
    pub(super) fn set_before_close(&mut self, board: &std::sync::Arc<super::stats::Board>) {
        if let Out::Rotating(w) = &mut self.out {
            let board = std::sync::Arc::clone(board);
            w.set_before_close(Box::new(move |pw| {
                let now = super::stats::now_ns();
                for (ifindex, st) in board.blocks() {
                    pw.write_interface_stats(ifindex, now, &st)?;
                }
                Ok(())
            }));
        }
    }

    /// Starts the next rotated file if the wall clock passed a `-G` boundary.
    pub(super) fn tick(&mut self, now_ns: u64) -> Result<()> {
        if let Out::Rotating(w) = &mut self.out {
            w.tick(now_ns)?;
        }
        Ok(())
    }

    /// Files closed since the last call (rotation), for `-z`.
    pub(super) fn take_closed(&mut self) -> Vec<std::path::PathBuf> {
        match &mut self.out {
            Out::Rotating(w) => w.take_closed(),
            _ => Vec::new(),
        }
    }

    /// The file being written, if it is a regular file we created (for `-Z`'s `fchown`).
    pub(super) fn current_file(&self) -> Option<&std::fs::File> {
        match &self.out {
            Out::File(w) if w.path() != "-" => Some(w.get_ref()),
            Out::Rotating(w) => w.current().map(PcapWriter::get_ref),
            _ => None,
        }
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        match &mut self.out {
            Out::Lines(out) => out.flush()?,
            Out::File(w) => w.flush()?,
            Out::Rotating(w) => w.flush()?,
        }
        Ok(())
    }

    /// The end of the capture (the last lines out, or the file completed and synced),
    /// returning the files closed since the last [`Sink::take_closed`] (the
    /// last one of a rotated series among them).
    pub(super) fn finish_closed(self) -> Result<Vec<std::path::PathBuf>> {
        match self.out {
            Out::Lines(mut out) => out.flush().map(|()| Vec::new()).map_err(Into::into),
            Out::File(w) => w.finish().map(|_| Vec::new()).map_err(Into::into),
            Out::Rotating(mut w) => {
                let res = w.finish();
                let closed = w.take_closed();
                res.map(|_| closed).map_err(Into::into)
            }
        }
    }
}

/// The name of interface `ifindex`, or `ifN` if it has none (any more).
pub(super) fn interface_name(ifindex: u32) -> String {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE writable bytes, what if_indextoname writes at most (NUL
    // included); it returns null on failure and then writes nothing we read.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return format!("if{ifindex}");
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
