//! `fastpath capture -r FILE [EXPR] [-w OUT] [-c N]`: a pcap or pcapng file (or standard input)
//! read back through the same filter compiler and printed in the same line format, or written
//! out again (rotated too, with `-C`/`-G`/`-W`).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use fastpath::filter::Filter;
use fastpath::pcap::{Format, InterfaceInfo, PacketRef, Reader, LINKTYPE_ETHERNET};

use super::options::Args;
use super::output::Sink;
use super::signals::Control;

/// The input: a capture file or standard input, buffered.
type Input = Reader<BufReader<Box<dyn Read>>>;

pub(super) fn run(args: &Args) -> Result<()> {
    let path = args.read.as_ref().expect("run only with -r");
    check_options(args)?;
    let filter = crate::filter::from_capture_args(crate::filter::Sources {
        words: &args.expression,
        expression_file: args.expression_file.as_deref(),
        bpf_file: args.bpf_file.as_deref(),
        interface: None,
    })?;
    let ctl = Control::install()?;
    let (label, mut reader) = open_input(path)?;
    let first = reader.interfaces().first().cloned();
    announce(&label, reader.format(), first.as_ref());
    // Written out again in the input's format unless --format says otherwise.
    let format = args.format_given().unwrap_or(reader.format());
    // Opened once the input is: a file that cannot be read leaves an existing output alone.
    let mut sink = Sink::open_as(args, format, &ctl)?;
    let lines = sink.is_lines();
    let pcap_linktype = first.as_ref().map_or(LINKTYPE_ETHERNET, |i| i.linktype);
    sink.set_linktype(pcap_linktype);
    let mut copy = Copy {
        label: &label,
        filter: filter.as_ref(),
        format,
        pcap_linktype,
        lines,
        described: 0,
    };
    let res = copy.run(&mut reader, &mut sink, &ctl, args.count.unwrap_or(u64::MAX));
    finish(args, sink, res)
}

/// A usage error about `-r`.
fn usage(why: String) -> anyhow::Error {
    fastpath::Error::InvalidConfig {
        field: "read (-r)",
        why,
    }
    .into()
}

/// Refuses the options that make no sense with `-r`.
fn check_options(args: &Args) -> Result<()> {
    if !args.interface.is_empty() {
        return Err(usage(
            "-r reads a file instead of capturing: leave -i out".into(),
        ));
    }
    if args.count == Some(0) {
        return Err(usage(
            "-c 0: give a count of at least 1, or leave -c out".into(),
        ));
    }
    Ok(())
}

/// Opens `path` (`-` for standard input) and reads its header: the label for messages, and
/// the reader.
fn open_input(path: &Path) -> Result<(String, Input)> {
    let src: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let label = path.display().to_string();
    let reader = Reader::new(BufReader::with_capacity(1 << 20, src))
        .with_context(|| format!("reading {label}"))?;
    Ok((label, reader))
}

/// Says what is being read, on standard error.
fn announce(label: &str, format: Format, first: Option<&InterfaceInfo>) {
    eprintln!(
        "reading from file {label}, {}{}",
        match format {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        },
        first.map_or(String::new(), |i| format!(
            ", link-type {}, snapshot length {}",
            i.linktype, i.snaplen
        ))
    );
}

/// The copy loop: its settings, and the interfaces described to the output so far.
struct Copy<'a> {
    label: &'a str,
    filter: Option<&'a Filter>,
    /// The output's format.
    format: Format,
    /// The link type of the input's first interface (a pcap output's only one).
    pcap_linktype: u16,
    /// Whether the output is printed lines.
    lines: bool,
    /// How many of the input's interfaces the output knows.
    described: u32,
}

impl Copy<'_> {
    /// Copies packets from `reader` to `sink` until the input ends, `limit` are written, or
    /// Ctrl-C; the first error ends it.
    fn run(
        &mut self,
        reader: &mut Input,
        sink: &mut Sink,
        ctl: &Control,
        limit: u64,
    ) -> Result<()> {
        let mut written = 0u64;
        let mut armed = false;
        while written < limit && !ctl.stop.load(Ordering::Relaxed) {
            let pkt = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    return Err(anyhow::Error::from(e).context(format!("reading {}", self.label)));
                }
            };
            self.describe(sink, &pkt);
            self.check_linktype(&pkt)?;
            if let Some(f) = self.filter {
                if !f.matches(pkt.data, pkt.orig_len) {
                    continue;
                }
            }
            sink.write_raw(pkt.ts_ns, pkt.orig_len, pkt.data, pkt.interface, None)?;
            if !armed {
                // A second Ctrl-C cuts the output back to its last complete packet. (The header
                // waits for the first packet: the input's interfaces and link types go into it.)
                ctl.arm(sink.cut_back_handle());
                armed = true;
            }
            written += 1;
        }
        Ok(())
    }

    /// A newly described interface: its name and link type go into the output.
    fn describe(&mut self, sink: &mut Sink, pkt: &PacketRef<'_>) {
        if pkt.interface < self.described {
            return;
        }
        self.described = pkt.interface + 1;
        let name = pkt.info.name.clone();
        if let Some(n) = &name {
            sink.add_interface(pkt.interface, n);
        }
        sink.add_line_name(
            pkt.interface,
            &name.unwrap_or_else(|| format!("if{}", pkt.interface)),
        );
        sink.name_lines(self.described > 1);
        sink.set_interface_linktype(pkt.interface, pkt.info.linktype);
    }

    /// Refuses a link type the output cannot take.
    fn check_linktype(&self, pkt: &PacketRef<'_>) -> Result<()> {
        let linktype = pkt.info.linktype;
        let label = self.label;
        if linktype != LINKTYPE_ETHERNET && (self.lines || self.filter.is_some()) {
            return Err(usage(format!(
                "interface {} of {label} has link type {linktype}, not Ethernet (1): fastpath \
                 prints and filters Ethernet frames only (copy it with -w and no filter)",
                pkt.interface
            )));
        }
        let pcap_linktype = self.pcap_linktype;
        if self.format == Format::Pcap && linktype != pcap_linktype && !self.lines {
            return Err(usage(format!(
                "{label} mixes link types {pcap_linktype} and {linktype}, which one pcap file \
                 cannot hold: write --format pcapng"
            )));
        }
        Ok(())
    }
}

/// Completes the output (its error counts after the loop's) and runs `-z` on the closed files.
fn finish(args: &Args, sink: Sink, res: Result<()>) -> Result<()> {
    let fin = sink.finish();
    let res = res.and(fin.res);
    super::rotate::PostRotate::new(args.postrotate.clone()).finish(fin.closed);
    res
}
