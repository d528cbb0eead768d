//! The options of `fastpath capture` and the library [`Config`] they make.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use fastpath::pcap::Format;
use fastpath::XdpMode as Mode;
use fastpath::{
    Backend, CaptureDirection, Config, FanoutMode, MmapConfig, TimestampType, XdpConfig, ZeroCopy,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Interface to capture on; several as `a,b` (one pcapng file, one interface block each);
    /// `any` for every interface (AF_PACKET backends).
    #[arg(short = 'i', long = "interface", default_value = "")]
    pub(super) interface: String,
    /// Read packets from a pcap or pcapng FILE (`-` for standard input) instead of an
    /// interface: printed, or written with -w, through the same filter.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub(super) read: Option<PathBuf>,
    /// List the interfaces and what each backend can do on them, then exit.
    #[arg(short = 'D', long = "list-interfaces")]
    pub(super) list: bool,
    /// Start a new file before one would pass SIZE millions of bytes (like tcpdump; a k, m or g
    /// suffix counts KiB, MiB, GiB). Files after the first get a number: FILE1, FILE2, ...
    #[arg(short = 'C', value_name = "SIZE", value_parser = parse_file_size)]
    pub(super) file_size: Option<u64>,
    /// Start a new file every SECS seconds of wall-clock time, on multiples of SECS (-G 3600:
    /// on the hour); the -w name is a strftime format (e.g. `cap-%Y%m%d-%H%M.pcap`).
    #[arg(short = 'G', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) rotate_secs: Option<u64>,
    /// Keep at most N files, as a ring (with -C alone: FILE0..FILE<N-1> overwritten in turn;
    /// with -G: the oldest deleted).
    #[arg(short = 'W', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) file_count: Option<u32>,
    /// Run CMD FILE on each file once it is closed (e.g. `-z gzip`), the last one included.
    #[arg(short = 'z', value_name = "CMD")]
    pub(super) postrotate: Option<String>,
    /// Drop root privileges to USER (and its groups) once the capture sockets are open; files
    /// created after that are USER's.
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    pub(super) user: Option<String>,
    /// Time stamp type: `host` (the kernel's software stamps) or `adapter` (the NIC's hardware
    /// stamps, where it has them).
    #[arg(short = 'j', long = "time-stamp-type", default_value = "host", value_parser = parse_tstamp)]
    pub(super) tstamp: TimestampType,
    /// Receive path: recv, recv-batch, mmap, xdp (dpdk when built with it).
    #[arg(short = 'b', long = "backend", default_value = "mmap", value_parser = parse_backend)]
    pub(super) backend: Backend,
    /// Stop after writing this many packets.
    #[arg(short = 'c', long = "count")]
    pub(super) count: Option<u64>,
    /// Write packets to FILE (`-` for standard output) instead of printing a line per packet.
    #[arg(short = 'w', long = "write")]
    pub(super) write: Option<PathBuf>,
    /// Write each packet out as soon as it is received (after each batch), not when the output
    /// buffer fills: for `-w -` read live by another program (tcpdump's `-U`).
    #[arg(short = 'U', long = "packet-buffered")]
    pub(super) packet_buffered: bool,
    /// Capture packets received (`in`), sent (`out`) or both (`inout`, the default). On a
    /// loopback interface (and for the loopback device's packets on `any`) `inout` shows each
    /// packet once.
    #[arg(short = 'Q', long = "direction", default_value = "inout", value_parser = parse_direction)]
    direction: CaptureDirection,
    /// Capture at most this many bytes of each packet.
    #[arg(short = 's', long = "snaplen", default_value_t = fastpath::MAX_SNAPLEN)]
    pub(super) snaplen: u32,
    /// Output file format [default: pcap; pcapng for several interfaces or `any`; with -r, the
    /// input's].
    #[arg(long = "format", value_parser = ["pcap", "pcapng"])]
    format: Option<String>,
    /// Receive with N sockets in one PACKET_FANOUT group, each on its own thread.
    #[arg(long = "threads", default_value_t = 1)]
    pub(super) threads: usize,
    /// How the fanout group spreads packets: hash, lb, cpu or qm.
    #[arg(long = "fanout", default_value = "hash", value_parser = parse_fanout)]
    pub(super) fanout: FanoutMode,
    /// Stop after this many seconds.
    #[arg(long = "duration", value_parser = crate::parse_secs)]
    pub(super) duration: Option<Duration>,
    /// Packets per recvmmsg call (recv-batch).
    #[arg(long = "batch", default_value_t = 64)]
    batch: usize,
    /// Socket receive buffer in bytes (recv, recv-batch; default 32 MiB): a larger one absorbs
    /// longer bursts, a smaller one keeps queued packets in cache under sustained overload.
    #[arg(long = "rcvbuf")]
    rcvbuf: Option<usize>,
    /// TPACKET_V3 block size in bytes (mmap; a power of two).
    #[arg(long = "block-size", default_value_t = MmapConfig::default().block_size)]
    block_size: u32,
    /// Number of TPACKET_V3 blocks (mmap; a power of two).
    #[arg(long = "blocks", default_value_t = MmapConfig::default().block_count)]
    blocks: u32,
    /// TPACKET_V3 frame size (mmap; a power of two).
    #[arg(long = "frame-size", default_value_t = MmapConfig::default().frame_size)]
    frame_size: u32,
    /// Longest time a packet may wait in a partly filled block, in milliseconds (mmap).
    #[arg(long = "block-timeout-ms", default_value_t = 1)]
    block_timeout_ms: u64,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    no_promisc: bool,
    /// dpdk: extra EAL arguments, split on whitespace (e.g. "-l 0-1 --log-level=info"); `-i`
    /// names the device: net_af_packet0,iface=eth0, a PCI address, or a port number.
    #[arg(long = "dpdk-args", default_value = "", allow_hyphen_values = true)]
    dpdk_args: String,
    /// xdp: receive queues, `all` or a list like `0,1` (one socket and thread per queue).
    #[arg(long = "queues", default_value = "all")]
    pub(super) queues: String,
    /// xdp: let fastpath take packets of an interface that has IP addresses away from the
    /// kernel stack: all of them, or all a filter accepts (the host's own connections that
    /// match stall while capturing).
    #[arg(long = "take")]
    take: bool,
    /// xdp: attach the XDP program in the driver (`native`) or in `generic` (skb) mode.
    #[arg(long = "xdp-mode", default_value = "native", value_parser = ["native", "generic"])]
    xdp_mode: String,
    /// xdp: replace an XDP program another tool attached to the interface.
    #[arg(long = "xdp-replace")]
    xdp_replace: bool,
    /// xdp: zero-copy policy: `auto` (zero-copy if the driver has it), `require` or `never`.
    #[arg(long = "zero-copy", default_value = "auto", value_parser = ["auto", "require", "never"])]
    zero_copy: String,
    /// xdp: busy-poll the queue for this many microseconds (SO_PREFER_BUSY_POLL + SO_BUSY_POLL,
    /// budget 64) instead of sleeping in poll.
    #[arg(long = "busy-poll")]
    busy_poll: Option<u32>,
    /// xdp: do not use the need_wakeup protocol (a syscall per batch even when busy).
    #[arg(long = "no-need-wakeup")]
    no_need_wakeup: bool,
    /// Read a classic BPF program in `tcpdump -ddd` form (count line, then `code jt jf k`)
    /// instead of taking a filter expression.
    #[arg(long = "bpf-file", value_name = "FILE")]
    pub(super) bpf_file: Option<PathBuf>,
    /// Read the filter expression from FILE (`#` starts a comment to the end of the line), as
    /// `tcpdump -F`.
    #[arg(short = 'F', value_name = "FILE")]
    pub(super) expression_file: Option<PathBuf>,
    /// Filter expression (pcap-filter syntax, as tcpdump): its words joined with spaces, e.g.
    /// `udp and dst port 53`; options may come before or after it (after `--` every word is
    /// part of it). Runs in the kernel (recv, recv-batch, mmap), in the XDP program (xdp:
    /// non-matching packets stay with the kernel stack; matching ones are taken from it, so an
    /// interface with addresses needs --take) or before
    /// packets are handed out (dpdk).
    #[arg(value_name = "EXPRESSION", allow_negative_numbers = true)]
    pub(super) expression: Vec<String>,
}

impl Args {
    /// The interfaces of `-i`: one, several (`a,b`), or `any`. For `-b dpdk` it is one device
    /// whose arguments are separated by commas (`net_af_packet0,iface=eth0`), never a list.
    ///
    /// # Errors
    /// A usage error without `-i`, for an empty or repeated name, or `any` among others.
    pub(super) fn interfaces(&self) -> Result<Vec<String>> {
        let usage = |why: String| -> anyhow::Error {
            fastpath::Error::InvalidConfig {
                field: "interface",
                why,
            }
            .into()
        };
        if self.interface.is_empty() {
            return Err(usage(
                "give -i INTERFACE (list them with -D), or read a file with -r FILE".into(),
            ));
        }
        if self.backend == Backend::Dpdk {
            return Ok(vec![self.interface.clone()]);
        }
        let names: Vec<String> = self.interface.split(',').map(str::to_owned).collect();
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() {
                return Err(usage(format!("`{}` has an empty name", self.interface)));
            }
            if names[..i].contains(n) {
                return Err(usage(format!("`{n}` is given twice")));
            }
        }
        if names.len() > 1 && names.iter().any(|n| n == "any") {
            return Err(usage(
                "`any` already means every interface: give it alone".into(),
            ));
        }
        Ok(names)
    }

    /// Whether packets come from several interfaces (`a,b` or `any`), so that the file and the
    /// lines must say which.
    pub(super) fn several_interfaces(&self) -> bool {
        (self.interface.contains(',') && self.backend != Backend::Dpdk) || self.interface == "any"
    }

    /// The receive configuration for one interface of `-i`, checked before anything opens
    /// (this reads the `--bpf-file`). `--queues` and `--threads 0` are only checked when the
    /// receivers open.
    pub(super) fn config_for(&self, interface: &str) -> Result<Config> {
        let mmap = self.mmap_config();
        if self.count == Some(0) {
            return Err(fastpath::Error::InvalidConfig {
                field: "count",
                why: "0 packets: give a count of at least 1, or leave -c out".into(),
            }
            .into());
        }
        let mut cfg = Config::new(interface)
            .backend(self.backend)
            .timestamps(self.tstamp)
            .snaplen(self.snaplen)
            .batch_size(self.batch)
            .promiscuous(!self.no_promisc)
            .direction(self.direction)
            .mmap(mmap)
            .dpdk(fastpath::DpdkConfig::default().eal_args(self.dpdk_args.split_whitespace()))
            .xdp(self.xdp_config())
            .xdp_attach(if self.xdp_mode == "generic" {
                Mode::Generic
            } else {
                Mode::Native
            })
            .xdp_replace(self.xdp_replace)
            .take(self.take);
        if let Some(bytes) = self.rcvbuf {
            cfg = cfg.rcvbuf(bytes);
        }
        let filter = crate::filter::from_capture_args(crate::filter::Sources {
            words: &self.expression,
            expression_file: self.expression_file.as_deref(),
            bpf_file: self.bpf_file.as_deref(),
            interface: Some(&self.interface),
        })?;
        let cfg = match filter {
            Some(f) => cfg.filter(f),
            None => cfg,
        };
        cfg.validate()?;
        if self.backend == Backend::Xdp && self.threads != 1 {
            return Err(fastpath::Error::InvalidConfig {
                field: "threads",
                why: "-b xdp runs one thread per queue: choose them with --queues, not --threads"
                    .into(),
            }
            .into());
        }
        Ok(cfg)
    }

    /// `--block-size`, `--blocks`, `--frame-size`, `--block-timeout-ms`.
    fn mmap_config(&self) -> MmapConfig {
        let mut m = MmapConfig::default();
        m.block_size = self.block_size;
        m.block_count = self.blocks;
        m.frame_size = self.frame_size;
        m.block_timeout = Duration::from_millis(self.block_timeout_ms);
        m
    }

    /// `--zero-copy`, `--no-need-wakeup`, `--busy-poll`.
    fn xdp_config(&self) -> XdpConfig {
        let mut x = XdpConfig::default();
        x.zero_copy = match self.zero_copy.as_str() {
            "require" => ZeroCopy::Require,
            "never" => ZeroCopy::Never,
            _ => ZeroCopy::Auto,
        };
        x.need_wakeup = !self.no_need_wakeup;
        x.busy_poll = self.busy_poll.map(|us| (us, 64));
        x
    }

    /// `--format`, or the default for the capture: pcapng when several interfaces must be told
    /// apart, else pcap.
    pub(super) fn format(&self) -> Format {
        match self.format.as_deref() {
            Some("pcapng") => Format::Pcapng,
            Some(_) => Format::Pcap,
            None if self.several_interfaces() => Format::Pcapng,
            None => Format::Pcap,
        }
    }

    /// `--format` as given, if it was.
    pub(super) fn format_given(&self) -> Option<Format> {
        self.format.as_ref().map(|_| self.format())
    }

    /// Whether packets go to a file (`-w FILE`, not `-w -`): only then is there a status line.
    pub(super) fn to_file(&self) -> bool {
        self.write.as_ref().is_some_and(|p| p.as_os_str() != "-")
    }
}

/// Parses `--queues`: `all` or comma-separated queue ids.
pub(super) fn parse_queues(spec: &str, interface: &str) -> Result<Vec<u32>> {
    if spec == "all" {
        let n = fastpath::rx_queue_count(interface)?;
        return Ok((0..n).collect());
    }
    spec.split(',')
        .map(|q| {
            q.trim().parse::<u32>().map_err(|_| {
                fastpath::Error::InvalidConfig {
                    field: "queues",
                    why: format!("`{spec}` is not `all` or a list of queue ids like `0,1`"),
                }
                .into()
            })
        })
        .collect()
}

/// `-C`: millions of bytes (a decimal number), or with a k/m/g suffix KiB/MiB/GiB, as tcpdump.
fn parse_file_size(s: &str) -> std::result::Result<u64, String> {
    let (num, unit) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1024.0),
        Some((i, 'm' | 'M')) => (&s[..i], 1024.0 * 1024.0),
        Some((i, 'g' | 'G')) => (&s[..i], 1024.0 * 1024.0 * 1024.0),
        _ => (s, 1_000_000.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (millions of bytes, or with k, m or g)"))?;
    let bytes = v * unit;
    if !(1.0..1e18).contains(&bytes) {
        return Err(format!("{s} is out of range (at least 1 byte)"));
    }
    Ok(bytes as u64)
}

fn parse_tstamp(s: &str) -> std::result::Result<TimestampType, String> {
    s.parse().map_err(|e: fastpath::Error| e.to_string())
}

fn parse_backend(s: &str) -> std::result::Result<Backend, String> {
    s.parse().map_err(|e: fastpath::Error| e.to_string())
}

fn parse_direction(s: &str) -> std::result::Result<CaptureDirection, String> {
    s.parse().map_err(|e: fastpath::Error| e.to_string())
}

fn parse_fanout(s: &str) -> std::result::Result<FanoutMode, String> {
    s.parse().map_err(|e: fastpath::Error| e.to_string())
}
