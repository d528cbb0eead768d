//! Tier 1: everyday capture with `fastpath capture` on a veth pair in a private network
//! namespace, checked with tools that are not fastpath's own (tcpdump reads every file,
//! capinfos counts the pcapng statistics blocks): rotation by size and time with a ring and
//! `-z`, reading files back (`-r`) through the same filter, several interfaces and `any`,
//! statistics blocks, `-D`, `-Z`, `-j`, and the usage errors of all of these.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fastpath::pcap::{read_records, Format, Record};
use fastpath_testutil::{
    assert_frames_eq, frame_seq, have_cmd, is_root, require, udp_frame, NetNs, RawSender, TempDir,
    Veth, DST_MAC,
};

const BIN: &str = env!("CARGO_BIN_EXE_fastpath");

/// A running `fastpath capture`, its stderr read on a thread.
struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Capture {
    fn start(args: &[&str]) -> Capture {
        let mut child = Command::new(BIN)
            .arg("capture")
            .args(args)
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
        panic!("no `{needle}` from fastpath; stderr: {:#?}", self.lines);
    }

    fn interrupt(&self) {
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0);
    }

    /// Waits for exit and returns (code, stderr, stdout).
    fn finish(mut self) -> (i32, String, String) {
        let deadline = Instant::now() + Duration::from_secs(15);
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
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(300)) {
            self.lines.push(l);
        }
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut out);
        }
        (status.code().unwrap_or(-1), self.lines.join("\n"), out)
    }
}

fn setup() -> (NetNs, Veth, TempDir) {
    let ns = NetNs::new("fpd");
    let veth = ns.veth_pair("fpa", "fpb");
    (ns, veth, TempDir::new("fastpath-everyday"))
}

fn frames(n: u32, len: usize, veth: &Veth) -> Vec<Vec<u8>> {
    (0..n)
        .map(|s| udp_frame(s, len, DST_MAC, veth.a_mac))
        .collect()
}

fn read_file(path: &Path) -> (Format, Vec<Record>) {
    let bytes = std::fs::read(path).unwrap();
    read_records(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number of packets `tcpdump -r` prints for `path` (with `expr`); panics if tcpdump
/// refuses the file.
fn tcpdump_count(path: &Path, expr: &[&str]) -> usize {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(path)
        .args(expr)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tcpdump -r {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .count()
}

fn summary_count(stderr: &str, what: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_suffix(what)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `N {what}` line in:\n{stderr}"))
}

fn files_in(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// A `-z` program that appends its argument to `log`.
fn logger(dir: &Path, log: &Path) -> PathBuf {
    let script = dir.join("on-close.sh");
    let mut f = std::fs::File::create(&script).unwrap();
    writeln!(f, "#!/bin/sh\necho \"$1\" >> {}", log.display()).unwrap();
    drop(f);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// `-C` splits the capture into files of at most the size, each valid on its own (tcpdump
/// reads each), together holding every packet once and in order; `-z` runs on each closed
/// file, the last included; `-W` keeps a ring of N files.
#[test]
fn size_rotation_files_are_each_complete_and_z_sees_every_one() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    require!(have_cmd("tcpdump"), "tcpdump is not installed");
    let (_ns, veth, dir) = setup();
    let sent = frames(200, 600, &veth);
    for format in ["pcap", "pcapng"] {
        let log = dir.path().join(format!("closed-{format}.log"));
        let script = logger(dir.path(), &log);
        let base = dir.path().join(format!("sz-{format}"));
        let cap = Capture::start(&[
            "-i",
            &veth.b,
            "-c",
            "200",
            "--format",
            format,
            "-C",
            "0.02",
            "-z",
            script.to_str().unwrap(),
            "-w",
            base.to_str().unwrap(),
        ]);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let (code, err, _) = cap.finish();
        assert_eq!(code, 0, "{err}");
        assert_eq!(summary_count(&err, "packets captured"), 200, "{err}");
        let files = files_in(dir.path(), &format!("sz-{format}"));
        assert!(files.len() >= 5, "{files:?}");
        assert_eq!(files[0], base, "the first file has no number");
        let mut all = Vec::new();
        // In creation order: sz, sz1, sz2, ... sz10 (sorted by number, not by text).
        let mut ordered = files.clone();
        ordered.sort_by_key(|p| {
            let n = p.to_str().unwrap()[base.to_str().unwrap().len()..].to_owned();
            n.parse::<u32>().unwrap_or(0)
        });
        for f in &ordered {
            let size = std::fs::metadata(f).unwrap().len();
            assert!(size <= 20_000 + 200, "{}: {size} bytes", f.display());
            let (_, recs) = read_file(f);
            assert_eq!(tcpdump_count(f, &[]), recs.len(), "{}", f.display());
            all.extend(recs);
        }
        let data: Vec<&[u8]> = all.iter().map(|r| r.data.as_slice()).collect();
        assert_frames_eq(&data, &sent);
        let logged = std::fs::read_to_string(&log).unwrap();
        let logged: Vec<&str> = logged.lines().collect();
        assert_eq!(logged.len(), ordered.len(), "{logged:?}");
        for f in &ordered {
            assert!(logged.contains(&f.to_str().unwrap()), "{logged:?}");
        }
    }
    // A ring of 3.
    let base = dir.path().join("ring.pcap");
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "-c",
        "200",
        "-C",
        "20k",
        "-W",
        "3",
        "-w",
        base.to_str().unwrap(),
    ]);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let (code, err, _) = cap.finish();
    assert_eq!(code, 0, "{err}");
    let files = files_in(dir.path(), "ring.pcap");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ring.pcap0", "ring.pcap1", "ring.pcap2"]);
    let mut last = Vec::new();
    for f in &files {
        let (_, recs) = read_file(f);
        assert_eq!(tcpdump_count(f, &[]), recs.len());
        last.extend(recs.iter().filter_map(|r| frame_seq(&r.data)));
    }
    assert!(last.contains(&199), "the newest packets are kept");
    assert!(!last.contains(&0), "the oldest were overwritten");
}

/// `-G 1` starts a file every wall-clock second, named with strftime; each packet is in the
/// file of its second; Ctrl-C leaves the last one complete.
#[test]
fn time_rotation_names_files_by_the_clock() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    require!(have_cmd("tcpdump"), "tcpdump is not installed");
    let (_ns, veth, dir) = setup();
    let tpl = dir.path().join("t-%s.pcap");
    let mut cap = Capture::start(&["-i", &veth.b, "-G", "1", "-w", tpl.to_str().unwrap()]);
    let tx = RawSender::new(&veth.a).unwrap();
    let sent = frames(25, 100, &veth);
    for f in &sent {
        tx.send_all(std::slice::from_ref(f)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    cap.wait_for("pkts/s");
    cap.interrupt();
    let (code, err, _) = cap.finish();
    assert_eq!(code, 0, "{err}");
    let files = files_in(dir.path(), "t-");
    assert!(files.len() >= 3, "{files:?}");
    let mut all = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let secs: u64 = name[2..name.len() - 5].parse().unwrap();
        let (_, recs) = read_file(f);
        assert_eq!(tcpdump_count(f, &[]), recs.len());
        for r in &recs {
            let t = r.ts_ns / 1_000_000_000;
            assert!(t + 1 >= secs && t <= secs + 1, "{name}: packet at {t}");
        }
        all.extend(recs);
    }
    let data: Vec<&[u8]> = all.iter().map(|r| r.data.as_slice()).collect();
    assert_frames_eq(&data, &sent);
}

/// `-r` selects what `tcpdump -r` selects, prints the same line format as a live capture,
/// writes a subset back out with `-c`, and reads standard input, in pcap (micro- and
/// nanosecond) and pcapng.
#[test]
fn read_back_selects_what_tcpdump_selects() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    require!(have_cmd("tcpdump"), "tcpdump is not installed");
    let (_ns, veth, dir) = setup();
    let sent: Vec<Vec<u8>> = (0..60u32)
        .map(|i| match i % 3 {
            0 => fastpath_testutil::vlan_frame(i, 100, 100, DST_MAC, veth.a_mac),
            _ => udp_frame(i, 80 + i as usize, DST_MAC, veth.a_mac),
        })
        .collect();
    let ng = dir.path().join("in.pcapng");
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "-c",
        "60",
        "--format",
        "pcapng",
        "-w",
        ng.to_str().unwrap(),
    ]);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    assert_eq!(cap.finish().0, 0);
    // A microsecond pcap of the same packets, written by tcpdump.
    let us = dir.path().join("in-us.pcap");
    let st = Command::new("tcpdump")
        .args(["-r", ng.to_str().unwrap(), "-w", us.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    for input in [&ng, &us] {
        for expr in [
            "",
            "udp",
            "vlan 100",
            "udp and not vlan",
            "len > 120",
            "udp[8:4] = 0",
        ] {
            let words: Vec<&str> = expr.split_whitespace().collect();
            let out = Command::new(BIN)
                .args(["capture", "-r", input.to_str().unwrap()])
                .args(&words)
                .output()
                .unwrap();
            assert!(out.status.success(), "{expr}: {out:?}");
            let ours = String::from_utf8_lossy(&out.stdout).lines().count();
            assert_eq!(
                ours,
                tcpdump_count(input, &words),
                "{}: `{expr}`",
                input.display()
            );
        }
    }
    // Lines like the live path's.
    let out = Command::new(BIN)
        .args(["capture", "-r", ng.to_str().unwrap(), "-c", "2", "not vlan"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("10.99.0.1.1001 > 10.99.0.2.9: UDP"), "{text}");
    // -w with -c: the first matching packets, byte-exact; from standard input too.
    let sub = dir.path().join("sub.pcap");
    let mut child = Command::new(BIN)
        .args([
            "capture",
            "-r",
            "-",
            "-c",
            "5",
            "-w",
            sub.to_str().unwrap(),
            "vlan",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&ng).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let (fmt, recs) = read_file(&sub);
    assert_eq!(fmt, Format::Pcapng, "the input's format by default");
    let data: Vec<&[u8]> = recs.iter().map(|r| r.data.as_slice()).collect();
    let want: Vec<Vec<u8>> = sent.iter().step_by(3).take(5).cloned().collect();
    assert_frames_eq(&data, &want);
    assert_eq!(tcpdump_count(&sub, &[]), 5);
    // Garbage is a clear error.
    let bad = dir.path().join("bad.pcap");
    std::fs::write(&bad, b"not a capture file at all").unwrap();
    let out = Command::new(BIN)
        .args(["capture", "-r", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not pcap or pcapng"));
}

/// Walks pcapng blocks (little-endian, as we write) without fastpath: the interface
/// statistics blocks, as `(interface id, options)`.
fn statistics_blocks(bytes: &[u8]) -> Vec<(u32, Vec<(u16, u64)>)> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let (ty, len) = (u32_at(pos), u32_at(pos + 4) as usize);
        if ty == 5 {
            let id = u32_at(pos + 8);
            let mut opts = Vec::new();
            let mut o = pos + 20;
            while o + 4 <= pos + len - 4 {
                let code = u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
                let olen = u16::from_le_bytes(bytes[o + 2..o + 4].try_into().unwrap()) as usize;
                if code == 0 {
                    break;
                }
                if olen == 8 {
                    opts.push((
                        code,
                        u64::from_le_bytes(bytes[o + 4..o + 12].try_into().unwrap()),
                    ));
                }
                o += 4 + olen.div_ceil(4) * 4;
            }
            out.push((id, opts));
        }
        pos += len;
    }
    out
}

/// `-i a,b` writes one pcapng file with an interface block each and every packet on its own;
/// lines name the interface; statistics blocks for every interface agree with the summary;
/// `-i any` is read by tcpdump too.
#[test]
fn several_interfaces_and_any_into_one_pcapng_with_statistics() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    require!(have_cmd("tcpdump"), "tcpdump is not installed");
    require!(
        have_cmd("capinfos"),
        "capinfos is not installed (Debian: tshark)"
    );
    let (_ns, veth, dir) = setup();
    let both = format!("{},{}", veth.a, veth.b);
    let file = dir.path().join("two.pcapng");
    let cap = Capture::start(&["-i", &both, "-c", "60", "-w", file.to_str().unwrap()]);
    let sent = frames(30, 120, &veth);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let (code, err, _) = cap.finish();
    assert_eq!(code, 0, "{err}");
    let (fmt, recs) = read_file(&file);
    assert_eq!(fmt, Format::Pcapng);
    assert_eq!(recs.len(), 60);
    for id in [0, 1] {
        let on: Vec<&[u8]> = recs
            .iter()
            .filter(|r| r.ifindex_or_idb == id)
            .map(|r| r.data.as_slice())
            .collect();
        assert_frames_eq(&on, &sent);
    }
    assert_eq!(tcpdump_count(&file, &[]), 60);
    let info = Command::new("capinfos").arg(&file).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Number of interfaces in file: 2"), "{info}");
    assert!(
        info.contains("Name = fpa") && info.contains("Name = fpb"),
        "{info}"
    );
    // One block per interface at the end (and one every 5 s before, on a slow machine).
    let entries = info.matches("Number of stat entries = ").count();
    assert_eq!(entries, 2, "{info}");
    assert!(!info.contains("Number of stat entries = 0"), "{info}");
    let all = statistics_blocks(&std::fs::read(&file).unwrap());
    // The last block of each interface holds the final counters.
    let isbs: Vec<_> = [0u32, 1]
        .iter()
        .map(|id| {
            all.iter()
                .rev()
                .find(|(i, _)| i == id)
                .expect("a block each")
                .clone()
        })
        .collect();
    let received: u64 = isbs
        .iter()
        .map(|(_, o)| o.iter().find(|(c, _)| *c == 4).unwrap().1)
        .sum();
    let dropped: u64 = isbs
        .iter()
        .map(|(_, o)| o.iter().find(|(c, _)| *c == 7).unwrap().1)
        .sum();
    assert_eq!(
        received,
        summary_count(&err, "packets received by kernel"),
        "{isbs:?}"
    );
    assert_eq!(
        dropped,
        summary_count(&err, "packets dropped by kernel"),
        "{isbs:?}"
    );
    for (_, o) in &isbs {
        assert!(
            o.iter().any(|(c, v)| *c == 5 && *v == 0),
            "isb_ifdrop known for veth: {o:?}"
        );
    }

    // Lines name the interface.
    let cap = Capture::start(&["-i", &both, "-c", "4"]);
    RawSender::new(&veth.a)
        .unwrap()
        .send_all(&sent[..2])
        .unwrap();
    let (code, err, out) = cap.finish();
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.contains(" fpa IP ")), "{out}");
    assert!(out.lines().any(|l| l.contains(" fpb IP ")), "{out}");

    // any: every frame out on fpa and in on fpb; the interfaces named from the packets.
    let file = dir.path().join("any.pcapng");
    let cap = Capture::start(&["-i", "any", "-c", "60", "-w", file.to_str().unwrap()]);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let (code, err, _) = cap.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(tcpdump_count(&file, &[]), 60);
    let info = Command::new("capinfos").arg(&file).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    for name in ["Name = any", "Name = fpa", "Name = fpb"] {
        assert!(info.contains(name), "{info}");
    }
    let (_, recs) = read_file(&file);
    let data: Vec<&[u8]> = recs.iter().map(|r| r.data.as_slice()).collect();
    let mut twice: Vec<Vec<u8>> = Vec::new();
    for s in &sent {
        twice.push(s.clone());
        twice.push(s.clone());
    }
    let mut got: Vec<Vec<u8>> = data.iter().map(|d| d.to_vec()).collect();
    got.sort();
    twice.sort();
    assert_eq!(got, twice);
}

/// `-Z nobody`: the capture goes on after the drop, and the files are nobody's.
#[test]
fn relinquished_privileges_own_the_files() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    let sub = dir.path().join("z");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).unwrap();
    let base = sub.join("cap");
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "-Z",
        "nobody",
        "-c",
        "100",
        "-C",
        "0.02",
        "-w",
        base.to_str().unwrap(),
    ]);
    RawSender::new(&veth.a)
        .unwrap()
        .send_all(&frames(100, 600, &veth))
        .unwrap();
    let (code, err, _) = cap.finish();
    assert_eq!(code, 0, "{err}");
    let files = files_in(&sub, "cap");
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        assert_eq!(
            std::fs::metadata(f).unwrap().uid(),
            65534,
            "{}",
            f.display()
        );
    }
    // In a directory only root may write to, the next file cannot be created once root is
    // gone: the capture ends with that error at the next boundary, even without traffic, and
    // the first file stays complete.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tpl = locked.join("t-%s.pcap");
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "-Z",
        "nobody",
        "-G",
        "1",
        "-w",
        tpl.to_str().unwrap(),
    ]);
    let (code, err, _) = cap.finish();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot create capture file") && err.contains("ermission denied"),
        "{err}"
    );
    let files = files_in(&locked, "t-");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(read_file(&files[0]).1.len(), 0);
}

/// `-j adapter` on a NIC without a hardware clock says so and how to go on; `-j host` works.
#[test]
fn time_stamp_types() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    for backend in ["recv", "mmap"] {
        let out = Command::new(BIN)
            .args([
                "capture", "-i", &veth.b, "-b", backend, "-j", "adapter", "-c", "1",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("`fpb` has no hardware receive timestamps") && err.contains("-j host"),
            "{err}"
        );
    }
    let file = dir.path().join("host.pcap");
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "-j",
        "host",
        "-c",
        "3",
        "-w",
        file.to_str().unwrap(),
    ]);
    RawSender::new(&veth.a)
        .unwrap()
        .send_all(&frames(3, 64, &veth))
        .unwrap();
    assert_eq!(cap.finish().0, 0);
    assert_eq!(read_file(&file).1.len(), 3);
}

/// `-D` lists the interfaces with what each backend can do there.
#[test]
fn list_interfaces() {
    require!(is_root(), "needs root for network namespaces");
    let (_ns, veth, _dir) = setup();
    let out = Command::new(BIN).args(["capture", "-D"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let line = text.lines().find(|l| l.contains(".fpb [Up]")).expect(&text);
    assert!(line.contains("hardware timestamps: no"), "{line}");
    assert!(
        text.contains("af_xdp copy, native and generic, zero-copy: no"),
        "{text}"
    );
    assert!(text.contains("tpacket-v3"), "{text}");
    assert!(text.lines().last().unwrap().contains(".any"), "{text}");
    drop(veth);
}

#[test]
fn usage_errors_of_the_everyday_options() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth, dir) = setup();
    let w = dir.path().join("x.pcap");
    let w = w.to_str().unwrap();
    let both = format!("{},{}", veth.a, veth.b);
    let cases: &[(&[&str], &str)] = &[
        (&["-i", &veth.b, "-C", "1"], "give -w FILE"),
        (&["-i", &veth.b, "-C", "1", "-w", "-"], "cannot be rotated"),
        (&["-i", &veth.b, "-W", "3", "-w", w], "-C (size) or -G"),
        (&["-i", &veth.b, "-z", "gzip", "-w", w], "give -C or -G"),
        (&["-i", &veth.b, "-C", "0", "-w", w], "out of range"),
        (&["-i", &veth.b, "-G", "0", "-w", w], "-G"),
        (&["-r", w, "-i", &veth.b], "leave -i out"),
        (&["-i", &both, "--format", "pcap"], "pcapng"),
        (&["-i", "any,fpa"], "alone"),
        (&["-i", "any", "-b", "xdp"], "AF_PACKET"),
        (&["-i", &veth.b, "-Z", "no-such-user-fp"], "no such user"),
        (&["-i", &veth.b, "-j", "sundial"], "host or adapter"),
        (&[], "give -i"),
    ];
    for (args, msg) in cases {
        let out = Command::new(BIN)
            .arg("capture")
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: `{msg}` not in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(
        !Path::new(w).exists(),
        "no usage error leaves a file behind"
    );
}

/// A full disk in the middle of a rotated series: the capture stops with the error, every file
/// is complete, and the summary counts exactly the packets the files hold.
#[test]
fn disk_full_while_rotating_keeps_every_file_valid() {
    require!(
        is_root(),
        "needs root for network namespaces, AF_PACKET and mount"
    );
    require!(have_cmd("tcpdump"), "tcpdump is not installed");
    let (_ns, veth, dir) = setup();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let base = mnt.join("full");
    let cap = Capture::start(&[
        "-i",
        &veth.b,
        "--format",
        "pcapng",
        "-C",
        "0.02",
        "-w",
        base.to_str().unwrap(),
    ]);
    let sent = frames(300, 1000, &veth);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let (code, err, _) = cap.finish();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("disk full"), "{err}");
    let files = files_in(&mnt, "full");
    assert!(files.len() >= 2, "{files:?}");
    let mut total = 0;
    for f in &files {
        let (_, recs) = read_file(f);
        assert_eq!(tcpdump_count(f, &[]), recs.len(), "{}", f.display());
        total += recs.len() as u64;
    }
    assert_eq!(summary_count(&err, "packets captured"), total, "{err}");
}

/// Statistics blocks come every few seconds while capturing, not only at the end.
#[test]
fn statistics_blocks_every_few_seconds() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    require!(
        have_cmd("capinfos"),
        "capinfos is not installed (Debian: tshark)"
    );
    let (_ns, veth, dir) = setup();
    let file = dir.path().join("periodic.pcapng");
    let mut cap = Capture::start(&[
        "-i",
        &veth.b,
        "--format",
        "pcapng",
        "-w",
        file.to_str().unwrap(),
    ]);
    RawSender::new(&veth.a)
        .unwrap()
        .send_all(&frames(10, 100, &veth))
        .unwrap();
    // Six status lines: past five seconds, so one periodic block, then the final one.
    for _ in 0..6 {
        cap.wait_for("pkts/s");
    }
    cap.interrupt();
    let (code, err, _) = cap.finish();
    assert_eq!(code, 0, "{err}");
    let info = Command::new("capinfos").arg(&file).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Number of stat entries = 2"), "{info}");
}
