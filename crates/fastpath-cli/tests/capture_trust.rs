//! Tier 1: a capture you can trust (fastpath issue 12), end to end on a veth pair (and the
//! loopback) in a private network namespace: each packet once on loopback, `-Q`, direction in
//! pcapng read back by tshark, `-w` that never clobbers a file when the capture cannot start
//! and never follows a planted link, counts that add up at the stop, signals (a second Ctrl-C,
//! SIGHUP, a stalled `-w -` reader), `-U`, a worker panic, and the xdp guard and promiscuous
//! mode. Needs root (CI sets FASTPATH_REQUIRE_PRIV=1 so nothing skips there).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fastpath::pcap::read_records;
use fastpath_testutil::{
    have_cmd, is_root, require, udp_frame, NetNs, RawSender, TempDir, Veth, DST_MAC,
};

const BIN: &str = env!("CARGO_BIN_EXE_fastpath");

/// A running `fastpath capture` with its stderr read line by line on a thread.
struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Capture {
    /// Starts `fastpath capture ARGS` (in the calling thread's netns), stdout piped, and waits
    /// for the `listening on` line.
    fn start(args: &[&str]) -> Capture {
        Capture::start_with(
            Command::new(BIN)
                .arg("capture")
                .args(args)
                .stdout(Stdio::piped()),
        )
    }

    /// Starts `cmd` (its stdout as the caller set it) and waits for `listening on`.
    fn start_with(cmd: &mut Command) -> Capture {
        let mut child = cmd
            .stdin(Stdio::null())
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
        panic!("no `{needle}` from fastpath; stderr: {:#?}", self.lines);
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }

    /// Waits for exit (at most `limit`) and returns the exit code, all of stderr and how long
    /// the wait took.
    fn finish_within(mut self, limit: Duration) -> (i32, String, Duration) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(200)) {
                    self.lines.push(l);
                }
                panic!(
                    "fastpath did not exit within {limit:?}; stderr: {:#?}",
                    self.lines
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = t0.elapsed();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(300)) {
            self.lines.push(l);
        }
        (status.code().unwrap_or(-1), self.lines.join("\n"), took)
    }

    fn finish(self) -> (i32, String) {
        let (code, err, _) = self.finish_within(Duration::from_secs(10));
        (code, err)
    }
}

fn setup() -> (NetNs, Veth, TempDir) {
    let ns = NetNs::new("fpq");
    let veth = ns.veth_pair("fpa", "fpb");
    (ns, veth, TempDir::new("fastpath-trust"))
}

/// Runs fastpath to completion with `args` and returns (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn summary_count(stderr: &str, what: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_suffix(what)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `N {what}` line in:\n{stderr}"))
}

/// `N <what>` if the summary has that line, else 0 (the extra lines appear only when not 0).
fn summary_extra(stderr: &str, what: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let (n, rest) = l.split_once(' ')?;
            rest.starts_with(what).then(|| n.parse().ok())?
        })
        .unwrap_or(0)
}

fn records(path: &Path) -> Vec<fastpath::pcap::Record> {
    let bytes = std::fs::read(path).unwrap();
    read_records(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .1
}

/// Sends `n` UDP datagrams to 127.0.0.1:9999 (in the calling thread's namespace).
fn send_to_9999(n: u8) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..n {
        sock.send_to(&[i; 3], "127.0.0.1:9999").unwrap();
    }
}

/// `fastpath capture -i lo udp port 9999` prints each datagram once, as tcpdump does (the kernel
/// shows a packet socket on lo the sent and the received copy); `-Q out` prints the sent copies.
#[test]
fn loopback_shows_each_packet_once() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, _veth, _dir) = setup();
    for backend in ["mmap", "recv", "recv-batch"] {
        for q in ["inout", "in", "out"] {
            let mut cap = Capture::start(&["-i", "lo", "-b", backend, "-Q", q, "udp port 9999"]);
            let out = cap.child.stdout.take().unwrap();
            let reader = std::thread::spawn(move || {
                let mut s = String::new();
                BufReader::new(out).read_to_string(&mut s).unwrap();
                s
            });
            send_to_9999(3);
            std::thread::sleep(Duration::from_millis(300));
            cap.signal(libc::SIGINT);
            let (code, err) = cap.finish();
            assert_eq!(code, 0, "{backend} -Q {q}: {err}");
            let lines = reader.join().unwrap();
            assert_eq!(lines.lines().count(), 3, "{backend} -Q {q}: {lines}");
            assert!(lines.lines().all(|l| l.contains("> 127.0.0.1.9999: UDP")));
            assert_eq!(summary_count(&err, "packets captured"), 3, "{err}");
            assert_eq!(
                summary_count(&err, "packets received by kernel"),
                3,
                "{err}"
            );
        }
    }
    if have_cmd("tcpdump") {
        // The same count as tcpdump's, side by side.
        let mut td = Command::new("tcpdump")
            .args(["-i", "lo", "-nn", "-l", "udp port 9999"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(td.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "tcpdump did not start"
            );
        }
        send_to_9999(3);
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(td.id() as libc::pid_t, libc::SIGINT) };
        let out = td.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // (tcpdump ends with an empty line when interrupted.)
        let n = text.lines().filter(|l| !l.is_empty()).count();
        assert_eq!(n, 3, "tcpdump: {text}");
    }
}

/// pcapng files carry each packet's direction and reception type in `epb_flags`, as tshark
/// reads them: frames from the peer to this host, to broadcast and to another host, and frames
/// this host sent.
#[test]
fn pcapng_records_the_direction_tshark_reads() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    require!(have_cmd("tshark"), "tshark is not installed");
    let (_ns, veth, dir) = setup();
    for backend in ["mmap", "recv", "xdp"] {
        let file = dir.path().join(format!("dir-{backend}.pcapng"));
        let count = if backend == "xdp" { "3" } else { "4" };
        let cap = Capture::start(&[
            "-i",
            &veth.b,
            "-b",
            backend,
            "-c",
            count,
            "--format",
            "pcapng",
            "-w",
            file.to_str().unwrap(),
        ]);
        let tx = RawSender::new(&veth.a).unwrap();
        for (s, dst) in [(0, veth.b_mac), (1, [0xff; 6]), (2, DST_MAC)] {
            tx.send(&udp_frame(s, 80, dst, veth.a_mac)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        if backend != "xdp" {
            // xdp sees only what arrives.
            RawSender::new(&veth.b)
                .unwrap()
                .send(&udp_frame(3, 80, DST_MAC, veth.b_mac))
                .unwrap();
        }
        let (code, err) = cap.finish();
        assert_eq!(code, 0, "{backend}: {err}");
        let out = Command::new("tshark")
            .args(["-r", file.to_str().unwrap(), "-T", "fields"])
            .args(["-e", "frame.packet_flags_direction"])
            .args(["-e", "frame.packet_flags_reception_type"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{backend}: tshark: {out:?}");
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        // direction 1 inbound / 2 outbound; reception 1 unicast, 3 broadcast, 4 promiscuous.
        let mut want = vec!["0x00000001 1", "0x00000001 3", "0x00000001 4"];
        if backend != "xdp" {
            want.push("0x00000002 0");
        }
        assert_eq!(got, want, "{backend}");
    }
}

/// A capture that never starts leaves an existing file exactly as it was (the receivers open
/// before the file is touched); a new file is created 0600; a symbolic link another user
/// planted in a shared directory is not followed.
#[test]
fn w_never_clobbers_a_file_when_the_capture_cannot_start() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (ns, veth, dir) = setup();
    let important = dir.path().join("important.pcap");
    std::fs::write(&important, b"last week's capture").unwrap();
    let w = important.to_str().unwrap();
    ns.ip(&["addr", "add", "10.88.0.1/24", "dev", &veth.b])
        .unwrap();
    for args in [
        vec!["capture", "-i", "fptypo0", "-w", w],
        vec!["capture", "-i", &veth.b, "-b", "xdp", "-w", w],
        vec!["capture", "-i", &veth.b, "-b", "xdp", "-w", w, "tcp"],
        vec!["capture", "-i", &veth.b, "-s", "0", "-w", w],
    ] {
        let (code, err) = run(&args);
        assert_ne!(code, 0, "{args:?}: {err}");
        assert_eq!(
            std::fs::read(&important).unwrap(),
            b"last week's capture",
            "{args:?} clobbered the file: {err}"
        );
    }

    // A new file: owner read/write only.
    let new = dir.path().join("new.pcap");
    let cap = Capture::start(&["-i", &veth.b, "-c", "1", "-w", new.to_str().unwrap()]);
    RawSender::new(&veth.a)
        .unwrap()
        .send(&udp_frame(0, 80, DST_MAC, veth.a_mac))
        .unwrap();
    let (code, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
    let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    // A link planted by another user in a sticky, world-writable directory.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let planted = shared.join("out.pcap");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    std::os::unix::fs::lchown(&planted, Some(65534), Some(65534)).unwrap();
    let (code, err) = run(&[
        "capture",
        "-i",
        &veth.b,
        "-c",
        "1",
        "-w",
        planted.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

/// With traffic still flowing when the capture stops, every packet the kernel counted is
/// accounted for: captured + dropped + received beyond the count + left unwritten = received,
/// and the file holds exactly the captured ones.
#[test]
fn counts_add_up_when_a_busy_capture_stops() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    let cases: [(&str, &[&str]); 4] = [
        ("mmap", &["--block-size", "65536", "--blocks", "4"]),
        ("recv", &["--rcvbuf", "65536"]),
        ("recv-batch", &["-c", "500"]),
        ("mmap", &["-c", "500"]),
    ];
    for (backend, extra) in cases {
        let file = dir.path().join(format!("busy-{backend}.pcap"));
        let mut args = vec!["-i", &veth.b, "-b", backend, "-w", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let cap = Capture::start(&args);
        let busy = Arc::new(AtomicBool::new(true));
        let tx = RawSender::new(&veth.a).unwrap();
        let frames: Vec<_> = (0..64)
            .map(|s| udp_frame(s, 200, DST_MAC, veth.a_mac))
            .collect();
        let b = Arc::clone(&busy);
        let sender = std::thread::spawn(move || {
            while b.load(Ordering::Relaxed) {
                tx.send_all(&frames).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        if !extra.contains(&"-c") {
            cap.signal(libc::SIGINT);
        }
        let (code, err) = cap.finish();
        busy.store(false, Ordering::Relaxed);
        sender.join().unwrap();
        assert_eq!(code, 0, "{backend} {extra:?}: {err}");
        let captured = summary_count(&err, "packets captured");
        let received = summary_count(&err, "packets received by kernel");
        let dropped = summary_count(&err, "packets dropped by kernel");
        let beyond = summary_extra(&err, "packets received after the count");
        let left = summary_extra(&err, "packets still queued");
        assert!(received > 0, "{err}");
        assert_eq!(
            captured + dropped + beyond + left,
            received,
            "{backend} {extra:?}: the counts add up:\n{err}"
        );
        assert_eq!(records(&file).len() as u64, captured, "{err}");
        if extra.contains(&"-c") {
            assert_eq!(captured, 500, "{err}");
        }
    }
}

/// Printing lines to an output that fails (not a closed pipe) ends with an error, and the count
/// says what reached it: nothing, not the packets received.
#[test]
fn captured_counts_only_what_reached_the_output() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, _dir) = setup();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let cap = Capture::start_with(
        Command::new(BIN)
            .args(["capture", "-i", &veth.b, "-b", "recv"])
            .stdout(full),
    );
    let tx = RawSender::new(&veth.a).unwrap();
    tx.send_all(
        &(0..20)
            .map(|s| udp_frame(s, 100, DST_MAC, veth.a_mac))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let (code, err) = cap.finish();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(summary_count(&err, "packets captured"), 0, "{err}");
}

/// A second Ctrl-C ends a slow stop at once (status 130), the file cut back to its last
/// complete packet; the first one alone would have waited for the drain.
#[test]
fn a_second_ctrl_c_exits_at_once_with_a_valid_file() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    let file = dir.path().join("twice.pcap");
    // A 5 s block timeout: the drain at the stop waits for the partly filled block.
    let mut cap = Capture::start(&[
        "-i",
        &veth.b,
        "--block-timeout-ms",
        "5000",
        "-w",
        file.to_str().unwrap(),
    ]);
    let tx = RawSender::new(&veth.a).unwrap();
    tx.send_all(
        &(0..30)
            .map(|s| udp_frame(s, 100, DST_MAC, veth.a_mac))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    cap.wait_for("pkts/s");
    cap.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    cap.signal(libc::SIGINT);
    let (code, err, took) = cap.finish_within(Duration::from_secs(3));
    assert_eq!(code, 130, "{err}");
    assert!(took < Duration::from_secs(1), "{took:?}: {err}");
    assert!(
        err.contains("cut back to its last complete packet"),
        "{err}"
    );
    let kept: u64 = err
        .split('(')
        .next_back()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {err}"));
    assert_eq!(records(&file).len() as u64, kept, "{err}");
    if have_cmd("tcpdump") {
        let out = Command::new("tcpdump")
            .arg("-r")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "tcpdump -r: {out:?}");
    }
}

/// A reader of `-w -` that stops reading does not make Ctrl-C ignored: fastpath says so and
/// exits.
#[test]
fn a_stalled_stdout_reader_does_not_make_ctrl_c_ignored() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, _dir) = setup();
    for args in [vec!["-w", "-", "-U"], vec![]] {
        let mut all = vec!["-i", veth.b.as_str()];
        all.extend_from_slice(&args);
        let mut cap = Capture::start(&all);
        // Never read: the pipe fills and the writes block.
        let _stdout = cap.child.stdout.take().unwrap();
        let tx = RawSender::new(&veth.a).unwrap();
        let frames: Vec<_> = (0..500)
            .map(|s| udp_frame(s, 1400, DST_MAC, veth.a_mac))
            .collect();
        for _ in 0..4 {
            tx.send_all(&frames).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        cap.signal(libc::SIGINT);
        let (code, err, _) = cap.finish_within(Duration::from_secs(6));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("standard output has taken no data"), "{err}");
    }
}

/// `-w -` is live: the header is written at once, and with `-U` each packet as soon as it is
/// received, not when 256 KiB have piled up.
#[test]
fn w_stdout_is_live_with_u() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, _dir) = setup();
    let mut cap = Capture::start(&["-i", &veth.b, "-w", "-", "-U", "--format", "pcapng"]);
    let mut out = cap.child.stdout.take().unwrap();
    let (tx_bytes, rx_bytes) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx_bytes.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let read_until = |got: &mut Vec<u8>, records: usize| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(b) = rx_bytes.recv_timeout(Duration::from_millis(20)) {
                got.extend_from_slice(&b);
            }
            if read_records(got).is_ok_and(|(_, r)| r.len() == records) {
                return true;
            }
        }
        false
    };
    assert!(read_until(&mut got, 0), "the header is out at once");
    let tx = RawSender::new(&veth.a).unwrap();
    for s in 0..3 {
        tx.send(&udp_frame(s, 100, DST_MAC, veth.a_mac)).unwrap();
        assert!(
            read_until(&mut got, s as usize + 1),
            "packet {s} is out at once"
        );
    }
    cap.signal(libc::SIGINT);
    let (code, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
}

/// A bug that panics a receive thread ends the capture like an error: the other threads stop,
/// the file is left valid, the summary is printed, and the status is 1 (not 101 with no
/// summary).
#[test]
fn a_worker_panic_ends_the_capture_with_a_summary() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    if !cfg!(debug_assertions) {
        eprintln!("SKIP: the panic hook exists in debug builds only");
        return;
    }
    let (_ns, veth, dir) = setup();
    for threads in ["1", "2"] {
        let file = dir.path().join(format!("panic-{threads}.pcap"));
        let cap = Capture::start_with(
            Command::new(BIN)
                .args([
                    "capture",
                    "-i",
                    &veth.b,
                    "--threads",
                    threads,
                    "--fanout",
                    "lb",
                ])
                .args(["-w", file.to_str().unwrap()])
                .env("FASTPATH_TEST_PANIC_WORKER", "1")
                .stdout(Stdio::null()),
        );
        let tx = RawSender::new(&veth.a).unwrap();
        tx.send_all(
            &(0..20)
                .map(|s| udp_frame(s, 100, DST_MAC, veth.a_mac))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let (code, err) = cap.finish();
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("panicked") && err.contains("a bug in fastpath"),
            "{err}"
        );
        let captured = summary_count(&err, "packets captured");
        summary_count(&err, "packets received by kernel");
        assert_eq!(records(&file).len() as u64, captured, "{err}");
    }
}

/// `-b xdp` with a filter on an interface with addresses needs --take too (`tcp` would take
/// SSH), and -b xdp puts the interface in promiscuous mode like the other rungs (-p: not).
#[test]
fn xdp_filter_needs_take_and_promiscuous_mode_is_honoured() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let (ns, veth, _dir) = setup();
    let promiscuity = || {
        let out = Command::new("ip")
            .args(["-d", "link", "show", "dev", &veth.b])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .skip_while(|w| *w != "promiscuity")
            .nth(1)
            .and_then(|n| n.parse::<u32>().ok())
            .expect("ip -d link shows the promiscuity")
    };
    for (flags, want) in [(vec![], 1), (vec!["-p"], 0)] {
        let mut args = vec!["-i", veth.b.as_str(), "-b", "xdp", "-w", "/dev/null"];
        args.extend_from_slice(&flags);
        let cap = Capture::start(&args);
        assert_eq!(promiscuity(), want, "{flags:?}");
        cap.signal(libc::SIGINT);
        assert_eq!(cap.finish().0, 0);
        assert_eq!(promiscuity(), 0);
    }
    ns.ip(&["addr", "add", "10.88.0.1/24", "dev", &veth.b])
        .unwrap();
    let (code, err) = run(&["capture", "-i", &veth.b, "-b", "xdp", "-c", "1", "tcp"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the filter `tcp` accepts") && err.contains("--take"),
        "{err}"
    );
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "-b",
        "xdp",
        "--take",
        "-w",
        "/dev/null",
        "tcp",
    ]);
    cap.signal(libc::SIGTERM);
    assert_eq!(cap.finish().0, 0);
}

/// Both sets of features at once (issues 12 and 13): a rotated series over two interfaces
/// keeps each packet's direction in `epb_flags` (tshark reads it, per interface), every file of
/// the series is private (0600) and valid, and a series that cannot start (the second
/// interface does not exist) leaves an existing file alone.
#[test]
fn rotated_files_of_several_interfaces_keep_direction_and_the_w_rules() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    require!(have_cmd("tshark"), "tshark is not installed");
    let (_ns, veth, dir) = setup();
    let tpl = dir.path().join("rot.pcapng");
    let w = tpl.to_str().unwrap();
    let both = format!("{},{}", veth.a, veth.b);
    std::fs::write(&tpl, b"last week's capture").unwrap();
    let typo = format!("{},fptypo0", veth.b);
    let (code, err) = run(&["capture", "-i", &typo, "-C", "2k", "-w", w]);
    assert_ne!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(&tpl).unwrap(),
        b"last week's capture",
        "{err}"
    );
    std::fs::remove_file(&tpl).unwrap();

    let cap = Capture::start(&["-i", &both, "-c", "40", "-C", "2k", "-w", w]);
    let tx = RawSender::new(&veth.a).unwrap();
    for s in 0..20 {
        tx.send(&udp_frame(s, 100, veth.b_mac, veth.a_mac)).unwrap();
    }
    let (code, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_count(&err, "packets captured"), 40, "{err}");
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "rotated: {files:?}");
    let mut seen = Vec::new();
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", f.display());
        let out = Command::new("tshark")
            .args(["-r", f.to_str().unwrap(), "-T", "fields"])
            .args(["-e", "frame.interface_name"])
            .args(["-e", "frame.packet_flags_direction"])
            .args(["-e", "frame.packet_flags_reception_type"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: tshark: {out:?}", f.display());
        seen.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")),
        );
    }
    assert_eq!(seen.len(), 40, "{seen:?}");
    // Sent on fpa (outbound), received on fpb (inbound, unicast to it).
    let out_a = format!("{} 0x00000002 0", veth.a);
    let in_b = format!("{} 0x00000001 1", veth.b);
    assert_eq!(seen.iter().filter(|l| **l == out_a).count(), 20, "{seen:?}");
    assert_eq!(seen.iter().filter(|l| **l == in_b).count(), 20, "{seen:?}");
}

/// A second Ctrl-C while a rotated series is written cuts back the file being written then
/// (not the first of the series), and every file stays valid.
#[test]
fn a_second_ctrl_c_cuts_back_the_current_rotated_file() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    let tpl = dir.path().join("series.pcap");
    // Small blocks that fill and go to fastpath at once, and a 5 s timeout for the last,
    // partly filled one: the drain at the stop waits for it.
    let mut cap = Capture::start(&[
        "-i",
        &veth.b,
        "--block-size",
        "4096",
        "--block-timeout-ms",
        "5000",
        "-C",
        "4k",
        "-w",
        tpl.to_str().unwrap(),
    ]);
    RawSender::new(&veth.a)
        .unwrap()
        .send_all(
            &(0..60)
                .map(|s| udp_frame(s, 1000, DST_MAC, veth.a_mac))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    cap.wait_for("pkts/s");
    cap.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    cap.signal(libc::SIGINT);
    let (code, err, took) = cap.finish_within(Duration::from_secs(3));
    assert_eq!(code, 130, "{err}");
    assert!(took < Duration::from_secs(1), "{took:?}: {err}");
    let cut = err
        .lines()
        .find(|l| l.contains("cut back to its last complete packet"))
        .unwrap_or_else(|| panic!("no cut back in {err}"));
    let path = cut.split('`').nth(1).unwrap_or_else(|| panic!("{cut}"));
    assert_ne!(
        path,
        tpl.to_str().unwrap(),
        "the current file, not the first: {err}"
    );
    let kept: u64 = cut
        .split('(')
        .next_back()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {cut}"));
    assert_eq!(records(Path::new(path)).len() as u64, kept, "{err}");
    for e in std::fs::read_dir(dir.path()).unwrap() {
        records(&e.unwrap().path());
    }
}
