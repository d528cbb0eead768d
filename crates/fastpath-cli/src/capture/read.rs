//! `fastpath capture -r FILE [EXPR] [-w OUT] [-c N]`: a pcap or pcapng file (or standard input)
//! read back through the same filter compiler and printed in the same line format, or written
//! out again (rotated too, with `-C`/`-G`/`-W`).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use fastpath::pcap::{Format, Reader, LINKTYPE_ETHERNET};

use super::options::Args;
use super::output::Sink;
use super::signals::Control;

pub(super) fn run(args: &Args) -> Result<()> {
    let path = args.read.as_ref().expect("run only with -r");
    let usage = |why: String| -> anyhow::Error {
        fastpath::Error::InvalidConfig {
            field: "read (-r)",
            why,
        }
        .into()
    };
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
    let filter = crate::filter::from_capture_args(crate::filter::Sources {
        words: &args.expression,
        expression_file: args.expression_file.as_deref(),
        bpf_file: args.bpf_file.as_deref(),
        interface: None,
    })?;
    let ctl = Control::install()?;
    let src: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let label = path.display().to_string();
    let mut reader = Reader::new(BufReader::with_capacity(1 << 20, src))
        .with_context(|| format!("reading {label}"))?;
    let first = reader.interfaces().first().cloned();
    eprintln!(
        "reading from file {label}, {}{}",
        match reader.format() {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        },
        first.as_ref().map_or(String::new(), |i| format!(
            ", link-type {}, snapshot length {}",
            i.linktype, i.snaplen
        ))
    );
    // Written out again in the input's format unless --format says otherwise.
    let format = args.format_given().unwrap_or(reader.format());
    // Opened once the input is: a file that cannot be read leaves an existing output alone.
    let mut sink = Sink::open_as(args, format, &ctl)?;
    let lines = sink.is_lines();
    let pcap_linktype = first.as_ref().map_or(LINKTYPE_ETHERNET, |i| i.linktype);
    sink.set_linktype(pcap_linktype);
    let mut described = 0u32;
    let mut written = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut res = Ok(());
    let mut armed = false;
    while written < limit && !ctl.stop.load(Ordering::Relaxed) {
        let pkt = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                res = Err(anyhow::Error::from(e).context(format!("reading {label}")));
                break;
            }
        };
        let linktype = pkt.info.linktype;
        if pkt.interface >= described {
            // A newly described interface: its name and link type go into the output.
            described = pkt.interface + 1;
            let name = pkt.info.name.clone();
            if let Some(n) = &name {
                sink.add_interface(pkt.interface, n);
            }
            sink.add_line_name(
                pkt.interface,
                &name.unwrap_or_else(|| format!("if{}", pkt.interface)),
            );
            sink.name_lines(described > 1);
            sink.set_interface_linktype(pkt.interface, linktype);
        }
        if linktype != LINKTYPE_ETHERNET && (lines || filter.is_some()) {
            res = Err(usage(format!(
                "interface {} of {label} has link type {linktype}, not Ethernet (1): fastpath \
                 prints and filters Ethernet frames only (copy it with -w and no filter)",
                pkt.interface
            )));
            break;
        }
        if format == Format::Pcap && linktype != pcap_linktype && !lines {
            res = Err(usage(format!(
                "{label} mixes link types {pcap_linktype} and {linktype}, which one pcap file \
                 cannot hold: write --format pcapng"
            )));
            break;
        }
        if let Some(f) = &filter {
            if !f.matches(pkt.data, pkt.orig_len) {
                continue;
            }
        }
        if let Err(e) = sink.write_raw(pkt.ts_ns, pkt.orig_len, pkt.data, pkt.interface, None) {
            res = Err(e);
            break;
        }
        if !armed {
            // A second Ctrl-C cuts the output back to its last complete packet. (The header
            // waits for the first packet: the input's interfaces and link types go into it.)
            ctl.arm(sink.cut_back_handle());
            armed = true;
        }
        written += 1;
    }
    let fin = sink.finish();
    let res = res.and(fin.res);
    super::rotate::PostRotate::new(args.postrotate.clone()).finish(fin.closed);
    res
}
