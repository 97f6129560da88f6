//! What `/proc` says of a process: its resident memory (sampled on a thread of its
//! own, summarised by thirds) and the CPU time it used.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Resident memory of a process, sampled every 100 ms on a thread of its own.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

/// The samples of a run, in KiB: the means of its first and last thirds (a single
/// sample swings by tens of MiB as hostile requests touch their 16 MiB and the pool
/// returns it in batches), and the peak.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rss {
    pub(crate) first: u64,
    pub(crate) max: u64,
    pub(crate) last: u64,
}

impl Rss {
    pub(crate) fn growth_kib(self) -> u64 {
        self.last.saturating_sub(self.first)
    }

    pub(crate) fn of(samples: &[u64]) -> Self {
        let third = (samples.len() / 3).max(1);
        let mean = |s: &[u64]| s.iter().sum::<u64>() / (s.len().max(1) as u64);
        Rss {
            first: mean(samples.get(..third).unwrap_or_default()),
            max: samples.iter().copied().max().unwrap_or(0),
            last: mean(
                samples
                    .get(samples.len().saturating_sub(third)..)
                    .unwrap_or_default(),
            ),
        }
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} → {:.1} MiB (means of the first and last thirds; peak {:.1})",
            self.first as f64 / 1024.0,
            self.last as f64 / 1024.0,
            self.max as f64 / 1024.0
        )
    }
}

impl Sampler {
    pub(crate) fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    samples.push(kib);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Self { stop, thread }
    }

    pub(crate) fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The CPU time `pid` has used (user and system), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses, which may hold spaces): state is field 3,
    // utime 14 and stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when it cannot be asked).
pub(crate) fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `VmRSS` of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
