//! Memory before allocation: an estimate of what a run needs (its network's weights, their
//! gradients, the optimizer's state and the best epoch's copy) against what the machine has
//! (the smaller of `MemAvailable` and the cgroup's limit; `NABLA_MEMORY_LIMIT`, in bytes or with
//! a K/M/G suffix, overrides both), so `--hidden 65536,65536` is refused with the figures
//! instead of aborting in the allocator.

use anyhow::Result;
use nabla::NablaError;
use nabla::config::{OptimizerKind, RunConfig, RunData};
use nabla::nn::Task;

/// The environment variable that sets the memory available to a run.
pub const LIMIT_VAR: &str = "NABLA_MEMORY_LIMIT";

/// Parses `123`, `64K`, `512M`, `8G` (powers of 1024).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], s[i..].trim().to_ascii_uppercase()),
        None => (s, String::new()),
    };
    let shift = match unit.trim_end_matches('B').trim_end_matches('I') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// The bytes available to this process: `NABLA_MEMORY_LIMIT`, else the smaller of the
/// kernel's `MemAvailable` and the cgroup's remaining limit; `None` when unknown.
pub fn available() -> Option<u64> {
    match std::env::var(LIMIT_VAR) {
        Ok(v) if v.trim().is_empty() => {}
        Ok(v) => match parse_bytes(&v) {
            Some(limit) => return Some(limit),
            None => eprintln!(
                "warning: {LIMIT_VAR}={v:?} is not a size like 512M or 8G; using the machine's memory"
            ),
        },
        Err(_) => {}
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| parse_bytes(v.trim().trim_end_matches("kB").trim()))
            .map(|kb| kb * 1024)
    });
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `69 GB`, `512 MB`, `3.1 KB` (powers of 1000, as memory is usually quoted).
pub fn human(bytes: f64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if v >= 10.0 || i == 0 {
        format!("{v:.0} {}", units[i])
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// Refuses a run whose network, gradients and optimizer state would not fit in memory.
pub fn check_run(config: &RunConfig, data: &RunData) -> Result<()> {
    let train = &data.train;
    let outputs = match train.task() {
        Task::Classification => train.classes().len() as f64,
        Task::Regression => 1.0,
    };
    let hidden = config.hidden.clone().unwrap_or_default();
    let mut widths = vec![train.dim() as f64];
    widths.extend(hidden.iter().map(|&h| h as f64));
    widths.push(outputs);
    let mut params: f64 = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    if config.batch_norm {
        params += hidden.iter().map(|&h| 4.0 * h as f64).sum::<f64>();
    }
    let (state, what) = match config.optimizer.unwrap_or_default() {
        OptimizerKind::Adam | OptimizerKind::Adamw => (2.0, "Adam state"),
        OptimizerKind::Rmsprop => (2.0, "RMSprop state"),
        OptimizerKind::Adagrad => (1.0, "Adagrad state"),
        OptimizerKind::Sgd if config.momentum.unwrap_or(0.9) != 0.0 => (1.0, "momentum"),
        OptimizerKind::Sgd => (0.0, "no optimizer state"),
    };
    let best = f64::from(u8::from(
        data.val.is_some() || config.early_stopping.is_some(),
    ));
    let need = 4.0 * params * (2.0 + state + best);
    let Some(have) = available() else {
        return Ok(());
    };
    if need > have as f64 {
        let list: Vec<String> = hidden.iter().map(usize::to_string).collect();
        anyhow::bail!(NablaError::Usage(format!(
            "--hidden {} needs ~{} for weights, gradients and {what}{}; {} are available (set {LIMIT_VAR} to change the limit)",
            list.join(","),
            human(need),
            if best > 0.0 {
                " (and the best epoch's copy)"
            } else {
                ""
            },
            human(have as f64)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("2K"), Some(2048));
        assert_eq!(parse_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_bytes("8 GiB"), Some(8 << 30));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(human(69e9), "69 GB");
    }
}
