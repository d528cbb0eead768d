//! Tier 1: `fastpath lab --quick` end to end: the JSON's shape (rounds, seed, intervals, stages,
//! ratios with verdicts), every fastpath row that is not "unavailable" delivered packets, and
//! nothing is left behind (no namespace, no XDP program); Ctrl-C keeps the rounds that ran.
//! Needs root (CI sets FASTPATH_REQUIRE_PRIV=1 so it does not skip there). Tier 0:
//! `--compare` on saved runs, flag errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fastpath_testutil::{have_cmd, is_root, require, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_fastpath");

/// Namespaces whose names the lab uses (`fplg-<pid>`, `fplr-<pid>`).
fn lab_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("fplg-") || n.starts_with("fplr-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn quick_lab_writes_json_and_leaves_nothing_behind() {
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let dir = TempDir::new("fastpath-lab-test");
    let json = dir.path().join("lab.json");
    let svg = dir.path().join("lab.svg");
    let child = Command::new(BIN)
        .args(["lab", "--quick", "--seed", "7", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run fastpath lab");
    // The lab names its namespaces after its pid: another lab running on the machine at the same
    // time (a developer's) must not count as a leftover of this one.
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for fastpath lab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fastpath lab failed:\n{stderr}\n{stdout}"
    );
    assert!(stdout.contains("layout one-core"), "{stdout}");
    assert!(
        stdout.contains("3 rounds x 1.0 s, seed 7, load max"),
        "{stdout}"
    );
    assert!(stdout.contains("\nstability: "), "{stdout}");

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["machine"]["kernel"].is_string());
    assert!(v["machine"]["cpu_model"].is_string());
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(v["generator"]["method"].is_string());
    assert!(v["generator"]["rate_pps"].as_f64().unwrap() > 0.0);
    assert_eq!(v["seed"], 7);
    assert_eq!(v["rounds"], 3);
    assert_eq!(v["load"], "max");
    assert_eq!(v["interrupted"], false);
    assert!(v["stability"]["rows"].as_u64().unwrap() >= 6);
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for want in ["recv", "recv-batch", "mmap", "xdp", "xdp-drop", "tcpdump"] {
        assert!(names.contains(&want), "no row {want} in {names:?}");
    }
    for r in rows {
        let kind = r["kind"].as_str().unwrap();
        assert!(["fastpath", "peer", "ceiling"].contains(&kind), "{r}");
        assert_eq!(r["layout"], "one-core");
        assert_eq!(r["size"], 64);
        for k in ["median", "min", "max"] {
            assert!(r["pps"][k].is_number(), "{r}");
        }
        assert!(r["drops"].is_u64(), "{r}");
        assert!(r["noisy"].is_boolean(), "{r}");
        assert!(r["accounted"].is_boolean(), "{r}");
        for k in ["generated", "delivered", "unaccounted"] {
            assert!(r["stages"][k].is_number(), "{r}");
        }
        let status = r["status"].as_str().unwrap();
        if status == "ok" {
            // One repetition per round, each round once; the median inside its interval.
            let rounds: Vec<u64> = r["per_round"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["round"].as_u64().unwrap())
                .collect();
            assert_eq!(rounds, [1, 2, 3], "{r}");
            let ci = r["pps"]["ci95"].as_array().unwrap();
            let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
            let med = r["pps"]["median"].as_f64().unwrap();
            assert!(lo <= med && med <= hi, "{r}");
        }
        if kind == "fastpath" {
            assert!(
                r.get("cpu_ns_per_packet").is_some() || status != "ok",
                "{r}"
            );
            if status != "unavailable" {
                assert_eq!(status, "ok", "{r}");
                assert!(
                    r["pps"]["median"].as_f64().unwrap() > 0.0,
                    "no packets: {r}"
                );
            }
        }
    }
    let ratios = v["ratios"].as_array().unwrap();
    for q in ratios {
        for k in ["row", "peer", "layout"] {
            assert!(q[k].is_string(), "{q}");
        }
        assert_eq!(q["size"], 64);
        assert!(q["median"].as_f64().unwrap() > 0.0, "{q}");
        let ci = q["ci95"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap(), "{q}");
        assert!(
            ["ahead", "level", "behind"].contains(&q["verdict"].as_str().unwrap()),
            "{q}"
        );
    }
    // tcpdump is installed in CI (.ci/run deps): mmap has a best peer, and every unfiltered
    // fastpath row a ratio to the ceiling.
    let has = |row: &str, peer: &str| ratios.iter().any(|q| q["row"] == row && q["peer"] == peer);
    assert!(
        has("mmap", "xdp-drop") && has("xdp", "xdp-drop"),
        "{ratios:?}"
    );
    assert!(
        ratios
            .iter()
            .any(|q| q["row"] == "mmap" && q["best"] == true && q["against"] == "peer"),
        "{ratios:?}"
    );
    assert!(
        !ratios.iter().any(|q| q["row"] == "mmap-filtered"),
        "{ratios:?}"
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains(r#"class="ci""#), "whiskers");

    // Nothing left: no lab namespace, hence no veth and no XDP program on one.
    let ours = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .filter(|n| n.ends_with(&format!("-{pid}")))
            .collect()
    };
    assert!(
        ours(lab_namespaces()).is_empty(),
        "left behind: {:?}",
        lab_namespaces()
    );
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains("fplg0") && !links.contains("fplr0"),
        "{links}"
    );
}

/// Ctrl-C in the middle of a run, its stderr closed: the table and the JSON keep the rounds that
/// ran, the rows cut short say so, the exit code is 1 and the testbed is gone.
#[test]
fn interrupted_lab_keeps_the_rounds_that_ran() {
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let dir = TempDir::new("fastpath-lab-int");
    let json = dir.path().join("lab.json");
    let mut child = Command::new(BIN)
        .args([
            "lab",
            "--layout",
            "one-core",
            "--sizes",
            "64",
            "--rows",
            "recv,mmap,xdp-drop",
            "--reps",
            "20",
            "--rep-seconds",
            "0.3",
            "--json",
        ])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fastpath lab");
    let pid = child.id();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(Ok(line)) = stderr.next() {
        // Four repetitions done: round 1 complete, round 2 begun.
        let done = line.starts_with("[4/");
        seen.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    // Closed as `fastpath lab 2>&1 | head` closes it: the lab must not die of its next
    // progress line.
    drop(stderr);
    assert!(seen.iter().any(|l| l.starts_with("[4/")), "{seen:#?}");
    // SAFETY: kill(2) on our own child's pid; no memory involved.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{seen:#?}");
    assert!(stdout.contains("layout one-core"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["rounds"], 20);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "every row ran in round 1: {rows:?}");
    for r in rows {
        assert_eq!(r["status"], "interrupted", "{r}");
        let n = r["per_round"].as_array().unwrap().len();
        assert!((1..20).contains(&n), "{r}");
        assert_eq!(r["note"], format!("{n} of 20 rounds ran"), "{r}");
    }
    let left: Vec<String> = lab_namespaces()
        .into_iter()
        .filter(|n| n.ends_with(&format!("-{pid}")))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Two saved runs (as `--json` writes them), one with xdp 18 % faster in every round.
fn saved_runs(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let run = |xdp: f64, seed: u64| {
        let row = |name: &str, kind: &str, pps: f64| {
            serde_json::json!({
                "name": name, "kind": kind, "rung": "xdp", "layout": "one-core", "size": 64,
                "status": "ok", "reps": [pps, pps * 1.01, pps * 0.99],
                "per_round": [
                    {"round": 1, "pps": pps}, {"round": 2, "pps": pps * 1.01},
                    {"round": 3, "pps": pps * 0.99}
                ]
            })
        };
        serde_json::json!({
            "machine": {"kernel": "6.18", "cpu_model": "EPYC", "cores": 2},
            "seed": seed, "rounds": 3, "load": "max",
            "rows": [row("xdp", "fastpath", xdp), row("netring-xdp", "peer", 1.0e6)],
        })
        .to_string()
    };
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::fs::write(&a, run(1.0e6, 1)).unwrap();
    std::fs::write(&b, run(1.18e6, 2)).unwrap();
    (a, b)
}

#[test]
fn compare_shows_changes_with_intervals() {
    let dir = TempDir::new("fastpath-lab-cmp");
    let (a, b) = saved_runs(dir.path());
    let out = Command::new(BIN)
        .args(["lab", "--compare"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  xdp one-core 64B: +18% (CI +"),
        "{stdout}"
    );
    assert!(stdout.contains("1.00 -> 1.18 Mpps, up"), "{stdout}");
    assert!(
        stdout.contains("  netring-xdp one-core 64B: +0% (CI -"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  xdp/netring-xdp one-core 64B: +18% (CI +"),
        "{stdout}"
    );
    // Not a lab run: exit 1, naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"rows\": 3}").unwrap();
    let out = Command::new(BIN)
        .args(["lab", "--compare"])
        .arg(&a)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json` is not the JSON of a `fastpath lab"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["lab", "--loss", "1"][..],
        &["lab", "--load", "ndr", "--rate", "1000"],
        &["lab", "--load", "fast"],
        &["lab", "--load", "ndr", "--loss", "100"],
        &["lab", "--compare", "a.json"],
        &["lab", "--compare", "a.json", "b.json", "--quick"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = Command::new(BIN)
        .args(["lab", "--sizes", "20"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["lab", "--rows", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["gen", "-i", "lo", "--dst-mac", "zz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
