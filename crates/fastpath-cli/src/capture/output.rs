//! Where captured packets go: a line each on standard output, or a pcap/pcapng file or stream.
//!
//! The sink counts what reached the output, nothing more: a line counts once the buffer holding
//! it was flushed, a record once the file writer wrote it out ([`Sink::finish`] says how many).

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::Result;
use fastpath::pcap::{CutBack, Format, PcapWriter};

use super::options::Args;
use super::signals::Control;

/// Where packets go.
pub(super) struct Sink {
    kind: Kind,
    /// Write out after every batch (lines, `-U`), not only when the buffer fills.
    per_batch: bool,
    /// The output is standard output: writes are watched for stalls.
    stream: bool,
    ctl: Arc<Control>,
}

enum Kind {
    /// One tcpdump-like line per packet; `pending` lines are in the buffer, `done` were flushed.
    Lines {
        out: io::BufWriter<io::Stdout>,
        pending: u64,
        done: u64,
    },
    /// A pcap/pcapng file or stream.
    File(PcapWriter),
}

impl Sink {
    /// Opens what `-w` names (creating the file: mode 0600 when new, a foreign symbolic link
    /// refused), or standard output for lines without `-w`. Call it once the receivers are open,
    /// so a capture that cannot start leaves an existing file as it was.
    pub(super) fn open(args: &Args, ctl: &Arc<Control>) -> Result<Sink> {
        let format = args.format();
        let (kind, stream) = match &args.write {
            None => (
                Kind::Lines {
                    out: io::BufWriter::with_capacity(64 << 10, io::stdout()),
                    pending: 0,
                    done: 0,
                },
                true,
            ),
            Some(p) if p.as_os_str() == "-" => {
                (Kind::File(PcapWriter::stdout(format, args.snaplen)?), true)
            }
            Some(p) => (
                Kind::File(PcapWriter::create(p, format, args.snaplen)?),
                false,
            ),
        };
        Ok(Sink {
            kind,
            per_batch: args.write.is_none() || args.packet_buffered,
            stream,
            ctl: Arc::clone(ctl),
        })
    }

    /// Names the interface `ifindex` in a file's header (pcapng), even if no packet arrives.
    pub(super) fn add_interface(&mut self, ifindex: u32, name: &str) {
        if let Kind::File(w) = &mut self.kind {
            w.add_interface(ifindex, name);
        }
    }

    /// Writes the file header now, so a reader of `-w -` starts at once and a file is valid
    /// from the start.
    pub(super) fn start(&mut self) -> Result<()> {
        match &mut self.kind {
            Kind::Lines { .. } => Ok(()),
            Kind::File(_) => self.flush(),
        }
    }

    /// A handle to cut a regular file back to its last complete packet from another thread.
    pub(super) fn cut_back_handle(&mut self) -> Option<CutBack> {
        match &mut self.kind {
            Kind::File(w) => w.cut_back_handle(),
            Kind::Lines { .. } => None,
        }
    }

    pub(super) fn write(&mut self, pkt: &fastpath::Packet<'_>) -> Result<()> {
        self.watch(true);
        let res = match &mut self.kind {
            Kind::Lines { out, pending, .. } => {
                crate::print::write_line(out, pkt.timestamp_ns(), pkt.orig_len(), pkt.data())
                    .map(|()| *pending += 1)
                    .map_err(anyhow::Error::from)
            }
            Kind::File(w) if w.format() == Format::Pcapng => w
                .write_packet_with_direction(
                    pkt.timestamp_ns(),
                    pkt.orig_len(),
                    pkt.data(),
                    pkt.ifindex(),
                    pkt.direction(),
                )
                .map_err(anyhow::Error::from),
            Kind::File(w) => w
                .write_packet(
                    pkt.timestamp_ns(),
                    pkt.orig_len(),
                    pkt.data(),
                    pkt.ifindex(),
                )
                .map_err(anyhow::Error::from),
        };
        self.watch(false);
        res
    }

    /// After a batch: write out if lines or `-U` ask for it.
    pub(super) fn end_batch(&mut self) -> Result<()> {
        if self.per_batch {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.watch(true);
        let res = match &mut self.kind {
            Kind::Lines { out, pending, done } => {
                let r = out.flush();
                if r.is_ok() {
                    *done += *pending;
                    *pending = 0;
                }
                r.map_err(anyhow::Error::from)
            }
            Kind::File(w) => w.flush().map_err(anyhow::Error::from),
        };
        self.watch(false);
        res
    }

    /// The end of the capture: the last lines out, or the file completed and synced. Returns
    /// how many packets reached the output, and the error if that failed.
    pub(super) fn finish(mut self) -> (u64, Result<()>) {
        let res = self.flush();
        let Sink {
            kind, stream, ctl, ..
        } = self;
        match kind {
            Kind::Lines { done, .. } => (done, res),
            Kind::File(w) => {
                let kept = w.packets_written();
                if let Err(e) = res {
                    return (kept, Err(e));
                }
                if stream {
                    ctl.stream_write(true);
                }
                let r = w.finish();
                if stream {
                    ctl.stream_write(false);
                }
                match r {
                    Ok(n) => (n, Ok(())),
                    Err(e) => (kept, Err(e.into())),
                }
            }
        }
    }

    /// After a panic while the sink was in use: nothing more is written (its buffer may end in
    /// a partial record); a regular file is cut back to its last complete packet. Returns the
    /// packets the output keeps.
    pub(super) fn abandon(self) -> u64 {
        match self.kind {
            Kind::Lines { out, done, .. } => {
                std::mem::forget(out);
                done
            }
            Kind::File(mut w) => match w.cut_back_handle() {
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
        }
    }

    /// Marks a write to standard output in progress (for the stall watchdog).
    fn watch(&self, busy: bool) {
        if self.stream {
            self.ctl.stream_write(busy);
        }
    }
}
