//! `nabla train`: load data, split it, build the network from flags, train, report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use nabla::data::{self, Dataset};
use nabla::kernels::activation::Activation;
use nabla::nn::{ModelSpec, Sequential};
use nabla::optim::{Adam, Optimizer, Sgd};
use nabla::train::{EpochMetrics, TrainConfig, Trainer, iterations_per_epoch};

use super::{parse_fraction, parse_hidden, parse_momentum, parse_positive};

/// Activation functions selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
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

impl ActivationArg {
    fn activation(self) -> Activation {
        match self {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Sigmoid => Activation::Sigmoid,
            ActivationArg::Tanh => Activation::Tanh,
            ActivationArg::LeakyRelu => Activation::LeakyRelu { slope: 0.01 },
        }
    }
}

/// Optimizers selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum OptimizerArg {
    /// Stochastic gradient descent with momentum (default lr 0.05, momentum 0.9).
    Sgd,
    /// Adam (default lr 0.001; 0.01 with sigmoid or tanh).
    Adam,
}

/// Flags of `nabla train`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nabla train\n  nabla train --data ../shared/datasets/mnist --hidden 256,128 --optimizer sgd --lr 0.05 --momentum 0.9 --batch-size 128 --epochs 10 --seed 1\n  nabla train --activation sigmoid --metrics-out metrics.json"
)]
pub struct TrainArgs {
    /// Training data: a folder of MNIST-style IDX files. Omitted: the built-in digits dataset.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,

    /// Hidden layer sizes, comma-separated (two or more makes the network deep).
    #[arg(long, value_name = "SIZES", default_value = "256,128", value_parser = parse_hidden)]
    pub hidden: std::vec::Vec<usize>,

    /// Activation after each hidden layer.
    #[arg(long, value_enum, default_value_t = ActivationArg::Relu)]
    pub activation: ActivationArg,

    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,

    /// Learning rate [default: sgd 0.05; adam 0.001 with relu/leaky-relu, 0.01 with sigmoid/tanh,
    /// whose saturating gradients are smaller].
    #[arg(long, value_parser = parse_positive)]
    pub lr: Option<f64>,

    /// Momentum for sgd, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = parse_momentum)]
    pub momentum: f64,

    /// Samples per mini-batch.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,

    /// Passes over the training data.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,

    /// Fraction held out as the test set when the data has no test set of its own.
    #[arg(long, default_value_t = 0.2, value_parser = parse_fraction)]
    pub test_split: f64,

    /// Seed for weight initialisation, the split and shuffling (same seed, same numbers).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Worker threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,

    /// Write the run's metrics as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<PathBuf>,
}

/// The metrics file: field names are a contract with other tools.
#[derive(Serialize)]
struct MetricsReport<'a> {
    dataset: &'a str,
    task: &'a str,
    train_samples: usize,
    test_samples: usize,
    features: usize,
    classes: &'a [String],
    batch_size: usize,
    iterations_per_epoch: usize,
    hidden: Vec<usize>,
    activation: &'a str,
    optimizer: &'a str,
    learning_rate: f64,
    momentum: Option<f64>,
    seed: u64,
    threads: usize,
    parameters: usize,
    epochs: &'a [EpochMetrics],
    test_accuracy: f64,
    test_loss: f64,
    train_seconds: f64,
}

/// Loads the training and test sets the flags ask for.
fn load(args: &TrainArgs) -> Result<(Dataset, Dataset)> {
    let split = |all: Dataset| -> Result<(Dataset, Dataset)> {
        let (train_idx, test_idx) = data::split::stratified(
            all.labels(),
            all.classes().len(),
            args.test_split,
            args.seed,
        )?;
        Ok((
            all.subset(&train_idx, all.name()),
            all.subset(&test_idx, format!("{} (test)", all.name())),
        ))
    };
    match &args.data {
        None => split(data::builtin::digits()?),
        Some(path) if path.is_dir() => Ok(data::idx::read_dir(path)?),
        Some(path) if path.exists() => Err(nabla::NablaError::data(
            path,
            "path",
            "expected a folder of MNIST-style IDX files (train-images-idx3-ubyte[.gz], ...)",
        )
        .into()),
        Some(path) => Err(nabla::NablaError::data(path, "path", "no such file or folder").into()),
    }
}

/// Runs `nabla train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let threads = args.threads.map(|t| t as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let (train, test) = load(&args)?;
    let activation = args.activation.activation();
    let mut spec = ModelSpec::mlp(train.dim(), &args.hidden, activation, train.classes().len());
    spec.classes = train.classes().to_vec();
    let mut model = Sequential::new(&spec, args.seed).context("building the network")?;
    let mut optimizer = match args.optimizer {
        OptimizerArg::Sgd => Optimizer::Sgd(Sgd::new(args.lr.unwrap_or(0.05), args.momentum)),
        OptimizerArg::Adam => {
            let default_lr = match activation {
                Activation::Sigmoid | Activation::Tanh => 0.01,
                Activation::Relu | Activation::LeakyRelu { .. } => 0.001,
            };
            Optimizer::Adam(Adam::new(args.lr.unwrap_or(default_lr)))
        }
    };
    let batch_size = args.batch_size as usize;
    let iterations = iterations_per_epoch(train.len(), batch_size);

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "data: {} — {} training samples, {} test samples, {} features, {} classes",
        train.name(),
        train.len(),
        test.len(),
        train.dim(),
        train.classes().len()
    )?;
    writeln!(
        out,
        "network: {} ({} parameters)",
        describe(&spec, activation),
        model.params().count()
    )?;
    let opt_desc = match &optimizer {
        Optimizer::Sgd(s) => format!("sgd (lr {}, momentum {})", s.lr, s.momentum),
        other => format!("{} (lr {})", other.name(), other.learning_rate()),
    };
    writeln!(
        out,
        "training: batch size {batch_size} → {iterations} iterations per epoch (ceil({} / {batch_size})), {} epochs, {opt_desc}, {threads} thread{}, seed {}",
        train.len(),
        args.epochs,
        if threads == 1 { "" } else { "s" },
        args.seed
    )?;

    let mut trainer = Trainer::new(TrainConfig {
        epochs: args.epochs,
        batch_size,
        seed: args.seed,
        threads,
    })?;
    let epochs = args.epochs;
    let width = epochs.to_string().len();
    let history = trainer.fit(&mut model, &mut optimizer, &train, &test, |m| {
        let _ = writeln!(
            std::io::stdout(),
            "epoch {:>width$}/{epochs}  train loss {:.4}  train acc {:.4}  test loss {:.4}  test acc {:.4}  {:.2}s",
            m.epoch,
            m.train_loss,
            m.train_accuracy,
            m.test_loss,
            m.test_accuracy,
            m.seconds,
        );
    })?;
    let final_eval = match history.last() {
        Some(m) => (m.test_accuracy, m.test_loss),
        None => {
            let e = trainer.evaluate(&model, &test)?;
            (e.accuracy, e.loss)
        }
    };
    let train_seconds: f64 = history.iter().map(|m| m.seconds).sum();
    writeln!(
        out,
        "done: test accuracy {:.4}, test loss {:.4}, {:.2}s training",
        final_eval.0, final_eval.1, train_seconds
    )?;

    if let Some(path) = &args.metrics_out {
        let report = MetricsReport {
            dataset: train.name(),
            task: spec.task.name(),
            train_samples: train.len(),
            test_samples: test.len(),
            features: train.dim(),
            classes: &spec.classes,
            batch_size,
            iterations_per_epoch: iterations,
            hidden: args.hidden.clone(),
            activation: activation.name(),
            optimizer: optimizer.name(),
            learning_rate: optimizer.learning_rate(),
            momentum: matches!(optimizer, Optimizer::Sgd(_)).then_some(args.momentum),
            seed: args.seed,
            threads,
            parameters: model.params().count(),
            epochs: &history,
            test_accuracy: final_eval.0,
            test_loss: final_eval.1,
            train_seconds,
        };
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .map_err(|e| nabla::NablaError::io(path, e))
            .context("writing the metrics file")?;
    }
    Ok(())
}

/// `64 → 256 (relu) → 128 (relu) → 10 (softmax)`.
fn describe(spec: &ModelSpec, activation: Activation) -> String {
    let mut s = spec.inputs.to_string();
    for h in spec.hidden() {
        s += &format!(" → {h} ({})", activation.name());
    }
    s + &format!(" → {} (softmax)", spec.outputs())
}
