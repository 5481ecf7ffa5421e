//! Memory before allocation: an estimate of what a run needs (its network's weights, their
//! gradients, the optimizer's state, the best epoch's copy and a batch's activations, all from
//! the layer specs: `nabla::nn::LayerSpec::bytes`) or what reading a saved model needs,
//! against what the machine has
//! (the smaller of `MemAvailable` and the cgroup's limit; `NABLA_MEMORY_LIMIT`, in bytes or with
//! a K/M/G suffix, overrides both), so `--hidden 65536,65536` is refused with the figures
//! instead of aborting in the allocator.

use anyhow::Result;
use nabla::NablaError;
use nabla::config::{OptimizerKind, RunConfig, RunData};
use nabla::data::dataset::Dataset;
use nabla::nn::{ImageShape, ModelSpec};

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

/// Refuses a run whose network, gradients, optimizer state and activations would not fit in
/// memory.
pub fn check_run(config: &RunConfig, data: &RunData) -> Result<()> {
    let best = data.val.is_some() || config.early_stopping.is_some();
    check_network(config, &data.train, data.image, best)
}

/// Refuses training `config`'s network on `train` (images `image`) when its estimate does not
/// fit: every layer's parameters (with their gradients, the optimizer's state and, with `best`,
/// the best epoch's copy), buffers, and the values a batch keeps (with their gradients), all
/// from the layer specs before anything is allocated.
pub fn check_network(
    config: &RunConfig,
    train: &Dataset,
    image: Option<ImageShape>,
    best: bool,
) -> Result<()> {
    let spec = config.spec_for(train, image)?;
    let bytes = spec.bytes()?;
    let (slots, what) = match config.optimizer.unwrap_or_default() {
        OptimizerKind::Adam | OptimizerKind::Adamw => (2, "Adam state"),
        OptimizerKind::Rmsprop => (2, "RMSprop state"),
        OptimizerKind::Adagrad => (1, "Adagrad state"),
        OptimizerKind::Sgd if config.momentum.unwrap_or(0.9) != 0.0 => (1, "momentum"),
        OptimizerKind::Sgd => (0, "no optimizer state"),
    };
    let copies = 2 + slots + u64::from(best);
    let weights = bytes.parameters as f64 * copies as f64
        + bytes.buffers as f64 * (1 + u64::from(best)) as f64;
    // Rows in flight: up to four gradient groups of 64-row micro-batches.
    let rows = config.batch_size.unwrap_or(32).clamp(1, 256);
    let activations = bytes.activations_per_row as f64 * 2.0 * rows as f64;
    let need = weights + activations;
    let Some(have) = available() else {
        return Ok(());
    };
    if need > have as f64 {
        let network = match (&config.layers, &config.hidden) {
            (Some(text), _) => format!("--layers {text:?}"),
            (None, hidden) => {
                let list: Vec<String> = hidden.iter().flatten().map(usize::to_string).collect();
                format!("--hidden {}", list.join(","))
            }
        };
        anyhow::bail!(NablaError::Usage(format!(
            "{network} needs ~{} for weights, gradients and {what}{}, and ~{} for the values a \
             batch of {rows} keeps; {} are available (set {LIMIT_VAR} to change the limit)",
            human(weights),
            if best {
                " (and the best epoch's copy)"
            } else {
                ""
            },
            human(activations),
            human(have as f64)
        )));
    }
    Ok(())
}

/// Refuses reading `rows` rows at a time through the saved network `spec` when its tensors and
/// the values those rows keep would not fit (a crafted spec of tiny tensors can still ask for
/// huge activations, e.g. a convolution padded by 10,000).
pub fn check_model(spec: &ModelSpec, rows: usize) -> Result<(), NablaError> {
    let bytes = spec.bytes()?;
    let weights = bytes.parameters as f64 + bytes.buffers as f64;
    let activations = bytes.activations_per_row as f64 * rows.max(1) as f64;
    let Some(have) = available() else {
        return Ok(());
    };
    let need = weights + activations;
    if need > have as f64 {
        return Err(NablaError::Usage(format!(
            "the model's layers need ~{} for their tensors and ~{} for the values of {} row(s) \
             at a time; {} are available (set {LIMIT_VAR} to change the limit)",
            human(weights),
            human(activations),
            rows.max(1),
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
