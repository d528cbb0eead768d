//! [`PcapWriter`]: encoded records buffered and written to a file or stream, cut back to the
//! last complete record when a write fails.

use std::fmt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use super::cut::{CutBack, Gate};
use super::{Encoder, Format, InterfaceStats, DEFAULT_FLUSH_BYTES};
use crate::packet::Direction;
use crate::{Error, Result};

/// What a regular file can do that a stream cannot.
struct FileOps<W> {
    /// Cut the output back to this many bytes and continue writing there.
    truncate: fn(&mut W, u64) -> io::Result<()>,
    /// Make everything written durable.
    sync: fn(&mut W) -> io::Result<()>,
}

fn truncate_file(file: &mut File, len: u64) -> io::Result<()> {
    file.set_len(len)?;
    file.seek(SeekFrom::Start(len))?;
    Ok(())
}

fn sync_file(file: &mut File) -> io::Result<()> {
    file.sync_all()
}

/// Why a [`PcapWriter`] stopped: enough to rebuild the error for later calls.
#[derive(Debug, Clone, Copy)]
struct Failure {
    os: Option<i32>,
    kind: io::ErrorKind,
}

impl Failure {
    fn io_error(self) -> io::Error {
        match self.os {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::from(self.kind),
        }
    }
}

/// Buffered capture-file sink over a [`File`] (or any [`Write`]) that never leaves a partial
/// record in a regular file.
///
/// Records are encoded into an internal buffer that is written out once it holds
/// [`DEFAULT_FLUSH_BYTES`] (see [`PcapWriter::set_flush_threshold`]), on [`PcapWriter::flush`],
/// on [`PcapWriter::finish`], and, best effort, on drop. The file header is written by the
/// first packet or flush, so interfaces registered with [`PcapWriter::add_interface`] before
/// that are described in it (see [`Encoder`]); it is written on its own, so that cutting back
/// never removes it.
///
/// If a write fails, a regular file is cut back to its length after the last successful flush,
/// so it holds exactly [`PcapWriter::packets_written`] complete packets; the error says how
/// many, and every later call returns an error too. (If not even the header could be written,
/// the file is left empty.) Records of the failing write that reached the file whole are kept; the rest are lost.
///
/// For pcapng, a file cut back before the first packet of an interface that was not registered
/// may describe no interface at all: Wireshark reads it, tcpdump refuses it. Register the
/// capture interfaces to avoid that.
pub struct PcapWriter<W: Write = File> {
    out: W,
    /// `Some` for regular files: they can be cut back and synced.
    file_ops: Option<FileOps<W>>,
    /// The path for error messages, `-` for standard output.
    path: String,
    enc: Encoder,
    buf: Vec<u8>,
    /// End offset in `buf` of each packet record encoded there (one per buffered packet), so
    /// that a write that fails part-way keeps every record that reached the file whole.
    ends: Vec<usize>,
    /// Packets complete in the output after the last successful flush.
    written: u64,
    /// Output length after the last successful flush: a record boundary.
    committed: u64,
    flush_bytes: usize,
    /// The file header has not been encoded yet.
    header_pending: bool,
    failed: Option<Failure>,
    finished: bool,
    /// Shared with a [`CutBack`] handle, once one was asked for.
    gate: Option<Arc<Gate>>,
}

impl<W: Write> fmt::Debug for PcapWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("path", &self.path)
            .field("format", &self.enc.format())
            .field("regular_file", &self.file_ops.is_some())
            .field("written", &self.written)
            .field("buffered", &self.packets_buffered())
            .field("committed_bytes", &self.committed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl PcapWriter<File> {
    /// Create (or truncate) the capture file at `path`.
    ///
    /// A new file gets mode `0600` (owner read/write, less what the umask takes away), as
    /// dumpcap's; an existing file keeps its mode and owner. A symbolic link at `path` is
    /// followed only if it is the caller's or the directory owner's, or the directory is
    /// writable by its owner alone (Linux's `fs.protected_symlinks` rule, also for
    /// group-writable directories), so a link planted in a shared directory cannot redirect a
    /// privileged capture onto another file.
    ///
    /// If `path` is not a regular file (a FIFO, `/dev/stdout`), it is written as a stream:
    /// nothing can be cut back on error.
    ///
    /// # Errors
    /// [`Error::CreateOutput`] if the file cannot be opened;
    /// [`Error::OutputIsForeignSymlink`] for a link that is not followed.
    pub fn create(path: &Path, format: Format, snaplen: u32) -> Result<Self> {
        let label = path.display().to_string();
        let file = super::open::open_output(path)?;
        let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        let ops = regular.then_some(FileOps {
            truncate: truncate_file,
            sync: sync_file,
        });
        Ok(Self::with_ops(file, label, ops, format, snaplen))
    }

    /// A handle that cuts this file back to its last complete record from another thread and
    /// stops this writer, for a program that must exit at once (see [`CutBack`]); `None` for a
    /// stream, which cannot be cut back, or if the descriptor cannot be duplicated.
    pub fn cut_back_handle(&mut self) -> Option<CutBack> {
        self.file_ops.as_ref()?;
        let file = self.out.try_clone().ok()?;
        let gate = Arc::clone(self.gate.get_or_insert_with(Default::default));
        gate.commit(self.committed, self.written);
        Some(CutBack::new(file, self.path.clone(), gate))
    }

    /// Write the capture to standard output (`-w -`), as a stream.
    ///
    /// Writes go straight to a duplicate of file descriptor 1, bypassing [`std::io::Stdout`]'s
    /// buffer: do not print anything else to standard output meanwhile.
    ///
    /// # Errors
    /// [`Error::CreateOutput`] if descriptor 1 cannot be duplicated (it is closed).
    pub fn stdout(format: Format, snaplen: u32) -> Result<Self> {
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::CreateOutput {
                path: "-".to_owned(),
                source,
            })?;
        Ok(Self::with_ops(
            File::from(fd),
            "-".to_owned(),
            None,
            format,
            snaplen,
        ))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Write a capture to the stream `w`. `name` labels it in errors.
    ///
    /// A stream cannot be cut back: on error it may end in a partial record.
    pub fn new(w: W, name: &str, format: Format, snaplen: u32) -> Self {
        Self::with_ops(w, name.to_owned(), None, format, snaplen)
    }

    fn with_ops(
        out: W,
        path: String,
        file_ops: Option<FileOps<W>>,
        format: Format,
        snaplen: u32,
    ) -> Self {
        let enc = Encoder::new(format, snaplen);
        let mut w = PcapWriter {
            out,
            file_ops,
            path,
            buf: Vec::new(),
            ends: Vec::new(),
            written: 0,
            committed: 0,
            flush_bytes: DEFAULT_FLUSH_BYTES,
            header_pending: true,
            failed: None,
            finished: false,
            gate: None,
            enc,
        };
        w.reserve_buffer();
        w
    }

    /// Room for a full buffer plus one largest record and an interface block, so that the hot
    /// path does not grow the buffer.
    fn reserve_buffer(&mut self) {
        let want = self.flush_bytes + self.enc.snaplen() as usize + 512;
        self.buf.reserve(want.saturating_sub(self.buf.len()));
        // A record is at least 16 bytes (pcap record header).
        let records = self.flush_bytes / 16 + 2;
        self.ends.reserve(records.saturating_sub(self.ends.len()));
    }

    /// Write the buffer out once it holds at least `bytes` bytes. 0 writes every packet out at
    /// once (like `tcpdump -U`); the default is [`DEFAULT_FLUSH_BYTES`].
    pub fn set_flush_threshold(&mut self, bytes: usize) {
        self.flush_bytes = bytes;
        self.reserve_buffer();
    }

    /// Register an interface name for pcapng's `if_name` option; see [`Encoder::add_interface`].
    /// Call it before the first packet so that the interface is described in the header.
    pub fn add_interface(&mut self, ifindex: u32, name: &str) {
        self.enc.add_interface(ifindex, name);
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.enc.format()
    }

    /// The link type of the file and of its interfaces; see [`Encoder::set_linktype`]. Call it
    /// before the first packet.
    pub fn set_linktype(&mut self, linktype: u16) {
        self.enc.set_linktype(linktype);
    }

    /// The link type of one pcapng interface; see [`Encoder::set_interface_linktype`].
    pub fn set_interface_linktype(&mut self, ifindex: u32, linktype: u16) {
        self.enc.set_interface_linktype(ifindex, linktype);
    }

    /// The output (the [`File`] for [`PcapWriter::create`]), e.g. to `fchown` it.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The path given at creation (`-` for standard output), for messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes of the output once everything buffered is written: what is in the file plus the
    /// buffer, plus the file header if it is still to be written. What size-based rotation
    /// ([`RotatingWriter`](super::RotatingWriter)) measures.
    pub fn len_bytes(&self) -> u64 {
        let header = if self.header_pending {
            let mut enc = self.enc.clone();
            let mut hdr = Vec::new();
            enc.header(&mut hdr);
            hdr.len() as u64
        } else {
            0
        };
        self.committed + self.buf.len() as u64 + header
    }

    /// Bytes one packet of `caplen` captured bytes adds to the output (without a pcapng
    /// interface block it may need first).
    pub fn record_len(&self, caplen: usize) -> u64 {
        let cap = caplen.min(self.enc.snaplen() as usize);
        (match self.format() {
            Format::Pcap => super::PCAP_RECORD_HEADER + cap,
            Format::Pcapng => super::EPB_FIXED + cap + super::encode::pad4(cap),
        }) as u64
    }

    /// Append a pcapng interface statistics block for `ifindex` (see
    /// [`Encoder::interface_statistics`]); nothing for pcap. It is buffered like a packet and
    /// written with the next flush.
    ///
    /// # Errors
    /// [`Error::Output`] if writing the buffer out fails, or failed before.
    pub fn write_interface_stats(
        &mut self,
        ifindex: u32,
        ts_ns: u64,
        stats: &InterfaceStats,
    ) -> Result<()> {
        self.check_failed()?;
        if self.format() != Format::Pcapng {
            return Ok(());
        }
        if self.header_pending {
            self.flush()?;
        }
        self.enc
            .interface_statistics(&mut self.buf, ifindex, ts_ns, stats);
        if self.buf.len() >= self.flush_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Encode one packet into the buffer, writing the buffer out when it is full. Arguments as
    /// for [`Encoder::packet`].
    ///
    /// # Errors
    /// [`Error::Output`] if writing the buffer out fails, or failed before.
    pub fn write_packet(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
    ) -> Result<()> {
        self.check_failed()?;
        if self.header_pending {
            // The header gets a write of its own, so that cutting back never removes it.
            self.flush()?;
        }
        self.enc
            .packet(&mut self.buf, ts_ns, orig_len, data, ifindex);
        self.ends.push(self.buf.len());
        if self.buf.len() >= self.flush_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// [`PcapWriter::write_packet`], with the packet's direction in pcapng's `epb_flags` (see
    /// [`Encoder::packet_with_direction`]).
    ///
    /// # Errors
    /// As [`PcapWriter::write_packet`].
    pub fn write_packet_with_direction(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
        direction: Direction,
    ) -> Result<()> {
        self.check_failed()?;
        if self.header_pending {
            // The header gets a write of its own, so that cutting back never removes it.
            self.flush()?;
        }
        self.enc
            .packet_with_direction(&mut self.buf, ts_ns, orig_len, data, ifindex, direction);
        self.ends.push(self.buf.len());
        if self.buf.len() >= self.flush_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Write the buffer out (and flush `W`).
    ///
    /// # Errors
    /// [`Error::Output`] if the write fails, or failed before. A regular file has been cut back
    /// to its last complete record.
    pub fn flush(&mut self) -> Result<()> {
        self.check_failed()?;
        let gate = self.gate.clone();
        if let Some(g) = &gate {
            if !g.enter() {
                return Err(self.fail(io::Error::other("the capture was cut short")));
            }
        }
        let res = self.flush_inner();
        if let Some(g) = &gate {
            g.commit(self.committed, self.written);
            g.leave();
        }
        res
    }

    /// [`PcapWriter::flush`] inside the gate, if there is one.
    fn flush_inner(&mut self) -> Result<()> {
        if self.header_pending {
            debug_assert!(self.buf.is_empty(), "packets are encoded after the header");
            self.header_pending = false;
            self.enc.header(&mut self.buf);
        }
        // write_all, but knowing how far it got: on failure every record that reached the
        // output whole is kept (and counted), and only the partial one is cut off.
        let mut pos = 0;
        let mut res = Ok(());
        while pos < self.buf.len() {
            match self.out.write(&self.buf[pos..]) {
                Ok(0) => {
                    res = Err(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        let res = res.and_then(|()| self.out.flush());
        match res {
            Ok(()) => {
                self.committed += self.buf.len() as u64;
                self.written += self.packets_buffered();
                self.buf.clear();
                self.ends.clear();
                Ok(())
            }
            Err(source) => {
                let whole = self.ends.partition_point(|&end| end <= pos);
                if whole > 0 {
                    self.committed += self.ends[whole - 1] as u64;
                    self.written += whole as u64;
                }
                Err(self.fail(source))
            }
        }
    }

    /// Write everything out and, for a regular file, `fsync(2)` it. Returns the number of
    /// packets in the output.
    ///
    /// # Errors
    /// [`Error::Output`] if a write or the sync fails, or a write failed before.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        self.finished = true;
        if let Some(ops) = &self.file_ops {
            if let Err(source) = (ops.sync)(&mut self.out) {
                return Err(Error::Output {
                    path: self.path.clone(),
                    source,
                    kept: self.written,
                    note: "but fsync failed, so they may not all be on disk (check the disk and the file system)",
                });
            }
        }
        Ok(self.written)
    }

    /// Packets that are complete in the file or stream, as of the last successful flush.
    pub fn packets_written(&self) -> u64 {
        self.written
    }

    /// Packets encoded but not yet written out.
    pub fn packets_buffered(&self) -> u64 {
        self.ends.len() as u64
    }

    fn check_failed(&self) -> Result<()> {
        match self.failed {
            None => Ok(()),
            Some(failure) => Err(Error::Output {
                path: self.path.clone(),
                source: failure.io_error(),
                kept: self.written,
                note: "an earlier write failed; nothing more is written",
            }),
        }
    }

    /// Record the failure, cut a regular file back to the last flush, and build the error.
    fn fail(&mut self, source: io::Error) -> Error {
        self.failed = Some(Failure {
            os: source.raw_os_error(),
            kind: source.kind(),
        });
        self.buf.clear();
        self.ends.clear();
        let enospc = source.raw_os_error() == Some(libc::ENOSPC);
        let note = match &self.file_ops {
            Some(ops) => match (ops.truncate)(&mut self.out, self.committed) {
                Ok(()) if enospc => {
                    "file cut back to the last complete record (free some disk space or write elsewhere)"
                }
                Ok(()) => "file cut back to the last complete record (check the disk and the file system)",
                Err(_) => "but cutting the file back failed too: it may end in a partial record (check the disk and the file system)",
            },
            None if source.raw_os_error() == Some(libc::EPIPE) => "the reader closed the pipe",
            None if enospc => "the stream may end in a partial record (free some disk space)",
            None => "the stream may end in a partial record",
        };
        Error::Output {
            path: self.path.clone(),
            source,
            kept: self.written,
            note,
        }
    }
}

impl<W: Write> Drop for PcapWriter<W> {
    /// Writes buffered packets out, best effort; call [`PcapWriter::finish`] to see errors.
    fn drop(&mut self) {
        if !self.finished && self.failed.is_none() {
            let _ = self.flush();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::pcap::fixtures::{packet, TS, UDP_FRAME};
    use crate::pcap::{read_records, Record, NS_PER_S};
    use fastpath_testutil::{have_cmd, is_root, require};
    use std::fs;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A sink with room for `room` bytes that then fails with `errno`, after a partial write.
    /// With `FileOps` it acts like a regular file.
    #[derive(Debug)]
    struct Fake {
        data: Vec<u8>,
        room: usize,
        errno: i32,
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room - self.data.len());
            if n == 0 && !buf.is_empty() {
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn fake_file(room: usize, errno: i32, format: Format) -> PcapWriter<Fake> {
        let fake = Fake {
            data: Vec::new(),
            room,
            errno,
        };
        let ops = FileOps {
            truncate: |f: &mut Fake, len| {
                f.data.truncate(len as usize);
                Ok(())
            },
            sync: |_: &mut Fake| Ok(()),
        };
        PcapWriter::with_ops(fake, "fake.pcap".to_owned(), Some(ops), format, 0)
    }

    /// Write packets until the writer fails; return the error and how many were accepted.
    fn write_until_error<W: Write>(w: &mut PcapWriter<W>, limit: u32) -> (Error, u32) {
        for i in 0..limit {
            let (ts, orig, data) = packet(i);
            if let Err(e) = w.write_packet(ts, orig, &data, 1) {
                return (e, i);
            }
        }
        panic!("no error after {limit} packets");
    }

    /// The records must be the first `n` packets of `packet(i)`.
    fn check_prefix(recs: &[Record], n: u64) {
        assert_eq!(recs.len() as u64, n);
        for (i, rec) in recs.iter().enumerate() {
            let (ts, orig, data) = packet(i as u32);
            assert_eq!((rec.ts_ns, rec.orig_len, &rec.data), (ts, orig, &data));
        }
    }

    #[test]
    fn disk_full_cuts_back_to_last_record() {
        for format in [Format::Pcap, Format::Pcapng] {
            let mut w = fake_file(100_000, libc::ENOSPC, format);
            w.set_flush_threshold(10_000);
            let (err, accepted) = write_until_error(&mut w, 10_000);
            let kept = w.packets_written();
            assert!(
                kept > 0 && kept < u64::from(accepted),
                "kept {kept} of {accepted}"
            );
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
            let msg = err.to_string();
            assert!(
                msg.contains("disk full") && msg.contains(&format!("kept {kept} packets")),
                "{msg}"
            );
            assert!(msg.contains("cut back"), "{msg}");
            // The fake filled up mid-flush; the partial chunk is gone again.
            let (_, recs) = read_records(&w.out.data).unwrap();
            check_prefix(&recs, kept);
            // Refuses further work, with the same errno.
            let again = w.write_packet(TS, 60, &[0; 60], 1).unwrap_err();
            assert_eq!(again.raw_os_error(), Some(libc::ENOSPC));
            assert!(w.flush().is_err());
            let len = w.out.data.len();
            w.out.room = usize::MAX;
            assert!(w.write_packet(TS, 60, &[0; 60], 1).is_err(), "stays failed");
            assert_eq!(w.out.data.len(), len);
        }
    }

    #[test]
    fn broken_pipe_is_recognisable() {
        let fake = Fake {
            data: Vec::new(),
            room: 5_000,
            errno: libc::EPIPE,
        };
        let mut w = PcapWriter::new(fake, "-", Format::Pcap, 0);
        w.set_flush_threshold(0);
        let (err, _) = write_until_error(&mut w, 100);
        assert!(err.is_broken_pipe(), "{err}");
        assert!(err.to_string().contains("reader closed the pipe"), "{err}");
        // A stream is not cut back: it ends in the partial record.
        assert_eq!(w.out.data.len(), 5_000);
        assert!(w.finish().unwrap_err().is_broken_pipe());
    }

    #[test]
    fn broken_pipe_on_a_real_pipe() {
        require!(have_cmd("sh"), "cannot run sh: not on PATH");
        let mut child = Command::new("sh")
            .args(["-c", "head -c 100 >/dev/null"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh is on PATH");
        let stdin = child.stdin.take().unwrap();
        let mut w = PcapWriter::new(stdin, "-", Format::Pcapng, 0);
        w.set_flush_threshold(0);
        let (err, _) = write_until_error(&mut w, 1_000_000);
        assert!(err.is_broken_pipe(), "{err}");
        child.wait().unwrap();
    }

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            // Relaxed: only uniqueness matters.
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("fastpath-pcap-{tag}-{}-{n}", std::process::id()));
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn file_round_trip_and_finish() {
        let dir = TempDir::new("file");
        for format in [Format::Pcap, Format::Pcapng] {
            let path = dir.0.join("out.cap");
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            for i in 0..600 {
                let (ts, orig, data) = packet(i);
                w.write_packet(ts, orig, &data, 1).unwrap();
            }
            assert_eq!(w.packets_written() + w.packets_buffered(), 600);
            assert!(
                w.packets_written() > 0,
                "256 KiB threshold crossed at least once"
            );
            assert_eq!(w.finish().unwrap(), 600);
            let (got, recs) = read_records(&fs::read(&path).unwrap()).unwrap();
            assert_eq!(got, format);
            check_prefix(&recs, 600);
        }
        // Drop flushes what is buffered.
        let path = dir.0.join("dropped.pcap");
        let mut w = PcapWriter::create(&path, Format::Pcap, 0).unwrap();
        w.write_packet(TS, 46, &UDP_FRAME, 1).unwrap();
        assert_eq!(w.packets_written(), 0);
        drop(w);
        assert_eq!(read_records(&fs::read(&path).unwrap()).unwrap().1.len(), 1);
    }

    /// A cut from another thread, while a thread writes and flushes as fast as it can, leaves a
    /// file of whole records holding exactly the count it reports, and stops the writer.
    #[test]
    fn cut_back_from_another_thread_leaves_whole_records() {
        let dir = TempDir::new("cut");
        for format in [Format::Pcap, Format::Pcapng] {
            let path = dir.0.join("cut.cap");
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            w.set_flush_threshold(3_000);
            w.flush().unwrap();
            let cut = w.cut_back_handle().expect("a regular file");
            assert_eq!(cut.path(), path.display().to_string());
            let writer = std::thread::spawn(move || {
                let mut i = 0;
                while w
                    .write_packet(packet(i).0, packet(i).1, &packet(i).2, 1)
                    .is_ok()
                {
                    i += 1;
                }
                (w, i)
            });
            std::thread::sleep(std::time::Duration::from_millis(30));
            let kept = cut.cut_back().unwrap();
            let (mut w, accepted) = writer.join().unwrap();
            assert!(
                kept > 0 && kept < u64::from(accepted) + 1,
                "{kept} of {accepted}"
            );
            assert!(w.flush().is_err(), "the writer stays stopped");
            drop(w);
            let (_, recs) = read_records(&fs::read(&path).unwrap()).unwrap();
            check_prefix(&recs, kept);
        }
        // Streams have no handle.
        let mut s = PcapWriter::stdout(Format::Pcap, 0).unwrap();
        if !fs::metadata("/proc/self/fd/1").is_ok_and(|m| m.is_file()) {
            assert!(s.cut_back_handle().is_none());
        }
        s.finished = true; // nothing to write to the test's stdout
    }

    #[test]
    fn create_error_names_path_and_fix() {
        let err =
            PcapWriter::create(Path::new("/nonexistent-dir/x.pcap"), Format::Pcap, 0).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent-dir/x.pcap") && msg.contains("directory exists"),
            "{msg}"
        );
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    /// A tmpfs mounted on a directory, unmounted on drop (also when the test panics).
    struct Tmpfs<'a>(&'a Path);

    impl<'a> Tmpfs<'a> {
        fn mount(dir: &'a Path, options: &str) -> std::result::Result<Self, String> {
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "fastpath-test"])
                .arg(dir)
                .output()
                .map_err(|e| format!("cannot run mount: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "mount tmpfs failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(Tmpfs(dir))
        }
    }

    impl Drop for Tmpfs<'_> {
        fn drop(&mut self) {
            let ok = Command::new("umount")
                .arg(self.0)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Something still holds it open: detach it now, it goes away when closed.
                let _ = Command::new("umount").arg("-l").arg(self.0).status();
            }
        }
    }

    #[test]
    fn disk_full_on_a_real_tmpfs() {
        require!(is_root(), "needs root to mount a tmpfs");
        let dir = TempDir::new("tmpfs");
        let mounted = Tmpfs::mount(&dir.0, "size=64k");
        require!(
            mounted.is_ok(),
            "{}",
            mounted.as_ref().err().map_or("", String::as_str)
        );
        let mnt = mounted.expect("require! returned on Err");
        for (format, threshold) in [
            (Format::Pcap, 10_000),
            (Format::Pcapng, 0),
            (Format::Pcapng, DEFAULT_FLUSH_BYTES),
        ] {
            let path = mnt.0.join("cap");
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            w.set_flush_threshold(threshold);
            let (err, _) = write_until_error(&mut w, 100_000);
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
            let kept = w.packets_written();
            assert!(err.to_string().contains("disk full"), "{err}");
            assert!(
                err.to_string().contains(&format!("kept {kept} packets")),
                "{err}"
            );
            drop(w);
            let bytes = fs::read(&path).unwrap();
            let (got, recs) = read_records(&bytes).unwrap();
            assert_eq!(got, format);
            check_prefix(&recs, kept);
            if threshold < DEFAULT_FLUSH_BYTES {
                assert!(kept > 0, "{format:?}: some packets fit in 64 KiB");
            }
            if let Some(lines) = tcpdump_lines(&path) {
                assert_eq!(
                    lines.len() as u64,
                    kept,
                    "{format:?}: tcpdump reads the cut file"
                );
            }
            fs::remove_file(&path).unwrap();
        }
    }

    /// `tcpdump -nn -tt --time-stamp-precision=nano -r path` output, one line per packet (hex
    /// dumps of unknown payloads left out), `None` if tcpdump is not installed. Panics if tcpdump
    /// rejects the file.
    fn tcpdump_lines(path: &Path) -> Option<Vec<String>> {
        let out = Command::new("tcpdump")
            .args(["-nn", "-tt", "--time-stamp-precision=nano", "-r"])
            .arg(path)
            .output()
            .ok()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tcpdump rejects {}: {stderr}",
            path.display()
        );
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with(char::is_whitespace))
                .map(str::to_owned)
                .collect(),
        )
    }

    #[test]
    fn tcpdump_reads_our_files() {
        require!(have_cmd("tcpdump"), "tcpdump is not installed");
        let dir = TempDir::new("tcpdump");
        for format in [Format::Pcap, Format::Pcapng] {
            let path = dir.0.join("out.cap");
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            w.write_packet(TS, 46, &UDP_FRAME, 1).unwrap();
            w.write_packet(TS + 1, 46, &UDP_FRAME, 2).unwrap();
            w.write_packet(TS + NS_PER_S, 1500, &UDP_FRAME, 1).unwrap(); // 46 of 1500 captured
            w.finish().unwrap();
            let lines = tcpdump_lines(&path).unwrap();
            assert_eq!(lines.len(), 3, "{format:?}: {lines:?}");
            let want = "1700000000.123456789 IP 10.0.0.1.1234 > 10.0.0.2.53:";
            assert!(lines[0].starts_with(want), "{format:?}: {lines:?}");
            assert!(
                lines[1].starts_with("1700000000.123456790 IP "),
                "{format:?}: {lines:?}"
            );
            assert!(
                lines[2].starts_with("1700000001.123456789 IP "),
                "{format:?}: {lines:?}"
            );
            // A capture without packets is readable too (pcapng: the IDB is in the header).
            let mut w = PcapWriter::create(&path, format, 0).unwrap();
            w.add_interface(1, "veth0");
            assert_eq!(w.finish().unwrap(), 0);
            assert_eq!(tcpdump_lines(&path).unwrap().len(), 0, "{format:?}");
        }
    }
}

#[cfg(test)]
mod isb_test {
    use super::*;
    use crate::pcap::fixtures::{TS, UDP_FRAME};
    use fastpath_testutil::{have_cmd, require, TempDir};
    use std::process::Command;

    /// Statistics blocks for two interfaces, as an outside reader (tshark's `capinfos`) sees
    /// them: per interface, the number of statistics entries and the drop count.
    #[test]
    fn capinfos_reads_interface_statistics() {
        require!(
            have_cmd("capinfos"),
            "capinfos is not installed (Debian: tshark)"
        );
        let dir = TempDir::new("fastpath-isb");
        let path = dir.path().join("isb.pcapng");
        let mut w = PcapWriter::create(&path, Format::Pcapng, 0).unwrap();
        w.add_interface(4, "fpa");
        w.add_interface(9, "fpb");
        w.write_packet(TS, 46, &UDP_FRAME, 4).unwrap();
        w.write_packet(TS + 1, 46, &UDP_FRAME, 9).unwrap();
        for (i, (ifindex, drops)) in [(4, 3u64), (9, 17)].into_iter().enumerate() {
            let st = InterfaceStats {
                start_ns: Some(TS - 1_000_000_000),
                received: Some(100 + i as u64),
                os_dropped: Some(drops),
                if_dropped: Some(0),
                delivered: Some(90),
                ..InterfaceStats::default()
            };
            w.write_interface_stats(ifindex, TS + 2, &st).unwrap();
        }
        w.finish().unwrap();
        let out = Command::new("capinfos").arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{text}");
        assert!(text.contains("Number of interfaces in file: 2"), "{text}");
        assert_eq!(
            text.matches("Number of stat entries = 1").count(),
            2,
            "{text}"
        );
    }
}
