//! The one error type of the library.
//!
//! Every variant names the problem and, where there is one, the fix. Display messages are lowercase
//! with no trailing period. The hot path never builds an [`Error`]: "no packet yet" is an empty
//! batch, not an error.

use std::io;

/// Result alias used throughout fastpath.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when opening or driving a receive handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The interface name does not exist in the current network namespace.
    #[error("no such interface `{name}` (list interfaces with `ip link`)")]
    NoSuchInterface {
        /// The name that was asked for.
        name: String,
    },
    /// The interface exists but is administratively or operationally down.
    #[error("interface `{name}` is down (bring it up with `ip link set {name} up`)")]
    InterfaceDown {
        /// The interface name.
        name: String,
    },
    /// The calling process lacks a capability.
    #[error("{call}: operation not permitted: needs {needs} (run as root or grant it: `setcap cap_net_raw,cap_net_admin+ep <binary>`)")]
    NotPermitted {
        /// The syscall or operation that was refused.
        call: &'static str,
        /// The capability that would allow it, e.g. `CAP_NET_RAW`.
        needs: &'static str,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid {field}: {why}")]
    InvalidConfig {
        /// The option at fault, spelled as the user wrote it where possible (e.g. `snaplen`).
        field: &'static str,
        /// What is wrong and what would be accepted.
        why: String,
    },
    /// The backend cannot work here (kernel, build or interface lacks something).
    #[error("backend `{backend}` unsupported: {why} ({fix})")]
    Unsupported {
        /// The backend name (`recv`, `mmap`, `xdp`, `dpdk`).
        backend: &'static str,
        /// What is missing.
        why: String,
        /// What would make it work.
        fix: &'static str,
    },
    /// The kernel could not give us the memory we asked for.
    #[error("{what}: cannot allocate {asked} bytes ({why})")]
    OutOfMemory {
        /// What was being allocated (e.g. `PACKET_RX_RING`).
        what: &'static str,
        /// How many bytes were asked for.
        asked: u64,
        /// What limits it and how to lower the request.
        why: String,
    },
    /// The interface went away while it was in use.
    #[error("interface `{name}` disappeared while capturing")]
    InterfaceGone {
        /// The interface name.
        name: String,
    },
    /// A capture file could not be created or opened for writing.
    #[error("cannot create capture file `{path}`: {source} (check that the directory exists and is writable)")]
    CreateOutput {
        /// The path, or `-` for standard output.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing a capture file or stream failed; no further packets are written to it.
    ///
    /// A regular file has been cut back to its last complete record first, so it still parses
    /// (`note` says so, or says that cutting back failed too).
    #[error(
        "cannot write capture file `{path}`: {}{source}; kept {kept} packets, {note}",
        disk_full_prefix(source)
    )]
    Output {
        /// The path, or `-` for standard output.
        path: String,
        /// The OS error. `ENOSPC` is the disk being full; `EPIPE` means the reader of a pipe
        /// went away (see [`Error::is_broken_pipe`]).
        #[source]
        source: io::Error,
        /// Packets that are complete in the output.
        kept: u64,
        /// What happened to the partly written data, and the fix.
        note: &'static str,
    },
    /// Bytes handed to the capture-file reader are not a well-formed pcap or pcapng file.
    #[error(
        "invalid capture file at byte {offset}: {why} (is it a complete pcap or pcapng file?)"
    )]
    InvalidCapture {
        /// Byte offset of the header, block or record at fault.
        offset: usize,
        /// What is wrong there.
        why: String,
    },
    /// The kernel verifier refused a BPF program. `log` is the verifier log (`log_level = 1`),
    /// whose last lines name the failing instruction and the reason.
    #[error("the kernel verifier rejected `{prog}`:\n{log}")]
    VerifierRejected {
        /// The program name given at load time.
        prog: &'static str,
        /// The verifier log.
        log: String,
    },
    /// An XDP program is already attached to the interface and replacing it was not asked for.
    #[error("interface `{ifname}` (ifindex {ifindex}) already has XDP program `{name}` (id {id}, {mode} mode) attached; attach with `replace: true` (CLI `--xdp-replace`) to replace it, or remove it first")]
    XdpAlreadyAttached {
        /// The interface name.
        ifname: String,
        /// The interface index.
        ifindex: u32,
        /// The attached program's id (`bpftool prog show id <id>`).
        id: u32,
        /// The attached program's name, `<unknown>` if it could not be read.
        name: String,
        /// The attach mode of that program: `native`, `generic` or `offload`.
        mode: &'static str,
    },
    /// An AF_XDP socket is already bound to this queue (`bind`: `EBUSY`).
    #[error("queue {queue} of `{ifname}` already has an AF_XDP socket (another process, or one not yet closed); close it or use another queue")]
    XdpQueueBusy {
        /// The interface name.
        ifname: String,
        /// The queue id.
        queue: u32,
    },
    /// A BPF program could not be assembled (a bug in the code that emits it).
    #[error("cannot assemble bpf program: {0}")]
    BpfAssemble(#[from] AsmError),
    /// A netlink request was refused; `detail` is the kernel's extended-ack message.
    #[error("{call}: {source}: {detail}")]
    NetlinkRefused {
        /// The request, e.g. `RTM_SETLINK(IFLA_XDP)`.
        call: &'static str,
        /// The errno the kernel answered with.
        #[source]
        source: io::Error,
        /// The kernel's explanation (`NLMSGERR_ATTR_MSG`).
        detail: String,
    },
    /// AF_XDP would take traffic of an interface the host uses away from its kernel stack.
    #[error("interface `{name}` has IP addresses ({addrs}): -b xdp redirects {} to fastpath and away from the kernel stack, so the host's own connections on it {} while capturing; capture on a dedicated port (mirror/SPAN, veth), or confirm with --take (Config::take)", taken_what(filter.as_deref()), taken_effect(filter.as_deref()))]
    WouldTakeTraffic {
        /// The interface name.
        name: String,
        /// Its addresses, comma-separated.
        addrs: String,
        /// The filter expression, if one selects what is taken (`None`: every packet).
        filter: Option<String>,
    },
    /// A value the kernel wrote into a ring it shares with fastpath is impossible (out of
    /// bounds, misaligned, overlapping, or more entries than the ring holds). fastpath stops
    /// reading the ring rather than trust it; the handle is unusable from then on.
    #[error("the kernel's {ring} holds an impossible value: {why} (value {value}); fastpath stopped reading it rather than trust it (a kernel bug or memory corruption: open a new receiver, and please report it)")]
    KernelRing {
        /// Which ring: `TPACKET_V3 block`, `AF_XDP rx ring`, ...
        ring: &'static str,
        /// What is wrong with the value.
        why: &'static str,
        /// The value read.
        value: u64,
    },
    /// The capture file path is a symbolic link that fastpath will not follow: it lies in a
    /// directory others can write to and belongs to another user (it may have been planted to
    /// make a privileged capture overwrite another file).
    #[error("capture file `{path}` is a symbolic link owned by another user in a directory others can write to; fastpath does not write through it (remove it, or write to another path)")]
    OutputIsForeignSymlink {
        /// The path given.
        path: String,
    },
    /// The DPDK Environment Abstraction Layer could not start (`dpdk` backend). It starts once
    /// per process: after this error every `dpdk` handle fails the same way until a restart.
    #[error("dpdk: {reason} ({fix})")]
    EalInit {
        /// `rte_eal_init(<arguments>)` and the EAL's reason (`rte_strerror(rte_errno)`).
        reason: String,
        /// What to do: huge pages, privileges, EAL arguments.
        fix: &'static str,
    },
    /// A DPDK device could not be attached, configured or started (`dpdk` backend).
    #[error("dpdk device `{device}`: {call}: {reason} ({fix})")]
    DpdkDevice {
        /// The device as given (`net_af_packet0,iface=eth0`, `0000:03:00.0`, a port number).
        device: String,
        /// The DPDK call that failed, e.g. `rte_dev_probe`.
        call: &'static str,
        /// DPDK's reason.
        reason: String,
        /// What to do.
        fix: &'static str,
    },
    /// A system call failed in a way not covered above.
    #[error("{call}: {source}")]
    Syscall {
        /// The call that failed, e.g. `setsockopt(PACKET_RX_RING)`.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wrap the current `errno` as a [`Error::Syscall`] for `call`.
    pub(crate) fn last_os(call: &'static str) -> Self {
        Error::Syscall {
            call,
            source: io::Error::last_os_error(),
        }
    }

    /// Whether the error is the user's to fix by changing arguments (usage error, CLI exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::InvalidConfig { .. })
    }

    /// The raw OS error code, if the error came from a syscall (or a refused netlink request).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Syscall { source, .. }
            | Error::NetlinkRefused { source, .. }
            | Error::CreateOutput { source, .. }
            | Error::Output { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether writing failed because the reader of a pipe went away (`EPIPE`), as in
    /// `fastpath capture -w - | head`: the CLI then exits 0, like tcpdump.
    pub fn is_broken_pipe(&self) -> bool {
        self.raw_os_error() == Some(libc::EPIPE)
    }
}

/// What `-b xdp` takes: every packet, or those a filter accepts.
fn taken_what(filter: Option<&str>) -> String {
    match filter {
        None => "every packet of the queue".to_owned(),
        Some(f) => format!("every packet the filter `{f}` accepts"),
    }
}

/// What taking it does to the host.
fn taken_effect(filter: Option<&str>) -> &'static str {
    match filter {
        None => "would stall",
        Some(_) => "that match it (an SSH session, say, if it matches) would stall",
    }
}

/// `"disk full: "` when `source` is `ENOSPC`, so the message says so in plain words.
fn disk_full_prefix(source: &io::Error) -> &'static str {
    if source.raw_os_error() == Some(libc::ENOSPC) {
        "disk full: "
    } else {
        ""
    }
}

/// Why the eBPF assembler ([`crate::bpf::insn::Program::finish`]) refused a program. Defined here,
/// at the bottom of the module graph, because [`Error`] wraps it; re-exported as
/// `bpf::insn::AsmError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AsmError {
    /// A jump refers to a label that was never bound.
    #[error("jump at instruction {at} targets label {label} which was never bound")]
    UnboundLabel {
        /// Index of the jump instruction.
        at: usize,
        /// The label number.
        label: u32,
    },
    /// A label was bound twice.
    #[error("label {label} bound twice (at instructions {first} and {second})")]
    LabelBoundTwice {
        /// The label number.
        label: u32,
        /// Where it was bound first.
        first: usize,
        /// Where it was bound again.
        second: usize,
    },
    /// The jump distance does not fit the 16-bit offset field.
    #[error(
        "jump at instruction {at} needs offset {offset}, outside the 16-bit range -32768..=32767"
    )]
    OffsetOutOfRange {
        /// Index of the jump instruction.
        at: usize,
        /// The offset that would be needed.
        offset: i64,
    },
    /// A label from another `Program` was used.
    #[error("label {label} does not belong to this program")]
    ForeignLabel {
        /// The label number.
        label: u32,
    },
}
