//! Where captured packets go: a line each on standard output, or a pcap/pcapng file or stream,
//! or a series of files (`-C`/`-G`/`-W`).
//!
//! The sink counts what reached the output, nothing more: a line counts once the buffer holding
//! it was flushed, a record once the file writer wrote it out ([`Sink::finish`] says how many).

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use fastpath::pcap::{CutBack, Format, InterfaceStats, PcapWriter, RotatingWriter};
use fastpath::Direction;

use super::options::Args;
use super::signals::Control;

/// Where packets go, and the interface names lines and `any` need.
pub(super) struct Sink {
    out: Out,
    /// Set for several interfaces: see [`Names`].
    names: Option<Names>,
    /// Write out after every batch (lines, `-U`), not only when the buffer fills.
    per_batch: bool,
    /// The output is standard output: writes are watched for stalls.
    stream: bool,
    ctl: Arc<Control>,
}

/// The output proper. One per capture, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Out {
    /// One tcpdump-like line per packet; `pending` lines are in the buffer, `done` were flushed.
    Lines {
        out: io::BufWriter<io::Stdout>,
        pending: u64,
        done: u64,
    },
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

/// How a sink ended ([`Sink::finish`]).
pub(super) struct Finished {
    /// Packets that reached the output (after a write error: those complete in the files).
    pub(super) captured: u64,
    /// Why completing the output failed, if it did.
    pub(super) res: Result<()>,
    /// Files closed since the last [`Sink::take_closed`] (the last one of a rotated series
    /// among them), for `-z`.
    pub(super) closed: Vec<PathBuf>,
}

impl Sink {
    /// Opens what `-w` names (creating the file, or the first of a rotated series: mode 0600
    /// when new, a foreign symbolic link refused), or standard output for lines without `-w`.
    /// Call it once the receivers are open, so a capture that cannot start leaves an existing
    /// file as it was.
    pub(super) fn open(args: &Args, ctl: &Arc<Control>) -> Result<Sink> {
        Sink::open_as(args, args.format(), ctl)
    }

    /// [`Sink::open`] writing `format`.
    pub(super) fn open_as(args: &Args, format: Format, ctl: &Arc<Control>) -> Result<Sink> {
        let rotation = super::rotate::rotation(args)?;
        let (out, stream) = match &args.write {
            None => (
                Out::Lines {
                    out: io::BufWriter::with_capacity(64 << 10, io::stdout()),
                    pending: 0,
                    done: 0,
                },
                true,
            ),
            Some(p) if p.as_os_str() == "-" => {
                (Out::File(PcapWriter::stdout(format, args.snaplen)?), true)
            }
            Some(p) if rotation.size.is_some() || rotation.interval.is_some() => {
                let template = p.to_str().ok_or_else(|| fastpath::Error::InvalidConfig {
                    field: "file name",
                    why: format!("`{}` is not UTF-8, which rotated names need", p.display()),
                })?;
                let mut w = RotatingWriter::create(template, format, args.snaplen, rotation)?;
                // A second signal cuts back the file being written, whichever it is by then.
                let c = Arc::clone(ctl);
                w.set_after_open(Box::new(move |pw| c.arm(pw.cut_back_handle())));
                (Out::Rotating(w), false)
            }
            Some(p) => (
                Out::File(PcapWriter::create(p, format, args.snaplen)?),
                false,
            ),
        };
        let names = args.several_interfaces().then(|| Names {
            on_lines: true,
            learn: args.interface == "any",
            ..Names::default()
        });
        Ok(Sink {
            out,
            names,
            per_batch: args.write.is_none() || args.packet_buffered,
            stream,
            ctl: Arc::clone(ctl),
        })
    }

    /// Whether printed lines name the interface (for `-r`, once a file describes several).
    pub(super) fn name_lines(&mut self, on: bool) {
        self.names.get_or_insert_with(Names::default).on_lines = on;
    }

    /// Whether packets are printed as lines.
    pub(super) fn is_lines(&self) -> bool {
        matches!(self.out, Out::Lines { .. })
    }

    /// Names the interface `ifindex` in a file's header (pcapng), even if no packet arrives.
    pub(super) fn add_interface(&mut self, ifindex: u32, name: &str) {
        if let Some(names) = &mut self.names {
            names.add(ifindex, name);
        }
        self.out.add_interface(ifindex, name);
    }

    /// Writes the file header now, so a reader of `-w -` starts at once and a file is valid
    /// from the start.
    pub(super) fn start(&mut self) -> Result<()> {
        match &mut self.out {
            Out::Lines { .. } => Ok(()),
            Out::File(_) | Out::Rotating(_) => self.flush(),
        }
    }

    /// A handle to cut the regular file being written back to its last complete packet from
    /// another thread (a rotated series re-arms `ctl` with each new file's by itself).
    pub(super) fn cut_back_handle(&mut self) -> Option<CutBack> {
        match &mut self.out {
            Out::File(w) => w.cut_back_handle(),
            Out::Rotating(w) => w.cut_back_handle(),
            Out::Lines { .. } => None,
        }
    }
}

impl Out {
    fn add_interface(&mut self, ifindex: u32, name: &str) {
        match self {
            Out::Lines { .. } => {}
            Out::File(w) => w.add_interface(ifindex, name),
            Out::Rotating(w) => w.add_interface(ifindex, name),
        }
    }
}

impl Sink {
    /// The link type of the file (pcap) and of interfaces not set otherwise.
    pub(super) fn set_linktype(&mut self, linktype: u16) {
        match &mut self.out {
            Out::Lines { .. } => {}
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

    /// Writes one received packet, its direction in pcapng's `epb_flags`.
    pub(super) fn write(&mut self, pkt: &fastpath::Packet<'_>) -> Result<()> {
        self.write_raw(
            pkt.timestamp_ns(),
            pkt.orig_len(),
            pkt.data(),
            pkt.ifindex(),
            Some(pkt.direction()),
        )
    }

    /// Writes one packet given by its parts (`direction`: for pcapng's `epb_flags`, where
    /// known). With several interfaces, printed lines name the packet's, and `any`'s
    /// interfaces are learnt (and described in the file) on first sight.
    pub(super) fn write_raw(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
        direction: Option<Direction>,
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
        if self.stream {
            self.ctl.stream_write(true);
        }
        let res = match (&mut self.out, direction) {
            (Out::Lines { out, pending, .. }, _) => {
                crate::print::write_line_on(out, ts_ns, name, orig_len, data)
                    .map(|()| *pending += 1)
                    .map_err(anyhow::Error::from)
            }
            (Out::File(w), Some(d)) if w.format() == Format::Pcapng => w
                .write_packet_with_direction(ts_ns, orig_len, data, ifindex, d)
                .map_err(anyhow::Error::from),
            (Out::File(w), _) => w
                .write_packet(ts_ns, orig_len, data, ifindex)
                .map_err(anyhow::Error::from),
            (Out::Rotating(w), Some(d)) => w
                .write_packet_with_direction(ts_ns, orig_len, data, ifindex, d)
                .map_err(anyhow::Error::from),
            (Out::Rotating(w), None) => w
                .write_packet(ts_ns, orig_len, data, ifindex)
                .map_err(anyhow::Error::from),
        };
        if self.stream {
            self.ctl.stream_write(false);
        }
        res
    }

    /// Appends a pcapng interface statistics block (nothing for lines or pcap).
    pub(super) fn write_stats(
        &mut self,
        ifindex: u32,
        ts_ns: u64,
        stats: &InterfaceStats,
    ) -> Result<()> {
        self.watch(true);
        let res = match &mut self.out {
            Out::Lines { .. } => Ok(()),
            Out::File(w) => w.write_interface_stats(ifindex, ts_ns, stats),
            Out::Rotating(w) => w.write_interface_stats(ifindex, ts_ns, stats),
        };
        self.watch(false);
        Ok(res?)
    }

    /// Whether the output is a rotated series (it writes statistics blocks into each file as
    /// it closes it: see [`Sink::set_before_close`]).
    pub(super) fn rotates(&self) -> bool {
        matches!(self.out, Out::Rotating(_))
    }

    /// Rotated files get `board`'s statistics blocks just before they close.
    pub(super) fn set_before_close(&mut self, board: &Arc<super::stats::Board>) {
        if let Out::Rotating(w) = &mut self.out {
            let board = Arc::clone(board);
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
    pub(super) fn take_closed(&mut self) -> Vec<PathBuf> {
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

    /// After a batch: write out if lines or `-U` ask for it.
    pub(super) fn end_batch(&mut self) -> Result<()> {
        if self.per_batch {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        self.watch(true);
        let res = match &mut self.out {
            Out::Lines { out, pending, done } => {
                let r = out.flush();
                if r.is_ok() {
                    *done += *pending;
                    *pending = 0;
                }
                r.map_err(anyhow::Error::from)
            }
            Out::File(w) => w.flush().map_err(anyhow::Error::from),
            Out::Rotating(w) => w.flush().map_err(anyhow::Error::from),
        };
        self.watch(false);
        res
    }

    /// The end of the capture: the last lines out, or the file (the last of a series)
    /// completed and synced. Says how many packets reached the output, whether completing it
    /// failed, and the files closed since the last [`Sink::take_closed`].
    pub(super) fn finish(mut self) -> Finished {
        let res = self.flush();
        let Sink {
            out, stream, ctl, ..
        } = self;
        match out {
            Out::Lines { done, .. } => Finished {
                captured: done,
                res,
                closed: Vec::new(),
            },
            Out::File(w) => {
                let kept = w.packets_written();
                if let Err(e) = res {
                    return Finished {
                        captured: kept,
                        res: Err(e),
                        closed: Vec::new(),
                    };
                }
                if stream {
                    ctl.stream_write(true);
                }
                let r = w.finish();
                if stream {
                    ctl.stream_write(false);
                }
                let (captured, res) = match r {
                    Ok(n) => (n, Ok(())),
                    Err(e) => (kept, Err(e.into())),
                };
                Finished {
                    captured,
                    res,
                    closed: Vec::new(),
                }
            }
            Out::Rotating(mut w) => {
                let kept = w.packets_written();
                // After a failed flush the series is still closed: statistics, sync.
                let r = w.finish();
                let (captured, r) = match r {
                    Ok(n) => (n, Ok(())),
                    Err(e) => (kept, Err(e.into())),
                };
                Finished {
                    captured,
                    res: res.and(r),
                    closed: w.take_closed(),
                }
            }
        }
    }

    /// After a panic while the sink was in use: nothing more is written (its buffer may end in
    /// a partial record); a regular file is cut back to its last complete packet. Returns the
    /// packets the output keeps.
    pub(super) fn abandon(self) -> u64 {
        match self.out {
            Out::Lines { out, done, .. } => {
                std::mem::forget(out);
                done
            }
            Out::File(mut w) => match w.cut_back_handle() {
                Some(cut) => {
                    let kept = cut.cut_back().unwrap_or_else(|_| w.packets_written());
                    // The handle closed the writer: dropping it writes nothing more.
                    drop(w);
                    kept
                }
                None => {
                    let kept = w.packets_written();
                    std::mem::forget(w);
                    kept
                }
            },
            Out::Rotating(mut w) => {
                // The files already closed are complete; the current one as of its last
                // flush (all threads are joined: none is in progress).
                let kept = w.packets_written();
                match w.cut_back_handle() {
                    Some(cut) => {
                        let _ = cut.cut_back();
                        drop(w);
                    }
                    None => std::mem::forget(w),
                }
                kept
            }
        }
    }

    /// Marks a write to standard output in progress (for the stall watchdog).
    fn watch(&self, busy: bool) {
        if self.stream {
            self.ctl.stream_write(busy);
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
