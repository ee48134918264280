//! CPU time and memory from `/proc`, and what machine this is.
//!
//! CPU time is in clock ticks (`getconf CLK_TCK`, 100 on Linux): over a
//! 10-second run that is a resolution of 0.1% of a core.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail};

/// Ticks per second of the `/proc` CPU counters.
pub fn clock_ticks_per_second() -> Result<f64> {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running `getconf CLK_TCK`")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hz: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("`getconf CLK_TCK` printed {text:?}"))?;
    if hz <= 0.0 {
        bail!("`getconf CLK_TCK` printed {hz}");
    }
    Ok(hz)
}

/// The fields of `/proc/<pid>/stat` after the command name, which may
/// itself contain spaces and parentheses. Field 3 (state) is index 0.
fn stat_fields(path: &Path) -> Result<Vec<u64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| anyhow!("{}: no command name", path.display()))?;
    // The state is a letter: keep its slot so indices match proc(5).
    Ok(after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect())
}

fn field(fields: &[u64], number: usize) -> u64 {
    // proc(5) numbers fields from 1, and the list starts at field 3.
    fields.get(number - 3).copied().unwrap_or(0)
}

/// User plus system CPU time of every thread of `pid`, in ticks.
pub fn process_ticks(pid: u32) -> Result<u64> {
    let f = stat_fields(Path::new(&format!("/proc/{pid}/stat")))?;
    Ok(field(&f, 14) + field(&f, 15))
}

/// CPU time of this process's children that have been waited for (wrk,
/// once it has exited), in ticks.
pub fn reaped_children_ticks() -> Result<u64> {
    let f = stat_fields(Path::new("/proc/self/stat"))?;
    Ok(field(&f, 16) + field(&f, 17))
}

/// This process's own CPU time, in ticks.
pub fn own_ticks() -> Result<u64> {
    let f = stat_fields(Path::new("/proc/self/stat"))?;
    Ok(field(&f, 14) + field(&f, 15))
}

/// Busy time of the whole machine, all cores, in ticks: user, nice,
/// system, irq, softirq and steal (a hypervisor taking the core away).
pub fn machine_busy_ticks() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("/proc/stat has no `cpu` line"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    Ok(get(0) + get(1) + get(2) + get(5) + get(6) + get(7))
}

/// `VmRSS` and `VmHWM` (peak RSS) of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok((kib("VmRSS:"), kib("VmHWM:")))
}

/// What the report says about the machine.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub load_average: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned())
        };
        Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            kernel: read("/proc/sys/kernel/osrelease"),
            load_average: read("/proc/loadavg"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        process_ticks(pid).unwrap();
        let (rss, hwm) = rss_kib(pid).unwrap();
        assert!(rss > 0 && hwm >= rss);
        assert!(machine_busy_ticks().unwrap() > 0);
        assert!(clock_ticks_per_second().unwrap() > 0.0);
    }
}
