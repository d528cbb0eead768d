//! Tier-1 tests of `fastpath::unstable::bpf` on the real kernel. They need root (CAP_BPF, CAP_NET_ADMIN,
//! CAP_SYS_ADMIN for namespaces); without it each prints `SKIP ...` and returns, unless
//! `FASTPATH_REQUIRE_PRIV=1`, which turns the skip into a failure.
//!
//! Every test that touches an interface works on a veth pair (or `lo`) inside its own network
//! namespace ([`NetNs`], deleted on drop even when the test panics), so nothing can stay attached
//! to a host interface.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fastpath::unstable::bpf::insn::{Insn, JmpOp, Program, Reg, Size, Src};
use fastpath::unstable::bpf::{
    self, AttachedProgram, Map, MapType, Mode, XdpAction, XdpAttachment, XdpProgram, XskMap,
};
use fastpath::Error;
use fastpath_testutil::{
    assert_frames_eq, have_cmd, is_root, require, udp_frame, NetNs, RawReceiver, DST_MAC, SRC_MAC,
};

/// Skip (or, in CI, fail) unless we can load BPF programs and make namespaces.
macro_rules! require_bpf {
    () => {
        require!(
            is_root(),
            "needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)"
        );
        require!(have_cmd("ip"), "needs `ip` from iproute2");
    };
}

fn frame64() -> Vec<u8> {
    udp_frame(1, 64, DST_MAC, SRC_MAC)
}

/// Program ids attached to `ifname` as `ip -d link show` reports them (independent of our own
/// netlink parser).
fn ip_link_xdp_ids(ns: &NetNs, ifname: &str) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-d", "-o", "link", "show", "dev", ifname])
        .output()
        .expect("spawn ip");
    assert!(out.status.success(), "ip link show failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(3)
        .filter(|w| w[0] == "prog/xdp" && w[1] == "id")
        .map(|w| w[2].parse().expect("numeric prog id"))
        .collect()
}

/// `/sys/class/net/IF/statistics/rx_packets` as seen inside the namespace (`ip netns exec`
/// remounts /sys; this thread's own /sys view is the host's).
fn rx_packets(ns: &NetNs, ifname: &str) -> u64 {
    let path = format!("/sys/class/net/{ifname}/statistics/rx_packets");
    let out = ns
        .exec("cat", [&path])
        .output()
        .expect("spawn ip netns exec cat");
    assert!(out.status.success(), "cat {path}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric counter")
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn programs_load_and_return_their_action() {
    require_bpf!();
    let xsks = XskMap::new(4).unwrap();
    let cases = [
        (
            XdpProgram::drop().unwrap(),
            XdpAction::Drop,
            "fastpath_drop",
        ),
        (
            XdpProgram::pass().unwrap(),
            XdpAction::Pass,
            "fastpath_pass",
        ),
        (XdpProgram::tx().unwrap(), XdpAction::Tx, "fastpath_tx"),
        // Empty XSKMAP: bpf_redirect_map falls back to its flags argument, XDP_PASS.
        (
            XdpProgram::redirect(&xsks).unwrap(),
            XdpAction::Pass,
            "fastpath_redir",
        ),
    ];
    let frame = frame64();
    for (prog, want, name) in &cases {
        assert_eq!(prog.name(), *name);
        assert!(prog.id() > 0);
        let r = bpf::test_run(prog, &frame, 1).unwrap();
        assert_eq!(r.action(), Some(*want), "{name}: retval {}", r.retval);
        assert_eq!(r.retval, *want as u32);
        assert_eq!(r.data_out, frame, "{name} must not touch the frame");
        let r = bpf::test_run(prog, &frame, 10_000).unwrap();
        assert_eq!(r.action(), Some(*want));
    }
    // drop=1, pass=2, tx=3 as raw numbers too.
    assert_eq!(
        cases.iter().map(|c| c.1 as u32).collect::<Vec<_>>(),
        [1, 2, 3, 2]
    );
    assert!(matches!(
        bpf::test_run(&cases[0].0, &frame[..13], 1),
        Err(Error::InvalidConfig { field: "frame", .. })
    ));
}

#[test]
fn assembled_program_with_forward_jumps_runs() {
    require_bpf!();
    // Drop broadcast frames, pass the rest: bounds check + byte load + two forward labels.
    let mut p = Program::new();
    let (pass, drop) = (p.label(), p.label());
    p.push(Insn::ldx_mem(Size::W, Reg::R2, Reg::R1, 0)); // data
    p.push(Insn::ldx_mem(Size::W, Reg::R3, Reg::R1, 4)); // data_end
    p.push(Insn::mov64_reg(Reg::R4, Reg::R2));
    p.push(Insn::alu64_imm(bpf::insn::AluOp::Add, Reg::R4, 14));
    p.jump_if(JmpOp::Gt, Reg::R4, Src::Reg(Reg::R3), pass);
    p.push(Insn::ldx_mem(Size::B, Reg::R5, Reg::R2, 0));
    p.jump_if(JmpOp::Eq, Reg::R5, Src::Imm(0xff), drop);
    p.bind(pass);
    p.push(Insn::mov64_imm(Reg::R0, XdpAction::Pass as i32));
    p.push(Insn::exit());
    p.bind(drop);
    p.push(Insn::mov64_imm(Reg::R0, XdpAction::Drop as i32));
    p.push(Insn::exit());
    let prog = XdpProgram::load("fpb_bcast", &p.finish().unwrap()).unwrap();

    let unicast = frame64();
    let mut broadcast = frame64();
    broadcast[..6].fill(0xff);
    assert_eq!(
        bpf::test_run(&prog, &unicast, 1).unwrap().action(),
        Some(XdpAction::Pass)
    );
    assert_eq!(
        bpf::test_run(&prog, &broadcast, 1).unwrap().action(),
        Some(XdpAction::Drop)
    );
}

#[test]
fn verifier_rejection_carries_the_log() {
    require_bpf!();
    // `exit` with r0 never written.
    let err = XdpProgram::load("fpb_bad", &[Insn::exit()]).unwrap_err();
    match &err {
        Error::VerifierRejected { prog, log } => {
            assert_eq!(*prog, "fpb_bad");
            assert!(log.contains("R0 !read_ok"), "log: {log}");
        }
        other => panic!("expected VerifierRejected, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("the kernel verifier rejected `fpb_bad`:"),
        "{text}"
    );
    assert!(matches!(
        XdpProgram::load("bad name!", &[Insn::exit()]),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn xskmap_refuses_non_xsk_sockets_and_bad_queues() {
    require_bpf!();
    let xsks = XskMap::new(4).unwrap();
    assert_eq!(xsks.max_entries(), 4);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = xsks.set(0, udp.as_fd()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP), "{err}");
    assert!(matches!(
        xsks.set(4, udp.as_fd()),
        Err(Error::InvalidConfig { field: "queue", .. })
    ));
    xsks.remove(0).unwrap(); // empty slot: fine
    assert!(matches!(
        xsks.remove(4),
        Err(Error::InvalidConfig { field: "queue", .. })
    ));
}

#[test]
fn array_map_round_trip() {
    require_bpf!();
    let m = Map::create(MapType::Array, 4, 8, 4, "fpb_arr").unwrap();
    assert_eq!((m.key_size(), m.value_size(), m.max_entries()), (4, 8, 4));
    m.update(&1u32.to_ne_bytes(), &0xdead_beef_u64.to_ne_bytes())
        .unwrap();
    let mut v = [0u8; 8];
    assert!(m.lookup(&1u32.to_ne_bytes(), &mut v).unwrap());
    assert_eq!(u64::from_ne_bytes(v), 0xdead_beef);
    assert!(!m.lookup(&9u32.to_ne_bytes(), &mut v).unwrap());
    assert!(matches!(
        m.update(&1u32.to_ne_bytes(), &[0u8; 4]),
        Err(Error::InvalidConfig { .. })
    ));
    let h = Map::create(MapType::Hash, 4, 4, 8, "fpb_hash").unwrap();
    h.update(&7u32.to_ne_bytes(), &1u32.to_ne_bytes()).unwrap();
    assert!(h.delete(&7u32.to_ne_bytes()).unwrap());
    assert!(!h.delete(&7u32.to_ne_bytes()).unwrap());
}

#[test]
fn attach_native_to_veth_and_detach_on_drop() {
    require_bpf!();
    let ns = NetNs::new("fpb");
    let veth = ns.veth_pair("fpb_a", "fpb_b");
    assert!(bpf::attached(veth.a_index).unwrap().is_empty());

    let prog = XdpProgram::pass().unwrap();
    let att = XdpAttachment::attach(&prog, veth.a_index, Mode::Native, false).unwrap();
    assert!(att.is_link());
    assert_eq!(
        (att.mode(), att.prog_id(), att.ifname()),
        (Mode::Native, prog.id(), "fpb_a")
    );
    assert_eq!(
        bpf::attached(veth.a_index).unwrap(),
        [AttachedProgram {
            id: prog.id(),
            name: Some("fastpath_pass".into()),
            mode: Mode::Native
        }]
    );
    assert_eq!(ip_link_xdp_ids(&ns, "fpb_a"), [prog.id()]);
    assert!(bpf::attached(veth.b_index).unwrap().is_empty());

    // Gone as soon as drop returns, even while other test threads fork (`ip` commands) and
    // so briefly hold copies of the link fd.
    drop(att);
    assert!(bpf::attached(veth.a_index).unwrap().is_empty());
    assert!(ip_link_xdp_ids(&ns, "fpb_a").is_empty());

    // Explicit detach reports success the same way.
    let att = XdpAttachment::attach(&prog, veth.a_index, Mode::Native, false).unwrap();
    att.detach().unwrap();
    assert!(bpf::attached(veth.a_index).unwrap().is_empty());

    assert!(matches!(
        bpf::attached(0x7fff_fff0),
        Err(Error::NoSuchInterface { .. })
    ));
}

#[test]
fn second_attach_without_replace_names_the_program() {
    require_bpf!();
    let ns = NetNs::new("fpb");
    let veth = ns.veth_pair("fpb_a", "fpb_b");
    let pass = XdpProgram::pass().unwrap();
    let drop_prog = XdpProgram::drop().unwrap();

    let first = XdpAttachment::attach(&pass, veth.a_index, Mode::Native, false).unwrap();
    for mode in [Mode::Native, Mode::Generic] {
        let err = XdpAttachment::attach(&drop_prog, veth.a_index, mode, false).unwrap_err();
        match &err {
            Error::XdpAlreadyAttached {
                ifname,
                ifindex,
                id,
                name,
                mode,
            } => {
                assert_eq!(ifname, "fpb_a");
                assert_eq!(*ifindex, veth.a_index);
                assert_eq!(*id, pass.id());
                assert_eq!(name, "fastpath_pass");
                assert_eq!(*mode, "native");
            }
            other => panic!("expected XdpAlreadyAttached, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("`fastpath_pass`"), "{text}");
        assert!(text.contains(&format!("id {}", pass.id())), "{text}");
        assert!(text.contains("replace"), "{text}");
    }
    // Still the first program.
    assert_eq!(ip_link_xdp_ids(&ns, "fpb_a"), [pass.id()]);

    // replace = true takes over, even though `first` holds a live link.
    let second = XdpAttachment::attach(&drop_prog, veth.a_index, Mode::Native, true).unwrap();
    assert_eq!(ip_link_xdp_ids(&ns, "fpb_a"), [drop_prog.id()]);
    // Dropping the replaced attachment must not remove its successor.
    drop(first);
    assert_eq!(ip_link_xdp_ids(&ns, "fpb_a"), [drop_prog.id()]);
    drop(second);
    assert!(ip_link_xdp_ids(&ns, "fpb_a").is_empty());
}

#[test]
fn native_on_loopback_says_generic_must_be_asked_for() {
    require_bpf!();
    let _ns = NetNs::new("fpb");
    let lo = fastpath_testutil::ifindex("lo").unwrap();
    let prog = XdpProgram::pass().unwrap();
    let err = XdpAttachment::attach(&prog, lo, Mode::Native, false).unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { backend: "xdp", .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("no native XDP"), "{text}");
    assert!(text.contains("Mode::Generic"), "{text}");
    assert!(bpf::attached(lo).unwrap().is_empty());

    let att = XdpAttachment::attach(&prog, lo, Mode::Generic, false).unwrap();
    assert_eq!(
        bpf::attached(lo).unwrap(),
        [AttachedProgram {
            id: prog.id(),
            name: Some("fastpath_pass".into()),
            mode: Mode::Generic
        }]
    );
    drop(att);
    assert!(bpf::attached(lo).unwrap().is_empty());
}

/// Set by `killed_child_leaves_nothing_attached` for the child copy of this test binary.
const CHILD_ENV: &str = "FASTPATH_BPF_TEST_CHILD_IFNAME";
const CHILD_TEST: &str = "helper_child_attaches_and_waits";

/// Not a test on its own: the body of the child process of
/// `killed_child_leaves_nothing_attached`. Without the env var it does nothing.
#[test]
fn helper_child_attaches_and_waits() {
    let Ok(ifname) = std::env::var(CHILD_ENV) else {
        return;
    };
    let prog = XdpProgram::pass().unwrap();
    let att = XdpAttachment::attach(
        &prog,
        fastpath_testutil::ifindex(&ifname).unwrap(),
        Mode::Native,
        false,
    )
    .unwrap();
    println!("ATTACHED {}", att.prog_id());
    std::io::stdout().flush().unwrap();
    // Wait to be killed; give up (and detach normally) if the parent forgot us.
    std::thread::sleep(Duration::from_secs(120));
}

/// Kills and reaps the child if the test fails before doing so.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn killed_child_leaves_nothing_attached() {
    require_bpf!();
    let ns = NetNs::new("fpb");
    let veth = ns.veth_pair("fpb_a", "fpb_b");
    let exe = std::env::current_exe().unwrap();
    let mut child = Reap(
        ns.exec(
            exe.to_str().unwrap(),
            [CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"],
        )
        .env(CHILD_ENV, &veth.a)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            // libtest prints `test NAME ... ` before the body runs, on the same line.
            if let Some((_, id)) = line.split_once("ATTACHED ") {
                let _ = tx.send(id.trim().parse::<u32>().unwrap());
            }
        }
    });
    let id = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("child attached and reported its program id");
    assert_eq!(ip_link_xdp_ids(&ns, "fpb_a"), [id]);
    let seen = bpf::attached(veth.a_index).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].id, seen[0].name.as_deref()),
        (id, Some("fastpath_pass"))
    );

    child.0.kill().unwrap(); // SIGKILL: no destructor runs in the child
    let status = child.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    // The kernel closes the link fd while tearing the process down, before it can be reaped;
    // poll briefly anyway in case the release is deferred.
    wait_until(
        "the killed child's program is gone",
        Duration::from_secs(5),
        || bpf::attached(veth.a_index).unwrap().is_empty(),
    );
    assert!(ip_link_xdp_ids(&ns, "fpb_a").is_empty());
}

#[test]
fn live_frames_tx_reach_the_peer() {
    require_bpf!();
    let ns = NetNs::new("fpb");
    let veth = ns.veth_pair("fpb_a", "fpb_b");
    let tx = XdpProgram::tx().unwrap();
    // veth's ndo_xdp_xmit needs the peer's NAPI, which exists while it has an XDP program.
    let pass = XdpProgram::pass().unwrap();
    let _peer = XdpAttachment::attach(&pass, veth.b_index, Mode::Native, false).unwrap();
    let frame = udp_frame(7, 64, DST_MAC, veth.a_mac);

    // Byte-exact: a few frames, captured on the peer.
    let rx = RawReceiver::new(&veth.b).unwrap();
    let r = bpf::test_run_live(&tx, &frame, veth.a_index, 0, 8, 0).unwrap();
    assert_eq!(r.frames, 8);
    let got = rx.collect(8, Duration::from_secs(2)).unwrap();
    assert_frames_eq(&got, &vec![frame.clone(); 8]);
    drop(rx);

    // Count: 10k frames in batches of 64 show up in the peer's rx_packets.
    let before = rx_packets(&ns, &veth.b);
    let r = bpf::test_run_live(&tx, &frame, veth.a_index, 0, 10_000, 64).unwrap();
    assert_eq!(r.frames, 10_000);
    assert!(r.duration_ns > 0);
    let delta = rx_packets(&ns, &veth.b) - before;
    assert!(
        (9_900..=10_000).contains(&delta),
        "peer rx_packets grew by {delta}, expected about 10000"
    );

    // Argument errors.
    assert!(matches!(
        bpf::test_run_live(&tx, &frame, veth.a_index, 0, 1, 257),
        Err(Error::InvalidConfig {
            field: "batch_size",
            ..
        })
    ));
    let err = bpf::test_run_live(&tx, &frame, 0x7fff_fff0, 0, 1, 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
    let err = bpf::test_run_live(&tx, &frame, veth.a_index, 5, 1, 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
}

/// Set by `unprivileged_load_names_the_capabilities` for its child.
const UNPRIV_ENV: &str = "FASTPATH_BPF_TEST_UNPRIVILEGED";

/// Not a test on its own: the body of the unprivileged child of
/// `unprivileged_load_names_the_capabilities`. Without the env var it does nothing.
#[test]
fn helper_unprivileged_load() {
    if std::env::var_os(UNPRIV_ENV).is_none() {
        return;
    }
    match XdpProgram::pass() {
        Err(Error::NotPermitted { call, needs }) => println!("NOTPERMITTED {call} / {needs}"),
        other => println!("UNEXPECTED {other:?}"),
    }
}

#[test]
fn unprivileged_load_names_the_capabilities() {
    require_bpf!();
    require!(have_cmd("setpriv"), "needs setpriv (util-linux)");
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "helper_unprivileged_load",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(UNPRIV_ENV, "1")
        .current_dir("/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("NOTPERMITTED bpf(BPF_PROG_LOAD) / CAP_BPF and CAP_NET_ADMIN"),
        "child output: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The generator's multi-flow program rewrites the UDP source port into `base..base + flows`
/// and transmits; the rest of the frame is untouched; a frame too short is transmitted as is.
#[test]
fn tx_flows_spreads_the_source_port() {
    require!(is_root(), "needs root to load BPF programs");
    let prog = XdpProgram::tx_flows(1024, 10).unwrap();
    let frame = frame64();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let r = bpf::test_run(&prog, &frame, 1).unwrap();
        assert_eq!(r.retval, 3, "XDP_TX");
        let port = u16::from_be_bytes([r.data_out[34], r.data_out[35]]);
        assert!((1024..1034).contains(&port), "port {port}");
        seen.insert(port);
        assert_eq!(&r.data_out[..34], &frame[..34]);
        assert_eq!(&r.data_out[36..], &frame[36..]);
    }
    assert!(seen.len() >= 8, "ports spread over the flows: {seen:?}");
    let short = &frame[..30];
    let r = bpf::test_run(&prog, short, 1).unwrap();
    assert_eq!((r.retval, r.data_out.as_slice()), (3, short));
    assert!(XdpProgram::tx_flows(1024, 0).is_err());
}
