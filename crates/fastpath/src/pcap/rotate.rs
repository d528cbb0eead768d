//! [`RotatingWriter`]: a capture split over several files by size and time, optionally kept
//! as a ring of at most N files (tcpdump's `-C`, `-G`, `-W`).

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CutBack, Format, InterfaceStats, PcapWriter};
use crate::packet::Direction;
use crate::sys::time::{strftime_local, utc_offset};
use crate::{Error, Result};

/// When a [`RotatingWriter`] starts a new file, and how many it keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// Start a new file before a packet that would take the current one past this many bytes
    /// (tcpdump `-C`, which counts in units of 1,000,000 bytes).
    pub size: Option<u64>,
    /// Start a new file at every multiple of this interval of local wall-clock time
    /// (tcpdump `-G`): with 3600 s on the hour, with 86400 s at local midnight. The file name is
    /// then a `strftime(3)` template.
    pub interval: Option<Duration>,
    /// Keep at most this many files (tcpdump `-W`): a ring.
    pub max_files: Option<u32>,
}

impl Rotation {
    /// No rotation: one file.
    pub fn new() -> Rotation {
        Rotation::default()
    }

    /// Sets [`Rotation::size`].
    pub fn size(mut self, bytes: u64) -> Rotation {
        self.size = Some(bytes);
        self
    }

    /// Sets [`Rotation::interval`].
    pub fn interval(mut self, every: Duration) -> Rotation {
        self.interval = Some(every);
        self
    }

    /// Sets [`Rotation::max_files`].
    pub fn max_files(mut self, n: u32) -> Rotation {
        self.max_files = Some(n);
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size, interval or file count, or a file count
    /// without a size or interval to rotate on.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, why: &str| {
            Err(Error::InvalidConfig {
                field,
                why: why.to_owned(),
            })
        };
        if self.size == Some(0) {
            return bad("file size (-C)", "0 bytes: give a size of at least 1 byte");
        }
        if self
            .interval
            .is_some_and(|d| d.as_secs() == 0 || d.subsec_nanos() != 0)
        {
            return bad(
                "rotation interval (-G)",
                "give a whole number of seconds, at least 1",
            );
        }
        if self.max_files == Some(0) {
            return bad("file count (-W)", "0 files: keep at least 1");
        }
        if self.max_files.is_some() && self.size.is_none() && self.interval.is_none() {
            return bad(
                "file count (-W)",
                "it limits rotated files: give -C (size) or -G (time) too",
            );
        }
        Ok(())
    }

    fn rotates(&self) -> bool {
        self.size.is_some() || self.interval.is_some()
    }
}

/// Called with each file's writer just before it is closed (to add interface statistics).
pub type BeforeClose = Box<dyn FnMut(&mut PcapWriter) -> Result<()> + Send>;

/// Called with each new file's writer once its header is written (e.g. to take its
/// [`PcapWriter::cut_back_handle`]).
pub type AfterOpen = Box<dyn FnMut(&mut PcapWriter) + Send>;

/// A capture written over several files: a new file when the current one would grow past a
/// size, at wall-clock boundaries, or both; at most N files kept, as a ring.
///
/// **Every file is a complete capture on its own**: it starts with its own header (and, for
/// pcapng, the description blocks of the registered interfaces), written as soon as a rotation
/// creates it, and is finished — flushed, synced, statistics added by the [`BeforeClose`]
/// hook — before the next one is created. Files are created as [`PcapWriter::create`] creates
/// them (mode `0600` when new, no foreign symbolic link followed); a name the ring reuses is
/// overwritten.
/// A failed write cuts the current file back to its last complete packet, as
/// [`PcapWriter`] does, and stops the writer.
///
/// Names, as tcpdump's `-C`/`-G`/`-W` make them:
/// - The template is the path as given; with an interval it is a `strftime(3)` format
///   expanded in local time for the moment the file starts (the first file: when it was
///   created; the next ones: the boundary).
/// - Files that share an expanded name get a number appended: none for the first (`cap`,
///   `cap1`, `cap2`, ...); with [`Rotation::max_files`] every file has one, zero-padded to the
///   width of the largest (`cap0` ... `cap9` for 10).
/// - With a size limit and a file count but no interval the numbers go round: `cap0`, ...,
///   `cap9`, then `cap0` is overwritten (tcpdump's ring). With an interval, the oldest file
///   of this capture is deleted once there are more than the count (tcpdump exits instead).
///
/// Size: a file is closed before a packet that would take it past the limit (interface and
/// statistics blocks may add a few dozen bytes); a file holds at least one packet, so a
/// packet larger than the limit gets a file of its own.
///
/// Time: [`RotatingWriter::write_packet`] checks the wall clock when an interval is set; call
/// [`RotatingWriter::tick`] about once a second so that a file also ends when no packet
/// arrives (the next file then holds no packet, but is valid).
///
/// Closed files are reported by [`RotatingWriter::take_closed`] (for tcpdump's `-z`).
pub struct RotatingWriter {
    template: String,
    format: Format,
    snaplen: u32,
    flush_bytes: Option<usize>,
    rotation: Rotation,
    interfaces: Vec<(u32, String)>,
    linktype: Option<u16>,
    cur: Option<PcapWriter>,
    /// The expanded template of the current file, and its number among files sharing it.
    base: String,
    number: u32,
    /// Next wall-clock boundary, ns since the epoch.
    next_boundary: Option<u64>,
    /// Files this writer created and still keeps, oldest first.
    kept: VecDeque<PathBuf>,
    /// Files closed since the last [`RotatingWriter::take_closed`].
    closed: Vec<PathBuf>,
    /// Packets in the files already closed.
    closed_packets: u64,
    before_close: Option<BeforeClose>,
    after_open: Option<AfterOpen>,
    /// A rotation failed, or `finish` ran: nothing more is written.
    stopped: bool,
}

impl fmt::Debug for RotatingWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatingWriter")
            .field("template", &self.template)
            .field("rotation", &self.rotation)
            .field("current", &self.cur)
            .field("kept", &self.kept)
            .field("closed_packets", &self.closed_packets)
            .finish_non_exhaustive()
    }
}

const NS_PER_S: u64 = super::NS_PER_S;

impl RotatingWriter {
    /// Creates the first file from `template` (see the type's docs for names).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad [`Rotation`] or a template that expands to nothing;
    /// [`Error::CreateOutput`] if the file cannot be created.
    pub fn create(
        template: &str,
        format: Format,
        snaplen: u32,
        rotation: Rotation,
    ) -> Result<RotatingWriter> {
        rotation.validate()?;
        let now = crate::sys::realtime_ns();
        let mut w = RotatingWriter {
            template: template.to_owned(),
            format,
            snaplen,
            flush_bytes: None,
            rotation,
            interfaces: Vec::new(),
            linktype: None,
            cur: None,
            base: String::new(),
            number: 0,
            next_boundary: None,
            kept: VecDeque::new(),
            closed: Vec::new(),
            closed_packets: 0,
            before_close: None,
            after_open: None,
            stopped: false,
        };
        w.base = w.expand(now)?;
        w.next_boundary = w.boundary_after(now);
        w.open_current()?;
        Ok(w)
    }

    /// The rotation settings.
    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    /// The link type of every file and interface; see [`PcapWriter::set_linktype`].
    pub fn set_linktype(&mut self, linktype: u16) {
        self.linktype = Some(linktype);
        if let Some(w) = &mut self.cur {
            w.set_linktype(linktype);
        }
    }

    /// Registers an interface in the current file (if its header is not written yet) and in
    /// every later one; see [`PcapWriter::add_interface`].
    pub fn add_interface(&mut self, ifindex: u32, name: &str) {
        match self.interfaces.iter_mut().find(|(i, _)| *i == ifindex) {
            Some((_, old)) => name.clone_into(old),
            None => self.interfaces.push((ifindex, name.to_owned())),
        }
        if let Some(w) = &mut self.cur {
            w.add_interface(ifindex, name);
        }
    }

    /// See [`PcapWriter::set_flush_threshold`]; applies to every file.
    pub fn set_flush_threshold(&mut self, bytes: usize) {
        self.flush_bytes = Some(bytes);
        if let Some(w) = &mut self.cur {
            w.set_flush_threshold(bytes);
        }
    }

    /// Runs `hook` on each file's writer just before it is closed, the last one included (at
    /// [`RotatingWriter::finish`]).
    pub fn set_before_close(&mut self, hook: BeforeClose) {
        self.before_close = Some(hook);
    }

    /// Runs `hook` on each file a rotation creates from now on, once its header is written
    /// (the current file is not among them).
    pub fn set_after_open(&mut self, hook: AfterOpen) {
        self.after_open = Some(hook);
    }

    /// A [`CutBack`] handle of the current file (see [`PcapWriter::cut_back_handle`]); the
    /// next file needs a handle of its own ([`RotatingWriter::set_after_open`]).
    pub fn cut_back_handle(&mut self) -> Option<CutBack> {
        self.cur.as_mut()?.cut_back_handle()
    }

    /// The file being written.
    pub fn current_path(&self) -> Option<&Path> {
        self.cur.as_ref().map(|w| Path::new(w.path()))
    }

    /// The writer of the current file (e.g. to `fchown` it).
    pub fn current(&self) -> Option<&PcapWriter> {
        self.cur.as_ref()
    }

    /// Packets complete in the files: those closed plus, for the current one, as of its last
    /// flush.
    pub fn packets_written(&self) -> u64 {
        self.closed_packets + self.cur.as_ref().map_or(0, PcapWriter::packets_written)
    }

    /// The files closed since the last call, oldest first (a file the ring overwrote or deleted
    /// since may be among them).
    pub fn take_closed(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.closed)
    }

    /// Writes one packet, first starting a new file if the wall clock passed a boundary or the
    /// packet would take the file past the size limit. Arguments as for
    /// [`PcapWriter::write_packet`].
    ///
    /// # Errors
    /// [`Error::Output`] if a write fails (the file is cut back to its last complete packet);
    /// [`Error::CreateOutput`] if the next file cannot be created. Both stop the writer.
    pub fn write_packet(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
    ) -> Result<()> {
        self.write(ts_ns, orig_len, data, ifindex, None)
    }

    /// [`RotatingWriter::write_packet`], with the packet's direction in pcapng's `epb_flags`
    /// (see [`PcapWriter::write_packet_with_direction`]).
    ///
    /// # Errors
    /// As [`RotatingWriter::write_packet`].
    pub fn write_packet_with_direction(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
        direction: Direction,
    ) -> Result<()> {
        self.write(ts_ns, orig_len, data, ifindex, Some(direction))
    }

    fn write(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        ifindex: u32,
        direction: Option<Direction>,
    ) -> Result<()> {
        if self.next_boundary.is_some() {
            self.tick(crate::sys::realtime_ns())?;
        }
        if let Some(limit) = self.rotation.size {
            let flags = match (direction, self.format) {
                (Some(_), Format::Pcapng) => super::encode::EPB_FLAGS_LEN as u64,
                _ => 0,
            };
            let w = self.writer()?;
            let has_packets = w.packets_written() + w.packets_buffered() > 0;
            if has_packets && w.len_bytes() + w.record_len(data.len()) + flags > limit {
                self.rotate(None)?;
            }
        }
        let w = self.writer()?;
        let res = match direction {
            Some(d) => w.write_packet_with_direction(ts_ns, orig_len, data, ifindex, d),
            None => w.write_packet(ts_ns, orig_len, data, ifindex),
        };
        res.map_err(|e| self.count_all(e))
    }

    /// An error of the current file's writer, its `kept` counting the packets of every file.
    fn count_all(&self, e: Error) -> Error {
        match e {
            Error::Output {
                path,
                source,
                kept,
                note,
            } => Error::Output {
                path,
                source,
                kept: kept + self.closed_packets,
                note,
            },
            e => e,
        }
    }

    /// Starts the next file if the wall clock (`now_ns`, ns since the epoch) passed a boundary
    /// of the interval; does nothing without one.
    ///
    /// # Errors
    /// As [`RotatingWriter::write_packet`].
    pub fn tick(&mut self, now_ns: u64) -> Result<()> {
        match self.next_boundary {
            Some(b) if now_ns >= b => {
                // Named for the boundary passed last (several may have passed while idle).
                let every = self.interval_ns();
                let start = b + (now_ns - b) / every * every;
                self.next_boundary = Some(start + every);
                self.rotate(Some(start))
            }
            _ => Ok(()),
        }
    }

    /// Appends interface statistics to the current file; see
    /// [`PcapWriter::write_interface_stats`].
    ///
    /// # Errors
    /// As [`PcapWriter::write_interface_stats`].
    pub fn write_interface_stats(
        &mut self,
        ifindex: u32,
        ts_ns: u64,
        stats: &InterfaceStats,
    ) -> Result<()> {
        let res = self.writer()?.write_interface_stats(ifindex, ts_ns, stats);
        res.map_err(|e| self.count_all(e))
    }

    /// Writes the buffer of the current file out.
    ///
    /// # Errors
    /// As [`PcapWriter::flush`].
    pub fn flush(&mut self) -> Result<()> {
        let res = self.writer()?.flush();
        res.map_err(|e| self.count_all(e))
    }

    /// Closes the current file (hook, flush, fsync) and returns the packets in all files. The
    /// file is then among [`RotatingWriter::take_closed`]; nothing more is written.
    ///
    /// # Errors
    /// As [`PcapWriter::finish`].
    pub fn finish(&mut self) -> Result<u64> {
        self.close_current()?;
        self.stopped = true;
        Ok(self.closed_packets)
    }

    fn writer(&mut self) -> Result<&mut PcapWriter> {
        match &mut self.cur {
            Some(w) if !self.stopped => Ok(w),
            _ => Err(Error::Output {
                path: self.template.clone(),
                source: io::Error::other("the capture files were closed"),
                kept: self.closed_packets,
                note: "an earlier error or the end of the capture closed them; nothing more is written",
            }),
        }
    }

    fn interval_ns(&self) -> u64 {
        self.rotation
            .interval
            .map_or(u64::MAX, |d| d.as_secs().saturating_mul(NS_PER_S))
    }

    /// The first boundary after `now_ns`: the next multiple of the interval in local time.
    fn boundary_after(&self, now_ns: u64) -> Option<u64> {
        let every = self.rotation.interval?.as_secs() as i64;
        let secs = (now_ns / NS_PER_S) as i64;
        let off = utc_offset(secs);
        let local = secs + off;
        let next_local = (local.div_euclid(every) + 1) * every;
        Some(((next_local - off).max(0) as u64).saturating_mul(NS_PER_S))
    }

    /// The template, expanded for `at_ns` when rotating by time.
    fn expand(&self, at_ns: u64) -> Result<String> {
        if self.rotation.interval.is_none() {
            return Ok(self.template.clone());
        }
        strftime_local(&self.template, (at_ns / NS_PER_S) as i64).ok_or_else(|| {
            Error::InvalidConfig {
                field: "file name",
                why: format!(
                    "`{}` does not expand to a file name with strftime (too long, or empty)",
                    self.template
                ),
            }
        })
    }

    /// The path of file `number` of `base`.
    fn path_for(&self, base: &str, number: u32) -> PathBuf {
        match self.rotation.max_files {
            None if number == 0 => PathBuf::from(base),
            None => PathBuf::from(format!("{base}{number}")),
            Some(n) => {
                let width = digits(n - 1);
                if width == 0 {
                    PathBuf::from(base)
                } else {
                    PathBuf::from(format!("{base}{number:0width$}"))
                }
            }
        }
    }

    /// Closes the current file and opens the next: for a time boundary (`Some(start)`) or for
    /// size (`None`).
    fn rotate(&mut self, boundary: Option<u64>) -> Result<()> {
        if !self.rotation.rotates() {
            return Ok(());
        }
        self.close_current()?;
        let base = match boundary {
            Some(start) => self.expand(start)?,
            None => self.base.clone(),
        };
        if base == self.base {
            self.number += 1;
            if let (Some(n), None) = (self.rotation.max_files, self.rotation.interval) {
                self.number %= n;
            }
        } else {
            self.number = 0;
        }
        self.base = base;
        self.open_current()?;
        // The header at once: the new file is a valid capture from the start.
        self.flush()?;
        if let (Some(hook), Some(w)) = (&mut self.after_open, &mut self.cur) {
            hook(w);
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        let Some(mut w) = self.cur.take() else {
            return Ok(());
        };
        let path = PathBuf::from(w.path());
        let hook = match &mut self.before_close {
            Some(hook) if !self.stopped => hook(&mut w),
            _ => Ok(()),
        };
        let kept_before = w.packets_written() + w.packets_buffered();
        let res = hook.and_then(|()| w.finish());
        self.closed.push(path);
        match res {
            Ok(n) => {
                self.closed_packets += n;
                Ok(())
            }
            Err(e) => {
                self.stopped = true;
                let kept = match &e {
                    Error::Output { kept, .. } => *kept,
                    _ => kept_before,
                };
                let e = self.count_all(e);
                self.closed_packets += kept;
                Err(e)
            }
        }
    }

    fn open_current(&mut self) -> Result<()> {
        let path = self.path_for(&self.base, self.number);
        let res = PcapWriter::create(&path, self.format, self.snaplen);
        let mut w = match res {
            Ok(w) => w,
            Err(e) => {
                self.stopped = true;
                return Err(e);
            }
        };
        if let Some(bytes) = self.flush_bytes {
            w.set_flush_threshold(bytes);
        }
        for (ifindex, name) in &self.interfaces {
            w.add_interface(*ifindex, name);
        }
        if let Some(l) = self.linktype {
            w.set_linktype(l);
        }
        self.cur = Some(w);
        // The ring: a reused name moves to the back; beyond the count the oldest goes.
        self.kept.retain(|p| *p != path);
        self.kept.push_back(path);
        if let Some(n) = self.rotation.max_files {
            while self.kept.len() > n as usize {
                if let Some(old) = self.kept.pop_front() {
                    // Already gone (a -z command moved it): nothing to do.
                    let _ = fs::remove_file(old);
                }
            }
        }
        Ok(())
    }
}

/// Decimal digits of `n` (0 for 0): tcpdump's padding width for `-W n+1`.
fn digits(mut n: u32) -> usize {
    let mut d = 0;
    while n > 0 {
        d += 1;
        n /= 10;
    }
    d
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::pcap::fixtures::packet;
    use crate::pcap::read_records;
    use fastpath_testutil::TempDir;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn size_rotation_names_and_limits() {
        let dir = TempDir::new("fastpath-rotate");
        let tpl = dir.path().join("cap").to_str().unwrap().to_owned();
        let mut w =
            RotatingWriter::create(&tpl, Format::Pcap, 0, Rotation::new().size(10_000)).unwrap();
        let mut sent = 0u64;
        for i in 0..100 {
            let (ts, orig, data) = packet(i);
            w.write_packet(ts, orig, &data, 1).unwrap();
            sent += 1;
        }
        assert_eq!(w.finish().unwrap(), sent);
        let closed = w.take_closed();
        let files = names(dir.path());
        assert_eq!(files.len(), closed.len());
        assert_eq!(files[0], "cap");
        assert!(files.contains(&"cap1".to_owned()), "{files:?}");
        let mut total = 0;
        let mut next = 0u32;
        for path in &closed {
            let bytes = fs::read(path).unwrap();
            assert!(bytes.len() <= 10_000, "{}: {}", path.display(), bytes.len());
            let (_, recs) = read_records(&bytes).unwrap();
            assert!(!recs.is_empty());
            for r in &recs {
                assert_eq!(r.data, packet(next).2, "packets in order across files");
                next += 1;
            }
            total += recs.len();
        }
        assert_eq!(total as u64, sent);
    }

    #[test]
    fn ring_of_w_files_overwrites_the_oldest() {
        let dir = TempDir::new("fastpath-ring");
        let tpl = dir.path().join("r.pcapng").to_str().unwrap().to_owned();
        let rot = Rotation::new().size(3_000).max_files(3);
        let mut w = RotatingWriter::create(&tpl, Format::Pcapng, 0, rot).unwrap();
        w.add_interface(1, "eth0");
        let hooks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let h = hooks.clone();
        w.set_before_close(Box::new(move |pw| {
            h.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            pw.write_interface_stats(1, 5, &InterfaceStats::default())
        }));
        for i in 0..60 {
            let (ts, orig, data) = packet(i);
            w.write_packet(ts, orig, &data, 1).unwrap();
        }
        w.finish().unwrap();
        let closed = w.take_closed();
        assert!(closed.len() > 3, "{closed:?}");
        assert_eq!(
            hooks.load(std::sync::atomic::Ordering::Relaxed) as usize,
            closed.len()
        );
        assert_eq!(names(dir.path()), ["r.pcapng0", "r.pcapng1", "r.pcapng2"]);
        // The last file holds the last packet and is complete.
        let last = closed.last().unwrap();
        let (_, recs) = read_records(&fs::read(last).unwrap()).unwrap();
        assert_eq!(recs.last().unwrap().data, packet(59).2);
    }

    #[test]
    fn time_rotation_names_files_with_strftime() {
        let dir = TempDir::new("fastpath-time");
        let tpl = dir.path().join("t-%s.pcap").to_str().unwrap().to_owned();
        let rot = Rotation::new().interval(Duration::from_secs(10));
        let mut w = RotatingWriter::create(&tpl, Format::Pcap, 0, rot).unwrap();
        let first = w.current_path().unwrap().to_owned();
        let b = w.next_boundary.unwrap();
        assert_eq!(b % (10 * NS_PER_S), 0, "aligned (whole-hour time zones)");
        w.write_packet(1, 60, &[0; 60], 1).unwrap();
        // Idle for 25 s: one rotation, named for the last boundary passed.
        w.tick(b + 25 * NS_PER_S).unwrap();
        let second = w.current_path().unwrap().to_owned();
        assert_eq!(
            second.file_name().unwrap().to_str().unwrap(),
            format!("t-{}.pcap", b / NS_PER_S + 20)
        );
        assert_eq!(w.next_boundary, Some(b + 30 * NS_PER_S));
        w.finish().unwrap();
        assert_eq!(w.take_closed(), [first.clone(), second.clone()]);
        assert_eq!(read_records(&fs::read(&first).unwrap()).unwrap().1.len(), 1);
        assert_eq!(
            read_records(&fs::read(&second).unwrap()).unwrap().1.len(),
            0
        );
        // A template without conversions gets numbers instead of overwriting.
        let tpl = dir.path().join("same.pcap").to_str().unwrap().to_owned();
        let mut w = RotatingWriter::create(&tpl, Format::Pcap, 0, rot).unwrap();
        let b = w.next_boundary.unwrap();
        w.tick(b).unwrap();
        w.tick(b + 10 * NS_PER_S).unwrap();
        w.finish().unwrap();
        let n: Vec<_> = w
            .take_closed()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(n, ["same.pcap", "same.pcap1", "same.pcap2"]);
    }

    #[test]
    fn time_ring_deletes_the_oldest() {
        let dir = TempDir::new("fastpath-tring");
        let tpl = dir.path().join("t-%s").to_str().unwrap().to_owned();
        let rot = Rotation::new()
            .interval(Duration::from_secs(1))
            .max_files(2);
        let mut w = RotatingWriter::create(&tpl, Format::Pcap, 0, rot).unwrap();
        let b = w.next_boundary.unwrap();
        for k in 0..4 {
            w.tick(b + k * NS_PER_S).unwrap();
        }
        w.finish().unwrap();
        let want: Vec<String> = [2, 3]
            .iter()
            .map(|k| format!("t-{}0", b / NS_PER_S + k))
            .collect();
        assert_eq!(names(dir.path()), want);
    }

    /// Directions reach every file's `epb_flags` (and count towards the size limit); a file a
    /// rotation creates holds its header at once, is private, and is handed to the
    /// [`AfterOpen`] hook, which can take its cut-back handle.
    #[test]
    fn rotated_files_carry_directions_and_start_complete() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("fastpath-rotdir");
        let tpl = dir.path().join("d.pcapng").to_str().unwrap().to_owned();
        let rot = Rotation::new().size(2_000);
        let mut w = RotatingWriter::create(&tpl, Format::Pcapng, 0, rot).unwrap();
        w.add_interface(1, "eth0");
        let opened = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let o = std::sync::Arc::clone(&opened);
        w.set_after_open(Box::new(move |pw| {
            // The header is out before any packet.
            let len = fs::metadata(pw.path()).unwrap().len();
            let cut = pw.cut_back_handle().expect("a regular file");
            o.lock().unwrap().push((len, cut));
        }));
        let dirs = [Direction::Host, Direction::Outgoing, Direction::Broadcast];
        for i in 0..40u32 {
            let (ts, orig, data) = packet(i);
            w.write_packet_with_direction(ts, orig, &data, 1, dirs[i as usize % 3])
                .unwrap();
        }
        w.finish().unwrap();
        let closed = w.take_closed();
        let opened = opened.lock().unwrap();
        assert!(closed.len() > 2, "{closed:?}");
        assert_eq!(opened.len(), closed.len() - 1, "every file but the first");
        assert!(
            opened.iter().all(|(len, _)| *len > 0),
            "headers written at once"
        );
        let mut flags = Vec::new();
        for path in &closed {
            let bytes = fs::read(path).unwrap();
            assert!(bytes.len() <= 2_000, "{}: {}", path.display(), bytes.len());
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !0o600, 0, "{}: {mode:o}", path.display());
            // Each EPB ends with epb_flags (code 2, length 4), then opt_endofopt.
            let mut at = 0;
            while at + 12 <= bytes.len() {
                let ty = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
                let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
                if ty == 6 {
                    let opt = &bytes[at + len - 16..at + len - 4];
                    assert_eq!(&opt[..4], [2, 0, 4, 0]);
                    flags.push(u32::from_le_bytes(opt[4..8].try_into().unwrap()));
                }
                at += len;
            }
        }
        let want: Vec<u32> = (0..40)
            .map(|i| super::super::epb_flags(dirs[i % 3]))
            .collect();
        assert_eq!(flags, want);
    }

    #[test]
    fn bad_rotation_is_a_usage_error() {
        for rot in [
            Rotation::new().size(0),
            Rotation::new().max_files(3),
            Rotation::new().interval(Duration::ZERO),
            Rotation::new().size(1).max_files(0),
        ] {
            let err = rot.validate().unwrap_err();
            assert!(err.is_usage(), "{err}");
        }
        assert_eq!(digits(0), 0);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
    }
}

#[cfg(test)]
mod full_test {
    use super::*;
    use crate::pcap::fixtures::packet;
    use crate::pcap::read_records;
    use fastpath_testutil::{is_root, require, TempDir};
    use std::process::Command;

    /// A symbolic link another user planted in a shared directory at the name of the next file
    /// of a series is not followed: the rotation fails naming it, the file it points to is
    /// untouched, and the files before are complete.
    #[test]
    fn a_planted_link_stops_the_series_not_another_file() {
        require!(is_root(), "needs root to give a link to another user");
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("fastpath-rotlink");
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let planted = shared.join("cap1");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        std::os::unix::fs::lchown(&planted, Some(65534), Some(65534)).unwrap();
        let tpl = shared.join("cap").to_str().unwrap().to_owned();
        let mut w =
            RotatingWriter::create(&tpl, Format::Pcap, 0, Rotation::new().size(2_000)).unwrap();
        let err = (0..100)
            .find_map(|i| {
                let (ts, orig, data) = packet(i);
                w.write_packet(ts, orig, &data, 1).err()
            })
            .expect("the second file is refused");
        assert!(matches!(err, Error::OutputIsForeignSymlink { .. }), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        let first = read_records(&fs::read(shared.join("cap")).unwrap()).unwrap();
        assert!(!first.1.is_empty());
    }

    /// A full disk in the middle of the series: the error counts the packets of every file, and
    /// they are all there, each file complete.
    #[test]
    fn disk_full_error_counts_every_file() {
        require!(is_root(), "needs root to mount a tmpfs");
        let dir = TempDir::new("fastpath-rotfull");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "fastpath-test"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        require!(ok, "cannot mount a tmpfs");
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg(self.0).status();
            }
        }
        let _u = Unmount(dir.path());
        let tpl = dir.path().join("f").to_str().unwrap().to_owned();
        let mut w =
            RotatingWriter::create(&tpl, Format::Pcap, 0, Rotation::new().size(20_000)).unwrap();
        w.set_flush_threshold(4096);
        let err = (0..10_000)
            .find_map(|i| {
                let (ts, orig, data) = packet(i);
                w.write_packet(ts, orig, &data, 1).err()
            })
            .expect("64 KiB fill up");
        let Error::Output { kept, .. } = err else {
            panic!("{err}");
        };
        let mut total = 0;
        for e in fs::read_dir(dir.path()).unwrap() {
            total += read_records(&fs::read(e.unwrap().path()).unwrap())
                .unwrap()
                .1
                .len() as u64;
        }
        assert_eq!(kept, total);
        assert!(w.take_closed().len() >= 2);
    }
}
