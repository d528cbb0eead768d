//! Packet filters: tcpdump expressions compiled to classic BPF in pure Rust (no libpcap), run
//! as early as each rung allows.
//!
//! | rung | where the filter runs |
//! |---|---|
//! | `recv`, `recv-batch`, `mmap` | in the kernel, attached with `SO_ATTACH_FILTER` before the socket is bound ([`Filter::socket_program`]) |
//! | `xdp` | in the XDP program, translated to eBPF: only matching frames are redirected, the rest go on to the kernel stack (`XDP_PASS`) |
//! | `dpdk` | in user space, by [`run`], before a packet is handed out |
//!
//! ```
//! use fastpath::filter::Filter;
//!
//! let f = Filter::new("udp and dst port 53")?;
//! let mut frame = vec![0u8; 42];
//! frame[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4
//! frame[14] = 0x45; // version 4, 20-byte header
//! frame[23] = 17; // UDP
//! frame[36..38].copy_from_slice(&53u16.to_be_bytes()); // destination port
//! assert!(f.matches(&frame, 42));
//! println!("{}", f.listing()); // like `tcpdump -d`
//! # Ok::<(), fastpath::filter::FilterError>(())
//! ```
//!
//! # The language
//! What `man pcap-filter` describes for Ethernet, with libpcap's semantics where they decide
//! which packets match (differentially tested against libpcap's own programs, also on packets
//! cut short):
//! - protocols: `ether`/`link` (and libpcap's aliases `ppp`, `slip`, `fddi`, `tr`, `wlan`), `ip`,
//!   `ip6`, `arp`, `rarp`, `tcp`, `udp`, `sctp`, `icmp`, `icmp6`, `igmp`, `igrp`, `pim`, `vrrp`,
//!   `carp`, `ah`, `esp`; 802.2 and the legacy families: `iso`, `clnp`, `esis`, `isis` (and the
//!   IS-IS PDU names `l1`, `l2`, `iih`, `lsp`, `snp`, `csnp`, `psnp`), `stp`, `ipx`, `netbeui`,
//!   `atalk`, `aarp`, `decnet`, `lat`, `sca`, `moprc`, `mopdl`; `llc [i|s|u|rr|rnr|rej|ui|ua|
//!   disc|dm|sabme|test|xid|frmr]`;
//! - `[src|dst] host`, `net A/len`, `net A mask M` (also partial: `net 10.1`, `mask 255.255`),
//!   `decnet host AREA.NODE`, `[tcp|udp|sctp] port`, `portrange` (`N-M`, one port, service names
//!   such as `smtp-domain`), `ether host|src|dst` in every MAC notation, `[ether] broadcast`,
//!   `[ether|ip|ip6] multicast`, `ip broadcast` (with [`FilterOptions::netmask`]),
//!   `[ether|ip|ip6|iso|isis] proto` (numbers or names), `len`, `greater`, `less`;
//! - encapsulations, each with an optional id, after which everything in the text looks
//!   inside: `vlan [id]`, `mpls [label]`, `pppoed`, `pppoes [session]`, `geneve [vni]`,
//!   `vxlan [vni]` (libpcap 1.11's);
//! - `inbound`, `outbound`: the kernel's packet type on AF_PACKET sockets; everywhere else
//!   (XDP, the interpreter) every packet is a received one; for a file's packets
//!   ([`FilterOptions::savefile`]) libpcap's error;
//! - `and`/`&&`, `or`/`||`, `not`/`!` (and/or have one precedence, left to right);
//!   `proto[offset:size]` with `+ - * / % & | ^ << >>` and `= != < <= > >=`, and the named
//!   constants (`tcpflags`, `tcp-syn`, `icmptype`, `icmp-echo`, `icmp6-echo`, ...).
//!
//! Service and IP protocol names come from a built-in copy of Debian's `/etc/services` and
//! `/etc/protocols` (a filter compiles the same everywhere). Port and transport-offset tests
//! look at the first IPv4 fragment only, through the variable IPv4 header length, as
//! libpcap's do.
//!
//! Not supported: host and network names (give addresses), `gateway`, `protochain`, `ifindex`,
//! `byte`, link types other than Ethernet. A program longer than the kernel's 4096
//! instructions, or nesting deeper than 200 levels, is a [`FilterError`]; long `and`/`or`
//! chains cost no stack.

//! # VLAN tags: the same packets on every rung
//! An expression is evaluated on the frame as fastpath hands it out, VLAN tags in place, on
//! every rung: the packets a filter selects are the ones `tcpdump -r` selects from the file
//! fastpath wrote with it. On the AF_PACKET rungs this takes care: Linux moves a received
//! frame's outer 802.1Q/802.1ad tag out of the bytes before socket filters run, so the program
//! attached there ([`Filter::socket_program`]) reads the tag through the kernel's ancillary
//! loads and the bytes after it 4 bytes earlier. (libpcap's live captures differ: there `ip`
//! also matches tagged IPv4 frames and `udp[...]`-style offsets after `vlan` are off when the
//! first tag is in metadata.) Match tagged traffic with `vlan`: `vlan and udp port 53`, or
//! `udp port 53 or (vlan and udp port 53)` for both.
//!
//! A raw program ([`Filter::from_insns`], `--bpf-file`) runs as given: on the AF_PACKET rungs
//! it sees the kernel's stripped frame and may read the tag with the ancillary loads (as the
//! programs `tcpdump -i IF -ddd` prints do); on `xdp` and `dpdk`, and in [`run`], tags are in
//! the bytes and the ancillary VLAN loads read 0.
//!
//! # Guarantees
//! Sans-IO (but for [`FilterOptions::interface`], which reads an interface's netmask) and free
//! of `unsafe`. Parsing and compiling never panic: bad input is a
//! [`FilterError`] with the column of the offending token. [`run`] never panics and never
//! reads out of bounds.
//!
//! Implementation: `lex.rs` (tokens), `parse/` (grammar and AST), `gen/` (classic BPF),
//! `opt.rs` (reloads, decided jumps and dead code removed), `cbpf/` (instruction constructors
//! over the kernel's `sock_filter`, checker, interpreter; `text.rs`: the text forms),
//! `socket.rs` (the AF_PACKET form), `ebpf.rs` (classic to eBPF for XDP).

pub mod cbpf;
pub(crate) mod ebpf;
mod gen;
mod lex;
mod opt;
mod parse;

use std::fmt;

mod socket;

pub use cbpf::{run, run_with_meta, run_with_vlan, Insn, Meta, VlanTag};

/// An error in a filter expression (or a `-ddd` program text), pointing at where it is.
///
/// Its `Display` is the message and, below it, the expression with a caret under the column:
///
/// ```text
/// error at column 14: expected a port number after 'port', found 'foo' (not a known service name)
///   tcp and port foo
///                ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// The text that was parsed.
    pub expr: String,
    /// 1-based column (in characters) of the offending token; 0 when the error is about the
    /// whole text.
    pub column: usize,
    /// What is wrong, lowercase, without the position.
    pub message: String,
}

impl FilterError {
    pub(crate) fn new(expr: &str, column: usize, message: String) -> FilterError {
        FilterError {
            expr: expr.to_string(),
            column,
            message,
        }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column == 0 {
            return write!(f, "error in filter: {}", self.message);
        }
        write!(f, "error at column {}: {}", self.column, self.message)?;
        // The caret line only helps for one-line expressions; of a long one, show the part
        // around the column.
        if !self.expr.contains('\n') {
            const SIDE: usize = 40;
            let chars: Vec<char> = self.expr.chars().collect();
            let at = self.column - 1;
            let from = at.saturating_sub(SIDE);
            let to = (at + SIDE).min(chars.len());
            let mut shown: String = chars[from..to].iter().collect();
            let mut pad = at - from;
            if from > 0 {
                shown.insert_str(0, "...");
                pad += 3;
            }
            if to < chars.len() {
                shown.push_str("...");
            }
            write!(f, "\n  {shown}\n  {}^", " ".repeat(pad))?;
        }
        Ok(())
    }
}

/// How [`Filter::compile`] compiles an expression: the accepting return value, and what it
/// needs to know of the capture interface.
///
/// ```
/// use fastpath::filter::{Filter, FilterOptions};
///
/// let mask = [255, 255, 255, 0].into();
/// let f = Filter::compile("ip broadcast", FilterOptions::new().netmask(mask))?;
/// let mut frame = vec![0u8; 34];
/// frame[12] = 0x08; // IPv4
/// frame[30..34].copy_from_slice(&[10, 0, 0, 255]); // destination
/// assert!(f.matches(&frame, 34));
/// assert!(Filter::new("ip broadcast").is_err()); // no netmask: libpcap's error
/// # Ok::<(), fastpath::filter::FilterError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterOptions {
    snaplen: u32,
    netmask: Option<std::net::Ipv4Addr>,
    savefile: bool,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions::new()
    }
}

impl FilterOptions {
    /// Snapshot length [`MAX_SNAPLEN`](crate::limits::MAX_SNAPLEN), no netmask.
    pub const fn new() -> FilterOptions {
        FilterOptions {
            snaplen: crate::limits::MAX_SNAPLEN,
            netmask: None,
            savefile: false,
        }
    }

    /// The accepting return value: the bytes of a matching packet to keep. 0 means the whole
    /// packet ([`MAX_SNAPLEN`](crate::limits::MAX_SNAPLEN)), as `tcpdump -s 0`.
    pub const fn snaplen(mut self, snaplen: u32) -> FilterOptions {
        self.snaplen = if snaplen == 0 {
            crate::limits::MAX_SNAPLEN
        } else {
            snaplen
        };
        self
    }

    /// The IPv4 netmask of the capture interface, which `ip broadcast` needs (tcpdump takes
    /// it from the interface given with `-i`). Without one, `ip broadcast` is an error.
    pub const fn netmask(mut self, netmask: std::net::Ipv4Addr) -> FilterOptions {
        self.netmask = Some(netmask);
        self
    }

    /// Compile for packets read from a file (run with [`Filter::run`] over a capture file's
    /// records): `inbound` and `outbound` are then libpcap's error, as `tcpdump -r` gives (a
    /// file keeps no direction). Without it, [`Filter::run`] takes every packet for a received
    /// one.
    pub const fn savefile(mut self) -> FilterOptions {
        self.savefile = true;
        self
    }

    /// The netmask of the first IPv4 address of `interface`, as `tcpdump -i` takes it (the
    /// one thing here that asks the system); 0.0.0.0 if it has none (then `ip broadcast`
    /// matches 255.255.255.255 and 0.0.0.0 only, as with tcpdump).
    ///
    /// # Errors
    /// [`Error`](crate::Error) if the interface addresses cannot be read.
    pub fn interface(self, interface: &str) -> crate::Result<FilterOptions> {
        let mask = crate::sys::interface_ipv4_netmask(interface)?;
        Ok(self.netmask(mask.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)))
    }
}

impl std::error::Error for FilterError {}

/// A compiled filter: a checked classic BPF program.
///
/// Its accepting return value is the snapshot length it was compiled with
/// ([`MAX_SNAPLEN`](crate::limits::MAX_SNAPLEN) by [`Filter::new`], as `tcpdump -d` prints);
/// [`Config::filter`](crate::Config::filter) lowers it to the capture's snapshot length when
/// attaching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    prog: Vec<Insn>,
    source: Option<String>,
}

impl Filter {
    /// Compiles a tcpdump expression (an empty one accepts everything).
    ///
    /// # Errors
    /// [`FilterError`] with the column of the offending token.
    pub fn new(expr: &str) -> Result<Filter, FilterError> {
        Filter::with_snaplen(expr, crate::limits::MAX_SNAPLEN)
    }

    /// Compiles `expr` with `snaplen` as the accepting return value (0: the whole packet,
    /// as `tcpdump -s 0`).
    ///
    /// # Errors
    /// As [`Filter::new`].
    pub fn with_snaplen(expr: &str, snaplen: u32) -> Result<Filter, FilterError> {
        Filter::compile(expr, FilterOptions::new().snaplen(snaplen))
    }

    /// Compiles `expr` with `options`.
    ///
    /// # Errors
    /// As [`Filter::new`]; also `ip broadcast` without a netmask in `options`.
    pub fn compile(expr: &str, options: FilterOptions) -> Result<Filter, FilterError> {
        let env = parse::Env {
            netmask: options.netmask.map(u32::from),
            savefile: options.savefile,
        };
        let (ast, regs) = parse::parse(expr, env)?;
        let prog = gen::compile(&ast, options.snaplen, regs)
            .and_then(opt::optimize)
            .map_err(|m| FilterError::new(expr, 0, m))?;
        if prog.len() > cbpf::BPF_MAXINSNS {
            return Err(FilterError::new(
                expr,
                0,
                format!(
                    "the program needs {} instructions, more than the kernel's {} (simplify \
                     the filter: use 'portrange' or 'net' for runs of ports or addresses)",
                    prog.len(),
                    cbpf::BPF_MAXINSNS
                ),
            ));
        }
        debug_assert!(
            cbpf::check(&prog).is_ok(),
            "generated programs pass the checker"
        );
        Ok(Filter {
            prog,
            source: Some(expr.to_string()),
        })
    }

    /// A filter from raw instructions (checked as the kernel would).
    ///
    /// # Errors
    /// [`FilterError`] (column 0) saying what [`cbpf::check`] refused.
    pub fn from_insns(prog: Vec<Insn>) -> Result<Filter, FilterError> {
        cbpf::check(&prog).map_err(|e| FilterError::new("", 0, e.to_string()))?;
        Ok(Filter { prog, source: None })
    }

    /// Reads a program in `tcpdump -ddd` form (see [`cbpf::parse_decimal`]) and checks it.
    ///
    /// # Errors
    /// [`FilterError`]: column 0, the message names the line.
    pub fn from_decimal(text: &str) -> Result<Filter, FilterError> {
        let prog = cbpf::parse_decimal(text).map_err(|e| FilterError::new("", 0, e.to_string()))?;
        Filter::from_insns(prog)
    }

    /// The instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.prog
    }

    /// The expression it was compiled from, if any.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Runs the program over a packet: the verdict (0: reject, else bytes to keep). `data` is
    /// the captured bytes starting at the Ethernet header, `wirelen` the length on the wire.
    #[inline]
    pub fn run(&self, data: &[u8], wirelen: u32) -> u32 {
        cbpf::run(&self.prog, data, wirelen)
    }

    /// Whether the packet matches (the program returns non-zero).
    #[inline]
    pub fn matches(&self, data: &[u8], wirelen: u32) -> bool {
        self.run(data, wirelen) != 0
    }

    /// The program as attached to AF_PACKET sockets (`recv`, `recv-batch`, `mmap`): for a
    /// compiled expression, rewritten to read an outer VLAN tag the kernel moved out of the
    /// frame as if it were still in place (see [the module docs](self)), so it matches the same
    /// frames as [`Filter::run`] does on the frames the capture hands out; a raw program as
    /// given.
    ///
    /// # Errors
    /// The rewritten program would be longer than the kernel's 4096 instructions, or the
    /// expression leaves no 2 scratch memory words free for the rewrite.
    pub fn socket_program(&self) -> Result<Vec<Insn>, FilterError> {
        match &self.source {
            Some(expr) => socket::for_socket(&self.prog)
                .and_then(opt::optimize)
                .map_err(|m| FilterError::new(expr, 0, m)),
            None => Ok(self.prog.clone()),
        }
    }

    /// The program with every accepting `ret #k` lowered to at most `snaplen` (what the kernel
    /// then truncates packets to).
    pub fn clamped(&self, snaplen: u32) -> Vec<Insn> {
        clamp(&self.prog, snaplen)
    }

    /// [`Filter::socket_program`] with its accepting returns lowered to at most `snaplen`.
    ///
    /// # Errors
    /// As [`Filter::socket_program`].
    pub fn socket_program_clamped(&self, snaplen: u32) -> Result<Vec<Insn>, FilterError> {
        Ok(clamp(&self.socket_program()?, snaplen))
    }

    /// `tcpdump -d` form.
    pub fn listing(&self) -> cbpf::Listing<'_> {
        cbpf::Listing(&self.prog)
    }

    /// `tcpdump -dd` form (a C array).
    pub fn c_array(&self) -> cbpf::CArray<'_> {
        cbpf::CArray(&self.prog)
    }

    /// `tcpdump -ddd` form (count, then `code jt jf k` in decimal).
    pub fn decimal(&self) -> cbpf::Decimal<'_> {
        cbpf::Decimal(&self.prog)
    }
}

/// `prog` with every accepting `ret #k` lowered to at most `snaplen`.
fn clamp(prog: &[Insn], snaplen: u32) -> Vec<Insn> {
    prog.iter()
        .map(|i| {
            if i.code == cbpf::BPF_RET | cbpf::BPF_K && i.k > snaplen {
                Insn::ret(snaplen)
            } else {
                *i
            }
        })
        .collect()
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::new(s)
    }
}

#[cfg(test)]
mod test;
