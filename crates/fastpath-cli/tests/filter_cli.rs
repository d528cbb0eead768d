//! `fastpath filter` and the filter options of `fastpath capture`: options after the
//! expression (as tcpdump on Linux), `-F FILE`, `-s 0`, size caps on the files read, long
//! filters refused with a usage error (never a crash), and `ip broadcast` with the netmask of
//! `-i` checked against tcpdump (root).

use std::process::Command;

use fastpath::filter::{cbpf, Filter};
use fastpath_testutil::{have_cmd, is_root, require, NetNs, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_fastpath");

/// Exit code, stdout and stderr of `fastpath ARGS`.
fn fastpath(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run fastpath");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = fastpath(args);
    assert_eq!(code, 0, "fastpath {args:?}: {err}");
    out
}

#[test]
fn options_may_follow_the_expression() {
    let want = ok(&["filter", "-ddd", "udp port 53"]);
    assert_eq!(ok(&["filter", "udp port 53", "-ddd"]), want);
    assert_eq!(ok(&["filter", "udp", "port", "53", "-ddd"]), want);
    assert_eq!(ok(&["filter", "udp", "-ddd", "port", "53"]), want);
    assert_eq!(
        ok(&["filter", "udp port 53", "-s", "96"]),
        ok(&["filter", "-s", "96", "udp port 53"])
    );
    // After `--` every word is the expression; negative numbers are words too.
    assert!(ok(&["filter", "--", "-ip[9] = -17"]).contains("neg"));
    assert!(ok(&["filter", "ip[9]", "=", "-17", "-d"]).contains("ldb"));
    // `capture`: `-c 0` after the expression is the option (a usage error about the count),
    // not part of the expression. The check comes before anything opens.
    let (code, _, err) = fastpath(&["capture", "udp", "-i", "lo", "-c", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("count"), "{err}");
}

/// `-s 0` is the whole packet, as `tcpdump -s 0 -d` prints it.
#[test]
fn snaplen_zero_is_the_whole_packet() {
    let out = ok(&["filter", "-s", "0", "ip"]);
    assert!(out.contains("ret      #262144"), "{out}");
    assert!(!out.contains("ret      #1\n"), "{out}");
    if have_cmd("tcpdump") {
        let theirs = Command::new("tcpdump")
            .args(["-s", "0", "-d", "ip"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&theirs.stdout), out);
    }
}

#[test]
fn expression_from_a_file() {
    let dir = TempDir::new("fastpath-filter-cli");
    let file = dir.path().join("expr");
    std::fs::write(&file, "udp   # DNS only\n  and port 53\n# the end\n").unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        ok(&["filter", "-F", f, "-ddd"]),
        ok(&["filter", "-ddd", "udp and port 53"])
    );
    // Both a file and words: a usage error, not a silent choice.
    let (code, _, err) = fastpath(&["filter", "-F", f, "tcp"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = fastpath(&["capture", "-i", "lo", "-F", f, "tcp"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not several"), "{err}");
    // A missing file, a huge one, a binary one: usage errors naming the file.
    for (path, what) in [
        ("/nonexistent/expr", "cannot open"),
        ("/dev/zero", "larger than"),
    ] {
        let (code, _, err) = fastpath(&["filter", "-F", path]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(what) && err.contains(path), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let bin = dir.path().join("bin");
    std::fs::write(&bin, [0xffu8, 0xfe, 0]).unwrap();
    let (code, _, err) = fastpath(&["filter", "-F", bin.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not text"), "{err}");
}

/// `--bpf-file` reads at most 1 MiB: `/dev/zero` is an error, not an exhausted memory.
#[test]
fn bpf_file_is_capped() {
    let (code, _, err) = fastpath(&["capture", "-i", "lo", "--bpf-file", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than"), "{err}");
}

/// 10,000 and 20,000 `or` terms (from a file, as scripts generate them): a usage error saying
/// the program is too long, in well under a second, never a crash.
#[test]
fn long_filters_are_refused_cleanly() {
    let dir = TempDir::new("fastpath-filter-long");
    for n in [10_000usize, 20_000] {
        let expr = (0..n)
            .map(|i| format!("host 10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff))
            .collect::<Vec<_>>()
            .join(" or ");
        let file = dir.path().join(format!("hosts{n}"));
        std::fs::write(&file, &expr).unwrap();
        let (code, _, err) = fastpath(&["filter", "-F", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{n} terms: {err}");
        assert!(err.contains("instructions"), "{n} terms: {err}");
        assert!(err.lines().count() <= 4, "a short message: {err}");
    }
    // 150 hosts fit.
    let expr = (0..150)
        .map(|i| format!("host 10.0.{}.{}", i >> 8, i & 0xff))
        .collect::<Vec<_>>()
        .join(" or ");
    let file = dir.path().join("hosts150");
    std::fs::write(&file, &expr).unwrap();
    let out = ok(&["filter", "-ddd", "-F", file.to_str().unwrap()]);
    let f = Filter::from_decimal(&out).unwrap();
    assert!(f.insns().len() <= cbpf::BPF_MAXINSNS);
}

/// `ip broadcast` with `-i` takes the interface's netmask, as pcap-filter(7) documents: a
/// destination whose host part is all zeros or all ones. (tcpdump 4.99 passes a netmask of 0
/// unless given `-f`, and then one in network byte order, so it is the reference only for an
/// interface without IPv4 address: netmask 0, the limited broadcast.) Without `-i` it is
/// libpcap's error.
#[test]
fn ip_broadcast_uses_the_interface_netmask() {
    let (code, _, err) = fastpath(&["filter", "ip broadcast"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("netmask not known"), "{err}");
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let ns = NetNs::new("fpbcast");
    let v = ns.veth_pair("fpbc_a", "fpbc_b");
    let st = Command::new("ip")
        .args(["addr", "add", "10.9.8.1/24", "dev", &v.b])
        .status()
        .unwrap();
    assert!(st.success());
    let frame = |dst: [u8; 4]| {
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 9, 8, 1]);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&[0; 8]);
        f
    };
    let program = |iface: &str| {
        let out = ok(&["filter", "-i", iface, "-ddd", "ip broadcast"]);
        cbpf::parse_decimal(&out).unwrap()
    };
    let on_b = program(&v.b);
    let no_v4 = program(&v.a);
    let theirs = have_cmd("tcpdump").then(|| {
        let out = Command::new("tcpdump")
            .args(["-ddd", "ip broadcast"])
            .output()
            .unwrap();
        cbpf::parse_decimal(&String::from_utf8_lossy(&out.stdout)).unwrap()
    });
    for (dst, subnet, limited) in [
        ([10, 9, 8, 255], true, false),
        ([10, 9, 8, 0], true, false),
        ([10, 9, 8, 7], false, false),
        ([255, 255, 255, 255], true, true),
        ([0, 0, 0, 0], true, true),
        ([10, 9, 9, 255], true, false),
        ([10, 9, 9, 1], false, false),
    ] {
        let f = frame(dst);
        let w = f.len() as u32;
        assert_eq!(cbpf::run(&on_b, &f, w) != 0, subnet, "/24: to {dst:?}");
        assert_eq!(
            cbpf::run(&no_v4, &f, w) != 0,
            limited,
            "no IPv4: to {dst:?}"
        );
        if let Some(t) = &theirs {
            for cut in [f.len(), 31, 33] {
                assert_eq!(
                    cbpf::run(&no_v4, &f[..cut], w),
                    cbpf::run(t, &f[..cut], w),
                    "tcpdump, to {dst:?} cut at {cut}"
                );
            }
        }
    }
    // The capture takes it from -i as well (the filter compiles; nothing needs to arrive).
    let (code, _, err) = fastpath(&[
        "capture",
        "-i",
        &v.b,
        "--duration",
        "0.2",
        "ip",
        "broadcast",
    ]);
    assert_eq!(code, 0, "{err}");
}
