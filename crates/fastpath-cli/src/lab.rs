//! `fastpath lab`: build a two-namespace veth testbed, drive it with the XDP live-frames
//! generator, and measure every receive path (fastpath's and the peers') side by side. The work
//! is in the `fastpath-lab` crate; this is flags and output. `--compare A.json B.json` reads two
//! saved runs instead of measuring.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fastpath_lab::compare::Comparison;
use fastpath_lab::{gen, LabConfig, Layout, Load, RowSpec};

/// Flags that measure: `--compare` takes none of them.
const MEASURING: [&str; 16] = [
    "quick",
    "layout",
    "sizes",
    "reps",
    "rep_seconds",
    "rows",
    "rate",
    "flows",
    "gen_repeat",
    "rcvbuf",
    "json",
    "plot",
    "install_peers",
    "seed",
    "load",
    "loss",
];

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Under a minute: one-core layout, 64-byte frames, 3 rounds of 1 s, no dpdk-testpmd or
    /// netring rows (add them with --rows).
    #[arg(long = "quick")]
    quick: bool,
    /// Core layout(s): one-core, split or both (default both; --quick: one-core).
    #[arg(long = "layout", value_parser = ["one-core", "split", "both"])]
    layout: Option<String>,
    /// Frame sizes in bytes, FCS excluded (default 64,100; --quick: 64).
    #[arg(long = "sizes", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(gen::MIN_SIZE as i64..=gen::MAX_SIZE as i64))]
    sizes: Vec<u16>,
    /// Rounds: each runs every row once, in its own random order; rows get a median and its
    /// 95% confidence interval over the rounds, ratios are paired within rounds (default 5;
    /// --quick: 3).
    #[arg(long = "reps", value_parser = clap::value_parser!(u32).range(1..=100))]
    reps: Option<u32>,
    /// Seed of the round order (printed and saved in the JSON; default: a fresh one). The same
    /// seed repeats a run's order.
    #[arg(long = "seed")]
    seed: Option<u64>,
    /// Offered load: `max`, the generator as fast as it goes (its rate is measured and shown),
    /// or `ndr`, per row the highest offered rate at which the receiver loses at most --loss
    /// (RFC 2544 no-drop rate).
    #[arg(long = "load", value_parser = ["max", "ndr"], default_value = "max")]
    load: String,
    /// With --load ndr: the loss allowed, percent of the offered packets (default 0.1).
    #[arg(long = "loss", value_name = "PCT", value_parser = parse_loss)]
    loss: Option<f64>,
    /// Seconds per repetition (default 3; --quick: 1).
    #[arg(long = "rep-seconds", value_parser = parse_secs)]
    rep_seconds: Option<Duration>,
    /// Only these rows (comma-separated): recv, recv-batch, mmap, xdp, xdp-busy-poll, dpdk,
    /// mmap-filtered, xdp-filtered (filter `udp src port 1024`, 1 in 10 generator flows),
    /// tcpdump, netsniff-ng, testpmd-af_packet, testpmd-af_xdp, netring-v3, netring-xdp,
    /// xdp-drop.
    #[arg(long = "rows", value_delimiter = ',', value_parser = parse_row)]
    rows: Vec<RowSpec>,
    /// Generator rate limit in frames per second (default: as fast as it goes; not with
    /// --load ndr, which chooses the rates itself).
    #[arg(long = "rate", value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// UDP flows the generator cycles through.
    #[arg(long = "flows", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=i64::from(gen::MAX_FLOWS)))]
    flows: u16,
    /// Frames per XDP live-frames call of the generator (each call has a fixed cost of ~40 ms;
    /// larger calls are faster but stop later).
    #[arg(long = "gen-repeat", value_parser = clap::value_parser!(u32).range(64..))]
    gen_repeat: Option<u32>,
    /// Socket receive buffer in bytes for the recv and recv-batch rows (default: fastpath's,
    /// 32 MiB).
    #[arg(long = "rcvbuf")]
    rcvbuf: Option<usize>,
    /// Write the results as JSON to FILE.
    #[arg(long = "json")]
    json: Option<PathBuf>,
    /// Draw the ladder as an SVG bar chart (log scale) into FILE.
    #[arg(long = "plot")]
    plot: Option<PathBuf>,
    /// Install the peer tools first (apt-get install -y tcpdump netsniff-ng dpdk dpdk-dev).
    #[arg(long = "install-peers")]
    install_peers: bool,
    /// Measure nothing: compare two saved runs (--json files), per row and per ratio the
    /// change from A to B with its 95% CI.
    #[arg(long = "compare", num_args = 2, value_names = ["A.json", "B.json"],
          conflicts_with_all = MEASURING)]
    compare: Vec<PathBuf>,
}

fn parse_loss(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("{s} is out of range (0 to less than 100 percent)"));
    }
    Ok(v)
}

/// A usage error (exit 2), as clap reports its own.
fn usage(msg: &str) -> ! {
    clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{msg}\n")).exit()
}

fn parse_secs(s: &str) -> std::result::Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&v) {
        return Err(format!("{s} is out of range (0.1 to 3600 seconds)"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_row(s: &str) -> std::result::Result<RowSpec, String> {
    s.parse()
}

/// Creates `path` now, so that a bad path fails before minutes of measuring.
fn create(path: &Path) -> Result<File> {
    File::create(path).with_context(|| format!("cannot create `{}`", path.display()))
}

pub(crate) fn run(args: Args) -> Result<()> {
    if let [a, b] = args.compare.as_slice() {
        return compare(a, b);
    }
    let mut cfg = if args.quick {
        LabConfig::quick()
    } else {
        LabConfig::full()
    };
    match args.layout.as_deref() {
        Some("one-core") => cfg.layouts = vec![Layout::OneCore],
        Some("split") => cfg.layouts = vec![Layout::Split],
        Some(_) => cfg.layouts = vec![Layout::OneCore, Layout::Split],
        None => {}
    }
    if !args.sizes.is_empty() {
        cfg.sizes = args.sizes.iter().map(|&s| usize::from(s)).collect();
    }
    if let Some(r) = args.reps {
        cfg.rounds = r;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    cfg.load = match (args.load.as_str(), args.loss) {
        ("ndr", loss) => Load::Ndr {
            loss: loss.map_or(Load::DEFAULT_LOSS, |pct| pct / 100.0),
        },
        (_, Some(_)) => usage("--loss applies to --load ndr only"),
        _ => Load::Max,
    };
    if args.rate.is_some() && matches!(cfg.load, Load::Ndr { .. }) {
        usage("--rate cannot be used with --load ndr: the no-drop search chooses the rates");
    }
    if let Some(d) = args.rep_seconds {
        cfg.rep_time = d;
    }
    if !args.rows.is_empty() {
        // Keep table order, drop duplicates.
        cfg.rows = RowSpec::ALL
            .into_iter()
            .filter(|r| args.rows.contains(r))
            .collect();
    }
    cfg.rate = args.rate;
    cfg.flows = args.flows;
    if let Some(r) = args.gen_repeat {
        cfg.repeat = r;
    }
    cfg.rcvbuf = args.rcvbuf;

    fastpath_lab::check_prerequisites()?;
    let mut json = args.json.as_deref().map(create).transpose()?;
    let mut plot = args.plot.as_deref().map(create).transpose()?;
    // Progress is advice: a closed stderr (`2>&1 | head`) must not end a run (eprintln! would
    // panic), the table and the files still come.
    let mut progress = |line: &str| {
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    if args.install_peers {
        fastpath_lab::install_peers(&mut progress)?;
    }
    let stop = crate::stop_flag()?;
    let report = fastpath_lab::run(&cfg, &stop, &mut progress)?;

    let mut out = std::io::stdout().lock();
    let load = match cfg.load {
        Load::Max => "load max".to_owned(),
        Load::Ndr { loss } => format!("load ndr (loss <= {}%)", loss * 100.0),
    };
    writeln!(
        out,
        "\nfastpath lab: {} ({} CPUs), kernel {}; generator {} at {:.2} Mpps; {} rounds x {:.1} s, \
         seed {}, {load}",
        report.machine.cpu_model,
        report.machine.cores,
        report.machine.kernel,
        report.generator.method,
        report.generator.rate_pps / 1e6,
        report.rounds,
        report.rep_seconds,
        report.seed
    )?;
    if let Some(n) = &report.generator.note {
        writeln!(out, "generator note: {n}")?;
    }
    if let Some(b) = report.rcvbuf {
        writeln!(out, "recv rows: socket receive buffer {b} bytes")?;
    }
    write!(out, "{}", report.table())?;
    writeln!(out, "\n{}", report.stability)?;
    out.flush()?;
    if let (Some(f), Some(p)) = (json.as_mut(), args.json.as_deref()) {
        f.write_all(report.to_json().as_bytes())
            .with_context(|| format!("writing `{}`", p.display()))?;
    }
    if let (Some(f), Some(p)) = (plot.as_mut(), args.plot.as_deref()) {
        f.write_all(report.svg().as_bytes())
            .with_context(|| format!("writing `{}`", p.display()))?;
    }
    if report.interrupted || stop.load(Ordering::Relaxed) {
        bail!(
            "interrupted: the testbed is torn down; the table above holds the {} rows measured so far",
            report.rows.len()
        );
    }
    Ok(())
}

/// `--compare A B`: reads both runs and prints the changes.
fn compare(a: &Path, b: &Path) -> Result<()> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read `{}`", p.display()))
    };
    let c = Comparison::from_json(
        &a.display().to_string(),
        &read(a)?,
        &b.display().to_string(),
        &read(b)?,
    )?;
    let mut out = std::io::stdout().lock();
    write!(out, "{c}")?;
    out.flush()?;
    Ok(())
}
