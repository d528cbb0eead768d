//! `fastpath filter`: compile a tcpdump expression and print the classic BPF program.

use std::io::Write;

use anyhow::Result;
use fastpath::filter::{cbpf, Filter};

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
    /// The accepting return value (the snapshot length).
    #[arg(short = 's', long = "snaplen", default_value_t = fastpath::MAX_SNAPLEN)]
    snaplen: u32,
    /// The filter expression; several words are joined with spaces, as tcpdump does.
    #[arg(
        value_name = "EXPRESSION",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    expression: Vec<String>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let expr = args.expression.join(" ");
    let f = Filter::with_snaplen(&expr, args.snaplen)?;
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

/// The filter of `fastpath capture`: the trailing expression words, or a `tcpdump -ddd` file.
pub(crate) fn from_capture_args(
    words: &[String],
    bpf_file: Option<&std::path::Path>,
) -> Result<Option<Filter>> {
    use anyhow::Context;
    match (words.is_empty(), bpf_file) {
        (true, None) => Ok(None),
        (false, None) => Ok(Some(Filter::new(&words.join(" "))?)),
        (true, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --bpf-file {}", path.display()))?;
            let f = Filter::from_decimal(&text)
                .with_context(|| format!("--bpf-file {}", path.display()))?;
            Ok(Some(f))
        }
        (false, Some(_)) => Err(fastpath::Error::InvalidConfig {
            field: "filter",
            why: "give either a filter expression or --bpf-file, not both".into(),
        }
        .into()),
    }
}
