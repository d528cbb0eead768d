//! Tier 1: `fastpath lab --quick` end to end: the JSON's shape, every fastpath row that is not
//! "unavailable" delivered packets, and nothing is left behind (no namespace, no XDP program).
//! Needs root (CI sets FASTPATH_REQUIRE_PRIV=1 so it does not skip there).

use std::process::Command;

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
        .args(["lab", "--quick", "--json"])
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

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["machine"]["kernel"].is_string());
    assert!(v["machine"]["cpu_model"].is_string());
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(v["generator"]["method"].is_string());
    assert!(v["generator"]["rate_pps"].as_f64().unwrap() > 0.0);
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
        let status = r["status"].as_str().unwrap();
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
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));

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

#[test]
fn bad_flags_exit_2() {
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
