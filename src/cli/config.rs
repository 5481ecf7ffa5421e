//! Run settings: the merge of defaults, a `--config` TOML file and command-line flags (flags
//! win), and the `config.toml` written into every run folder so `nabla train --config` repeats
//! the run exactly.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Activation functions selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationArg {
    /// max(0, x): the default; fast and trains deep nets well.
    Relu,
    /// 1/(1+e^-x): classic, slower to train.
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// x for x>0, 0.01x otherwise.
    LeakyRelu,
}

/// Optimizers selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerArg {
    /// Stochastic gradient descent with momentum (default lr 0.05, momentum 0.9).
    Sgd,
    /// Adam (default lr 0.001; 0.01 with sigmoid or tanh).
    Adam,
}

/// Every setting of a training run, resolved: what `config.toml` holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// Folder of IDX files; absent: the built-in digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer.
    pub activation: ActivationArg,
    /// Optimizer.
    pub optimizer: OptimizerArg,
    /// Learning rate.
    pub lr: f32,
    /// Momentum (sgd).
    pub momentum: f32,
    /// Samples per mini-batch.
    pub batch_size: u32,
    /// Passes over the training data.
    pub epochs: usize,
    /// Fraction held out as the test set when the data has none.
    pub test_split: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// Worker threads (results do not depend on it).
    pub threads: u32,
}

/// The same settings, each optional: a config file or the flags, before merging.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    /// See [`Settings::data`].
    pub data: Option<PathBuf>,
    /// See [`Settings::hidden`].
    pub hidden: Option<Vec<usize>>,
    /// See [`Settings::activation`].
    pub activation: Option<ActivationArg>,
    /// See [`Settings::optimizer`].
    pub optimizer: Option<OptimizerArg>,
    /// See [`Settings::lr`].
    pub lr: Option<f32>,
    /// See [`Settings::momentum`].
    pub momentum: Option<f32>,
    /// See [`Settings::batch_size`].
    pub batch_size: Option<u32>,
    /// See [`Settings::epochs`].
    pub epochs: Option<usize>,
    /// See [`Settings::test_split`].
    pub test_split: Option<f64>,
    /// See [`Settings::seed`].
    pub seed: Option<u64>,
    /// See [`Settings::threads`].
    pub threads: Option<u32>,
}

/// The keys a config file may hold.
pub const KEYS: [&str; 11] = [
    "data",
    "hidden",
    "activation",
    "optimizer",
    "lr",
    "momentum",
    "batch_size",
    "epochs",
    "test_split",
    "seed",
    "threads",
];

impl Partial {
    /// Reads a config file; an unknown key is an error that suggests the closest known one.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| nabla::NablaError::io(path, e))
            .context("reading the config file")?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            nabla::NablaError::data(path, "toml", e.message().to_string())
        })?;
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                let hint = did_you_mean(key)
                    .map(|k| format!("; did you mean '{k}'?"))
                    .unwrap_or_default();
                return Err(nabla::NablaError::data(
                    path,
                    format!("key '{key}'"),
                    format!("unknown setting{hint} (known: {})", KEYS.join(", ")),
                )
                .into());
            }
        }
        let mut p: Partial = table.try_into().map_err(|e: toml::de::Error| {
            nabla::NablaError::data(path, "value", e.message().to_string())
        })?;
        // A relative data path is relative to the config file's folder.
        if let (Some(d), Some(dir)) = (&p.data, path.parent())
            && d.is_relative()
            && !dir.as_os_str().is_empty()
        {
            p.data = Some(dir.join(d));
        }
        Ok(p)
    }

    /// `self` where set, else `file`.
    pub fn over(self, file: Partial) -> Partial {
        Partial {
            data: self.data.or(file.data),
            hidden: self.hidden.or(file.hidden),
            activation: self.activation.or(file.activation),
            optimizer: self.optimizer.or(file.optimizer),
            lr: self.lr.or(file.lr),
            momentum: self.momentum.or(file.momentum),
            batch_size: self.batch_size.or(file.batch_size),
            epochs: self.epochs.or(file.epochs),
            test_split: self.test_split.or(file.test_split),
            seed: self.seed.or(file.seed),
            threads: self.threads.or(file.threads),
        }
    }

    /// Fills what is unset with the defaults and checks ranges.
    pub fn resolve(self) -> Result<Settings> {
        let activation = self.activation.unwrap_or(ActivationArg::Relu);
        let optimizer = self.optimizer.unwrap_or(OptimizerArg::Adam);
        let default_lr = match (optimizer, activation) {
            (OptimizerArg::Sgd, _) => 0.05,
            (OptimizerArg::Adam, ActivationArg::Sigmoid | ActivationArg::Tanh) => 0.01,
            (OptimizerArg::Adam, _) => 0.001,
        };
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1)
        });
        let s = Settings {
            data: self.data,
            hidden: self.hidden.unwrap_or_else(|| vec![256, 128]),
            activation,
            optimizer,
            lr: self.lr.unwrap_or(default_lr),
            momentum: self.momentum.unwrap_or(0.9),
            batch_size: self.batch_size.unwrap_or(32),
            epochs: self.epochs.unwrap_or(30),
            test_split: self.test_split.unwrap_or(0.2),
            seed: self.seed.unwrap_or(42),
            threads,
        };
        let usage = |m: String| -> Result<Settings> { Err(nabla::NablaError::Usage(m).into()) };
        if !(s.lr.is_finite() && s.lr > 0.0) {
            return usage(format!("lr must be a positive number, got {}", s.lr));
        }
        if !(0.0..1.0).contains(&s.momentum) {
            return usage(format!("momentum must be in [0, 1), got {}", s.momentum));
        }
        if !(0.0..1.0).contains(&s.test_split) {
            return usage(format!(
                "test_split must be in [0, 1), got {}",
                s.test_split
            ));
        }
        if s.batch_size == 0 {
            return usage("batch_size must be at least 1".into());
        }
        if s.threads == 0 || s.threads > 256 {
            return usage(format!("threads must be in 1..=256, got {}", s.threads));
        }
        if s.hidden.iter().any(|&h| h == 0 || h > 1 << 16) {
            return usage(format!(
                "hidden layer sizes must be in 1..=65536, got {:?}",
                s.hidden
            ));
        }
        Ok(s)
    }
}

impl Settings {
    /// The TOML text of `config.toml`, with a header saying how to use it.
    pub fn to_toml(&self) -> Result<String> {
        let mut s = self.clone();
        if let Some(d) = &s.data {
            s.data = Some(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()));
        }
        Ok(format!(
            "# Every setting of this run: `nabla train --config config.toml` repeats it exactly\n\
             # (flags given as well override these values).\n{}",
            toml::to_string(&s).context("writing config.toml")?
        ))
    }
}

/// The known key closest to `key` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean(key: &str) -> Option<&'static str> {
    let key = key.replace('-', "_").to_lowercase();
    match key.as_str() {
        "learning_rate" | "lr_rate" | "rate" => return Some("lr"),
        "layers" | "hidden_layers" | "hidden_sizes" => return Some("hidden"),
        "optim" => return Some("optimizer"),
        _ => {}
    }
    KEYS.iter()
        .map(|k| (levenshtein(&key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

/// Edit distance (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_key() {
        assert_eq!(did_you_mean("learning_rate"), Some("lr"));
        assert_eq!(did_you_mean("batchsize"), Some("batch_size"));
        assert_eq!(did_you_mean("batch-size"), Some("batch_size"));
        assert_eq!(did_you_mean("epoch"), Some("epochs"));
        assert_eq!(did_you_mean("sed"), Some("seed"));
        assert_eq!(did_you_mean("completely_else"), None);
    }

    #[test]
    fn settings_round_trip_through_toml() {
        let s = Partial::default().resolve().unwrap();
        let text = s.to_toml().unwrap();
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(s, back);
    }
}
