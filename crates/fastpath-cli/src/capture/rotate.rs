//! `-C`, `-G`, `-W` (the [`Rotation`] of the `-w` files) and `-z` (a command run on each
//! closed file).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use fastpath::pcap::Rotation;

use super::options::Args;

/// The rotation `-C`/`-G`/`-W` ask for, checked against `-w`.
///
/// # Errors
/// A usage error for rotation without `-w FILE` (or to standard output), `-W` without `-C` or
/// `-G`, or `-z` without rotation.
pub(super) fn rotation(args: &Args) -> Result<Rotation> {
    let mut rot = Rotation::new();
    if let Some(bytes) = args.file_size {
        rot = rot.size(bytes);
    }
    if let Some(secs) = args.rotate_secs {
        rot = rot.interval(Duration::from_secs(secs));
    }
    if let Some(n) = args.file_count {
        rot = rot.max_files(n);
    }
    let rotates = rot.size.is_some() || rot.interval.is_some();
    let usage = |why: &str| -> anyhow::Error {
        fastpath::Error::InvalidConfig {
            field: "rotation",
            why: why.to_owned(),
        }
        .into()
    };
    if rotates || rot.max_files.is_some() {
        match &args.write {
            None => return Err(usage("-C, -G and -W rotate the -w file: give -w FILE")),
            Some(p) if p.as_os_str() == "-" => {
                return Err(usage(
                    "standard output (-w -) cannot be rotated: give -w FILE",
                ))
            }
            Some(_) => {}
        }
    }
    if args.postrotate.is_some() && !rotates {
        return Err(usage("-z runs on each rotated file: give -C or -G too"));
    }
    rot.validate()?;
    Ok(rot)
}

/// The `-z` commands started and not yet reaped.
#[derive(Debug, Default)]
pub(super) struct PostRotate {
    cmd: Option<String>,
    running: Vec<(PathBuf, Child)>,
}

impl PostRotate {
    pub(super) fn new(cmd: Option<String>) -> PostRotate {
        PostRotate {
            cmd,
            running: Vec::new(),
        }
    }

    /// Starts `CMD FILE` for each closed file (like tcpdump: `CMD` is a program found on the
    /// `PATH`, not a shell line), and reaps those that ended.
    pub(super) fn run(&mut self, closed: Vec<PathBuf>) {
        if let Some(cmd) = &self.cmd {
            for file in closed {
                match Command::new(cmd).arg(&file).stdin(Stdio::null()).spawn() {
                    Ok(child) => self.running.push((file, child)),
                    Err(e) => eprintln!(
                        "fastpath: warning: -z {cmd} {}: cannot run it: {e}",
                        file.display()
                    ),
                }
            }
        }
        self.running
            .retain_mut(|(file, child)| match child.try_wait() {
                Ok(Some(status)) => {
                    report(&file.display().to_string(), status);
                    false
                }
                Ok(None) => true,
                Err(_) => false,
            });
    }

    /// Runs the command on the last files and waits for every command started.
    pub(super) fn finish(mut self, closed: Vec<PathBuf>) {
        self.run(closed);
        for (file, mut child) in self.running.drain(..) {
            if let Ok(status) = child.wait() {
                report(&file.display().to_string(), status);
            }
        }
    }
}

fn report(file: &str, status: std::process::ExitStatus) {
    if !status.success() {
        eprintln!("fastpath: warning: -z command on {file} ended with {status}");
    }
}
