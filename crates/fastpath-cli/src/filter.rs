//! `fastpath filter`: compile a tcpdump expression and print the classic BPF program; and the
//! filter of `fastpath capture` (the expression words, `-F FILE` or `--bpf-file FILE`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fastpath::filter::{cbpf, Filter, FilterOptions};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output form: `-d` readable (like `tcpdump -d`, the default), `-dd` a C array, `-ddd`
    /// decimal `code jt jf k` lines after a count (like `tcpdump -ddd`; what `--bpf-file`
    /// reads).
    #[arg(short = 'd', action = clap::ArgAction::Count)]
    dump: u8,
    /// Print the form attached to AF_PACKET sockets (`-b recv`, `recv-batch`, `mmap`): it reads
    /// an outer VLAN tag the kernel moved out of the frame through ancillary loads (`vlanp`,
    /// `vlan_tci`, `vlan_tpid`), so it matches what the other forms match on the frame with
    /// its tag in place.
    #[arg(long)]
    socket: bool,
    /// The accepting return value (the snapshot length); 0 means the whole packet (262144),
    /// as in tcpdump.
    #[arg(short = 's', long = "snaplen", default_value_t = fastpath::MAX_SNAPLEN)]
    snaplen: u32,
    /// Compile as for capturing on INTERFACE: `ip broadcast` takes its IPv4 netmask (as
    /// `tcpdump -i INTERFACE -d`). Without it, `ip broadcast` is an error.
    #[arg(short = 'i', long = "interface", value_name = "INTERFACE")]
    interface: Option<String>,
    /// Read the expression from FILE (`#` starts a comment to the end of the line), as
    /// `tcpdump -F`.
    #[arg(short = 'F', value_name = "FILE", conflicts_with = "expression")]
    file: Option<PathBuf>,
    /// The filter expression; several words are joined with spaces, as tcpdump does. Options
    /// may follow it (`fastpath filter udp port 53 -ddd`); after `--` every word is part of it.
    #[arg(
        value_name = "EXPRESSION",
        required_unless_present = "file",
        allow_negative_numbers = true
    )]
    expression: Vec<String>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let expr = match &args.file {
        Some(path) => read_expression_file(path)?,
        None => args.expression.join(" "),
    };
    let mut options = FilterOptions::new().snaplen(args.snaplen);
    if let Some(interface) = &args.interface {
        options = options.interface(interface)?;
    }
    let f = Filter::compile(&expr, options)?;
    let prog = if args.socket {
        f.socket_program()?
    } else {
        f.insns().to_vec()
    };
    let mut out = std::io::stdout().lock();
    match args.dump {
        0 | 1 => write!(out, "{}", cbpf::Listing(&prog))?,
        2 => write!(out, "{}", cbpf::CArray(&prog))?,
        _ => write!(out, "{}", cbpf::Decimal(&prog))?,
    }
    out.flush()?;
    Ok(())
}

/// The largest `-F` file read: far more than any filter the kernel can run.
const MAX_EXPRESSION_FILE: u64 = 4 << 20;
/// The largest `--bpf-file` read: a program of 4096 instructions in `-ddd` form is about
/// 110 KiB.
const MAX_BPF_FILE: u64 = 1 << 20;

/// A usage error about the file of `option`.
fn file_error(option: &'static str, why: String) -> anyhow::Error {
    fastpath::Error::InvalidConfig { field: option, why }.into()
}

/// The text of `path`, at most `max` bytes (`/dev/zero` must not exhaust memory).
fn read_capped(option: &'static str, path: &Path, max: u64) -> Result<String> {
    let file = std::fs::File::open(path)
        .map_err(|e| file_error(option, format!("cannot open {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {option} {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(file_error(
            option,
            format!(
                "{} is larger than {} KiB, more than any filter needs: give the right file",
                path.display(),
                max >> 10
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        file_error(
            option,
            format!(
                "{} is not text (UTF-8): give the right file",
                path.display()
            ),
        )
    })
}

/// The expression in `path` (`-F`): its lines joined, `#` comments dropped, as tcpdump reads
/// it.
pub(crate) fn read_expression_file(path: &Path) -> Result<String> {
    let text = read_capped("-F", path, MAX_EXPRESSION_FILE)?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Where the filter of `fastpath capture` comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sources<'a> {
    /// The expression words after the options.
    pub(crate) words: &'a [String],
    /// `-F FILE`.
    pub(crate) expression_file: Option<&'a Path>,
    /// `--bpf-file FILE`.
    pub(crate) bpf_file: Option<&'a Path>,
    /// `-i`: `ip broadcast` takes its netmask; `None`: reading a file (`-r`), where
    /// `ip broadcast` has no netmask and `inbound`/`outbound` do not apply (libpcap's errors).
    pub(crate) interface: Option<&'a str>,
}

/// The filter of `fastpath capture`: the expression words, `-F FILE`, or a `tcpdump -ddd`
/// file (`--bpf-file`); at most one of them.
pub(crate) fn from_capture_args(src: Sources<'_>) -> Result<Option<Filter>> {
    let given = usize::from(!src.words.is_empty())
        + usize::from(src.expression_file.is_some())
        + usize::from(src.bpf_file.is_some());
    if given > 1 {
        return Err(fastpath::Error::InvalidConfig {
            field: "filter",
            why: "give one of a filter expression, -F FILE or --bpf-file FILE, not several".into(),
        }
        .into());
    }
    if let Some(path) = src.bpf_file {
        let text = read_capped("--bpf-file", path, MAX_BPF_FILE)?;
        let f = Filter::from_decimal(&text)
            .with_context(|| format!("--bpf-file {}", path.display()))?;
        return Ok(Some(f));
    }
    let expr = match src.expression_file {
        Some(path) => read_expression_file(path)?,
        None if src.words.is_empty() => return Ok(None),
        None => src.words.join(" "),
    };
    let options = match src.interface {
        Some(i) => FilterOptions::new().interface(i)?,
        None => FilterOptions::new().savefile(),
    };
    Ok(Some(Filter::compile(&expr, options)?))
}
