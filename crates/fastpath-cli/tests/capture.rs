//! Tier 1: `fastpath capture` end to end on a veth pair in a private network namespace: files
//! that read back byte-exact (and through tcpdump when installed), Ctrl-C/SIGTERM, `| head`,
//! disk full, and every bad input with its exit code. Needs root (CI sets FASTPATH_REQUIRE_PRIV=1
//! so nothing skips there).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fastpath::pcap::{read_records, Format};
use fastpath_testutil::{
    assert_frames_eq, frame_seq, have_cmd, is_root, require, udp_frame, vlan_frame, NetNs,
    RawSender, TempDir, Veth, DST_MAC,
};

const BIN: &str = env!("CARGO_BIN_EXE_fastpath");

/// A running `fastpath capture` with its stderr read line by line on a thread.
struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Capture {
    /// Starts `fastpath capture ARGS` (in the calling thread's netns) and waits for the
    /// `listening on` line.
    fn start(args: &[&str]) -> Capture {
        Capture::start_with(Command::new(BIN).arg("capture").args(args))
    }

    fn start_with(cmd: &mut Command) -> Capture {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fastpath");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut c = Capture {
            child,
            stderr: rx,
            lines: Vec::new(),
        };
        c.wait_for("listening on");
        c
    }

    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.lines.push(l);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        let _ = self.child.kill();
        panic!(
            "no `{needle}` from fastpath; stderr so far: {:#?}",
            self.lines
        );
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }

    /// Waits for exit (at most 10 s) and returns the exit code and all of stderr.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("fastpath did not exit; stderr: {:#?}", self.lines);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.lines.push(l);
        }
        (status.code().unwrap_or(-1), self.lines.join("\n"))
    }
}

fn setup() -> (NetNs, Veth, TempDir) {
    let ns = NetNs::new("fpc");
    let veth = ns.veth_pair("fpa", "fpb");
    (ns, veth, TempDir::new("fastpath-test"))
}

fn sent_frames(n: u32, veth: &Veth) -> Vec<Vec<u8>> {
    (0..n)
        .map(|s| udp_frame(s, 60 + (s as usize * 131) % 1455, DST_MAC, veth.a_mac))
        .collect()
}

fn read_file(path: &Path) -> (Format, Vec<fastpath::pcap::Record>) {
    let bytes = std::fs::read(path).unwrap();
    read_records(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bytes of each record, for [`assert_frames_eq`].
fn record_data(recs: &[fastpath::pcap::Record]) -> Vec<&[u8]> {
    recs.iter().map(|r| r.data.as_slice()).collect()
}

fn summary_count(stderr: &str, what: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_suffix(what)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `N {what}` line in:\n{stderr}"))
}

#[test]
fn capture_writes_complete_files_that_read_back_byte_exact() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    for backend in ["recv", "recv-batch", "mmap", "xdp"] {
        for format in ["pcap", "pcapng"] {
            let file = dir.path().join(format!("{backend}.{format}"));
            let cap = Capture::start(&[
                "-i",
                &veth.b,
                "-b",
                backend,
                "-c",
                "100",
                "--format",
                format,
                "-w",
                file.to_str().unwrap(),
            ]);
            let sent = sent_frames(100, &veth);
            RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
            let (code, err) = cap.finish();
            assert_eq!(code, 0, "{backend}/{format}: {err}");
            assert_eq!(summary_count(&err, "packets captured"), 100, "{err}");
            assert!(
                summary_count(&err, "packets received by kernel") >= 100,
                "{err}"
            );
            assert_eq!(summary_count(&err, "packets dropped by kernel"), 0, "{err}");
            let (fmt, recs) = read_file(&file);
            assert_eq!(
                fmt,
                if format == "pcap" {
                    Format::Pcap
                } else {
                    Format::Pcapng
                }
            );
            let data = record_data(&recs);
            assert_frames_eq(&data, &sent);
            for (r, s) in recs.iter().zip(&sent) {
                assert_eq!(r.orig_len as usize, s.len());
            }
            assert!(recs.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
            if have_cmd("tcpdump") {
                let out = Command::new("tcpdump")
                    .args(["-nn", "--time-stamp-precision=nano", "-r"])
                    .arg(&file)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "tcpdump -r {}: {:?}",
                    file.display(),
                    out
                );
                let lines = String::from_utf8_lossy(&out.stdout).lines().count();
                assert_eq!(
                    lines,
                    100,
                    "tcpdump reads every packet of {}",
                    file.display()
                );
            }
        }
    }
}

/// A filter keeps the same packets on every rung, and `tcpdump -r FILE EXPR` keeps all of
/// them: with VLAN-tagged traffic too, whose tag the kernel moves out of the frame before
/// AF_PACKET filters run. A `tcpdump -ddd` program from the live interface (`--bpf-file`) runs
/// as given.
#[test]
fn filters_keep_what_tcpdump_r_keeps() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    let sent: Vec<Vec<u8>> = (0..60u32)
        .map(|i| match i % 3 {
            0 => vlan_frame(i, 100 + i as usize, 100, DST_MAC, veth.a_mac),
            1 => vlan_frame(i, 100 + i as usize, 200, DST_MAC, veth.a_mac),
            _ => udp_frame(i, 100 + i as usize, DST_MAC, veth.a_mac),
        })
        .collect();
    let expr = "vlan 100 and udp";
    let want: Vec<Vec<u8>> = sent.iter().step_by(3).cloned().collect();
    for backend in ["recv", "recv-batch", "mmap", "xdp"] {
        let file = dir.path().join(format!("{backend}.pcap"));
        let cap = Capture::start(&[
            "-i",
            &veth.b,
            "-b",
            backend,
            "-c",
            "20",
            "-w",
            file.to_str().unwrap(),
            expr,
        ]);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let (code, err) = cap.finish();
        assert_eq!(code, 0, "{backend}: {err}");
        let (_, recs) = read_file(&file);
        let data = record_data(&recs);
        assert_frames_eq(&data, &want);
        if have_cmd("tcpdump") {
            let out = Command::new("tcpdump")
                .args(["-nn", "-r"])
                .arg(&file)
                .arg(expr)
                .output()
                .unwrap();
            assert!(out.status.success(), "{backend}: tcpdump -r: {out:?}");
            let lines = String::from_utf8_lossy(&out.stdout).lines().count();
            assert_eq!(lines, 20, "{backend}: tcpdump -r keeps every packet");
        }
    }
    if have_cmd("tcpdump") {
        let out = Command::new("tcpdump")
            .args(["-i", &veth.b, "-ddd", "vlan 200"])
            .output()
            .unwrap();
        assert!(out.status.success(), "tcpdump -ddd: {out:?}");
        let prog = dir.path().join("vlan200.bpf");
        std::fs::write(&prog, &out.stdout).unwrap();
        let file = dir.path().join("raw.pcap");
        let cap = Capture::start(&[
            "-i",
            &veth.b,
            "-b",
            "mmap",
            "-c",
            "20",
            "--bpf-file",
            prog.to_str().unwrap(),
            "-w",
            file.to_str().unwrap(),
        ]);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let (code, err) = cap.finish();
        assert_eq!(code, 0, "--bpf-file: {err}");
        let (_, recs) = read_file(&file);
        let data = record_data(&recs);
        let want: Vec<Vec<u8>> = sent.iter().skip(1).step_by(3).cloned().collect();
        assert_frames_eq(&data, &want);
    }
}

#[test]
fn snaplen_and_fanout_threads() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    let file = dir.path().join("snap.pcap");
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "-s",
        "80",
        "-c",
        "50",
        "-w",
        file.to_str().unwrap(),
    ]);
    let sent = sent_frames(50, &veth);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    assert_eq!(cap.finish().0, 0);
    let (_, recs) = read_file(&file);
    for (r, s) in recs.iter().zip(&sent) {
        assert_eq!(r.data, &s[..s.len().min(80)]);
        assert_eq!(r.orig_len as usize, s.len());
    }

    for backend in ["mmap", "recv-batch"] {
        let file = dir.path().join(format!("fanout-{backend}.pcap"));
        let cap = Capture::start(&[
            "-i",
            &veth.b,
            "-b",
            backend,
            "--threads",
            "2",
            "--fanout",
            "lb",
            "-c",
            "200",
            "-w",
            file.to_str().unwrap(),
        ]);
        assert!(cap.lines[0].contains("2 threads"), "{:?}", cap.lines);
        let sent = sent_frames(200, &veth);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let (code, err) = cap.finish();
        assert_eq!(code, 0, "{err}");
        let (_, recs) = read_file(&file);
        let seqs: BTreeSet<u32> = recs.iter().filter_map(|r| frame_seq(&r.data)).collect();
        assert_eq!(
            seqs.len(),
            200,
            "{backend}: every frame once across threads"
        );
        assert_eq!(summary_count(&err, "packets captured"), 200);
    }
}

#[test]
fn ctrl_c_and_sigterm_leave_a_complete_file_and_a_summary() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    for (backend, sig) in [
        ("mmap", libc::SIGINT),
        ("recv", libc::SIGTERM),
        ("mmap", libc::SIGTERM),
        ("recv-batch", libc::SIGHUP),
    ] {
        for format in ["pcap", "pcapng"] {
            let file = dir.path().join(format!("sig-{backend}-{sig}.{format}"));
            let mut cap = Capture::start(&[
                "-i",
                &veth.b,
                "-b",
                backend,
                "--format",
                format,
                "-w",
                file.to_str().unwrap(),
            ]);
            let sent = sent_frames(70, &veth);
            RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
            // The live status line shows up once a second while writing to a file.
            cap.wait_for("pkts/s");
            cap.signal(sig);
            let (code, err) = cap.finish();
            assert_eq!(code, 0, "{err}");
            let (_, recs) = read_file(&file);
            let data = record_data(&recs);
            assert_frames_eq(&data, &sent);
            assert_eq!(summary_count(&err, "packets captured"), 70, "{err}");
            assert_eq!(
                summary_count(&err, "packets received by kernel"),
                70,
                "{err}"
            );
            assert_eq!(summary_count(&err, "packets dropped by kernel"), 0, "{err}");
        }
    }
    // --duration ends the capture by itself.
    let t0 = Instant::now();
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "--duration",
        "0.5",
        "-w",
        dir.path().join("d.pcap").to_str().unwrap(),
    ]);
    let (code, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(summary_count(&err, "packets captured"), 0);
}

#[test]
fn write_to_stdout_streams_a_valid_capture() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, _dir) = setup();
    let mut cap = Capture::start(&["-i", &veth.b, "-c", "25", "-w", "-", "--format", "pcapng"]);
    let mut out = cap.child.stdout.take().unwrap();
    let sent = sent_frames(25, &veth);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let mut bytes = Vec::new();
    out.read_to_end(&mut bytes).unwrap();
    let (code, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
    let (fmt, recs) = read_records(&bytes).unwrap();
    assert_eq!(fmt, Format::Pcapng);
    let data = record_data(&recs);
    assert_frames_eq(&data, &sent);
}

#[test]
fn printing_lines_and_a_closed_pipe_exit_cleanly() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, _dir) = setup();
    let mut cap = Capture::start(&["-i", &veth.b, "-b", "recv-batch"]);
    let tx = RawSender::new(&veth.a).unwrap();
    tx.send_all(&sent_frames(5, &veth)).unwrap();
    let mut out = BufReader::new(cap.child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(
        first.contains("10.99.0.1.1000 > 10.99.0.2.9") && first.contains("UDP"),
        "{first}"
    );
    // Like `| head -1`: the reader goes away; the next write must end fastpath with status 0.
    drop(out);
    for _ in 0..20 {
        tx.send_all(&sent_frames(5, &veth)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        if cap.child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let (code, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("error"), "{err}");
}

/// However fastpath ends — count reached, Ctrl-C, SIGTERM, an error, or `kill -9` — no XDP
/// program stays attached to the interface.
#[test]
fn xdp_capture_never_leaves_a_program_attached() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let (_ns, veth, _dir) = setup();
    let attached = || fastpath::unstable::bpf::attached(veth.b_index).unwrap();
    let mut cap = Capture::start(&["-i", &veth.b, "-b", "xdp", "-w", "/dev/null"]);
    assert!(
        cap.lines[0].contains("af_xdp copy") && cap.lines[0].contains("native XDP"),
        "{:?}",
        cap.lines
    );
    assert_eq!(attached().len(), 1, "attached while capturing");
    cap.child.kill().unwrap(); // SIGKILL: no destructor runs; the bpf_link dies with the process
    let _ = cap.child.wait();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !attached().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(attached().is_empty(), "kill -9 left {:?}", attached());

    // An error after attaching (the interface disappears under it) detaches too.
    let cap = Capture::start(&["-i", &veth.b, "-b", "xdp", "-c", "1000000"]);
    assert_eq!(attached().len(), 1);
    let err_run = run(Command::new(BIN).args(["capture", "-i", &veth.b, "-b", "xdp", "-c", "1"]));
    assert_eq!(err_run.0, 1, "{}", err_run.1);
    assert!(
        err_run.1.contains("fastpath_redir"),
        "the conflict names the program: {}",
        err_run.1
    );
    cap.signal(libc::SIGINT);
    assert_eq!(cap.finish().0, 0);
    assert!(attached().is_empty());
}

/// Runs fastpath to completion with `args` (no traffic) and returns (exit code, stderr).
fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_gets_a_clear_error_and_the_right_exit_code() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (ns, veth, dir) = setup();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["-i", "fpnosuch0"], 1, "no such interface `fpnosuch0`"),
        (&["-i", &veth.b, "-s", "0"], 2, "snaplen"),
        (&["-i", &veth.b, "-s", "999999999"], 2, "snaplen"),
        (&["-i", &veth.b, "--blocks", "3"], 2, "power of two"),
        (&["-i", &veth.b, "--block-size", "5000"], 2, "power of two"),
        // An oversized ring is a configuration mistake (usage), not a runtime failure, and the
        // hints never overflow into "try 0".
        (
            &[
                "-i",
                &veth.b,
                "--block-size",
                "1073741824",
                "--blocks",
                "1024",
            ],
            2,
            "4 GiB",
        ),
        (
            &["-i", &veth.b, "--blocks", "4294967295"],
            2,
            "try 2147483648",
        ),
        (&["-i", &veth.b, "-Q", "sideways"], 2, "not a direction"),
        (&["-i", &veth.b, "-b", "xdp", "-Q", "out"], 2, "direction"),
        (&["-i", &veth.b, "-b", "nosuch"], 2, "not a backend"),
        // Without the dpdk feature the backend says how to get it; with it, a kernel interface is
        // not a DPDK device (a usage error).
        #[cfg(not(feature = "dpdk"))]
        (&["-i", &veth.b, "-b", "dpdk"], 1, "--features dpdk"),
        #[cfg(feature = "dpdk")]
        (&["-i", &veth.b, "-b", "dpdk"], 2, "not a DPDK device"),
        (&["-i", &veth.b, "-c", "0"], 2, "count"),
        (&["-i", &veth.b, "--duration=-1"], 2, "duration"),
        (&["-i", &veth.b, "--threads", "0"], 2, "threads"),
        (
            &["-i", &veth.b, "-w", "/nonexistent-dir/x.pcap"],
            1,
            "cannot create capture file",
        ),
        (&["-i", &veth.b, "--format", "csv"], 2, "csv"),
        (&["-i", &veth.b, "-b", "xdp", "--queues", "7"], 2, "queue 7"),
        (&["-i", &veth.b, "-b", "xdp", "--queues", "x"], 2, "queues"),
        (
            &["-i", &veth.b, "-b", "xdp", "--threads", "2"],
            2,
            "--queues",
        ),
        (
            &["-i", &veth.b, "-b", "xdp", "--zero-copy", "require"],
            1,
            "zero-copy",
        ),
    ];
    for (args, want_code, want_msg) in cases {
        let (code, err) = run(Command::new(BIN).arg("capture").args(*args));
        assert_eq!(code, *want_code, "{args:?}: {err}");
        assert!(
            err.contains(want_msg),
            "{args:?}: `{want_msg}` not in: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("try 0"), "{args:?}: {err}");
    }
    ns.set_down(&veth.b).unwrap();
    let (code, err) = run(Command::new(BIN).args(["capture", "-i", &veth.b]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is down") && err.contains("ip link set fpb up"),
        "{err}"
    );
    ns.set_up(&veth.b).unwrap();

    // Not permitted: the same command as an unprivileged user names the missing capability.
    if have_cmd("setpriv") {
        let (code, err) = run(Command::new("setpriv").args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "capture",
            "-i",
            &veth.b,
        ]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("CAP_NET_RAW"), "{err}");
    }
    drop(dir);
}

/// A full disk stops the capture with a clear error, and the file keeps every packet it claims,
/// complete and valid.
#[test]
fn disk_full_stops_with_a_valid_file() {
    require!(
        is_root(),
        "needs root for network namespaces, AF_PACKET and mount"
    );
    let (_ns, veth, dir) = setup();
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = SmallTmpfs::mount(&mnt, "64k");
    for format in ["pcap", "pcapng"] {
        let file = mount.0.join(format!("full.{format}"));
        let cap = Capture::start(&[
            "-i",
            &veth.b,
            "--format",
            format,
            "-w",
            file.to_str().unwrap(),
        ]);
        let tx = RawSender::new(&veth.a).unwrap();
        // 300 × 1000 bytes does not fit in 64 KiB.
        let sent: Vec<_> = (0..300)
            .map(|s| udp_frame(s, 1000, DST_MAC, veth.a_mac))
            .collect();
        tx.send_all(&sent).unwrap();
        let (code, err) = cap.finish();
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("disk full"), "{err}");
        let kept = summary_count(&err, "packets captured");
        let (_, recs) = read_file(&file);
        assert_eq!(
            recs.len() as u64,
            kept,
            "the summary matches the file: {err}"
        );
        assert!(kept > 10, "{err}");
        let data = record_data(&recs);
        assert_frames_eq(&data, &sent[..recs.len()]);
        std::fs::remove_file(&file).unwrap();
    }
}

/// A tmpfs of a given size, unmounted on drop (also when the test panics).
struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    fn mount(at: &Path, size: &str) -> SmallTmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        SmallTmpfs(at.to_path_buf())
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn help_and_usage_errors_exit_2() {
    let (code, _) = run(Command::new(BIN).args(["capture"]));
    assert_eq!(code, 2);
    let (code, _) = run(Command::new(BIN).args(["frobnicate"]));
    assert_eq!(code, 2);
    let mut out = String::new();
    Command::new(BIN)
        .args(["capture", "--help"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("--backend"));
}

/// `-b dpdk` works like the other backends: DPDK's af_packet vdev on the veth.
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_capture_writes_the_frames_byte_exact() {
    require!(is_root(), "needs root for network namespaces and DPDK");
    let (_ns, veth, dir) = setup();
    let file = dir.path().join("dpdk.pcap");
    let dev = format!("net_af_packet0,iface={}", veth.b);
    let cap = Capture::start(&[
        "-i",
        &dev,
        "-b",
        "dpdk",
        "-c",
        "50",
        "-w",
        file.to_str().unwrap(),
    ]);
    assert!(
        cap.lines.iter().any(|l| l.contains("dpdk net_af_packet")),
        "{:?}",
        cap.lines
    );
    let sent = sent_frames(50, &veth);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let (code, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_count(&err, "packets captured"), 50, "{err}");
    let (_, recs) = read_file(&file);
    let data = record_data(&recs);
    assert_frames_eq(&data, &sent);
}
