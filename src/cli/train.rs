//! `nabla train`: load data, split it, build the network from flags, train, report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use nabla::data::csv::CsvOptions;
use nabla::data::{self, Dataset, Impute, Scaling, TableOptions};
use nabla::kernels::activation::Activation;
use nabla::nn::{ModelSpec, Sequential, Task};
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

/// Tasks selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum TaskArg {
    /// Predict one of several classes (softmax output, cross-entropy loss).
    Classification,
    /// Predict a number (linear output, squared-error loss).
    Regression,
}

/// Missing-value handling selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum ImputeArg {
    /// Fill numeric cells with the training split's mean (text cells: most frequent category).
    Mean,
    /// Fill numeric cells with the training split's median (text cells: most frequent category).
    Median,
    /// Drop every row with a missing cell.
    DropRows,
}

/// Input scaling selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum ScaleArg {
    /// (x − mean) / standard deviation, fitted on the training split.
    Standard,
    /// (x − min) / (max − min), fitted on the training split.
    Minmax,
    /// Values as they are.
    None,
}

/// Flags of `nabla train`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nabla train\n  nabla train --data ../shared/datasets/mnist --hidden 256,128 --optimizer sgd --lr 0.05 --momentum 0.9 --batch-size 128 --epochs 10 --seed 1\n  nabla train --data ../shared/datasets/iris.csv --val-split 0.1\n  nabla train --data houses.csv.gz --target price --drop id --impute median\n  nabla train --activation sigmoid --metrics-out metrics.json"
)]
pub struct TrainArgs {
    /// Training data: a CSV file (plain or .csv.gz) or a folder of MNIST-style IDX files.
    /// Omitted: the built-in digits dataset.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,

    /// A separate test set: a CSV file with the same columns as --data (then --test-split is
    /// not used).
    #[arg(long, value_name = "FILE")]
    pub test_data: Option<PathBuf>,

    /// CSV: the column to predict [default: the last column].
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// CSV: the input columns, comma-separated [default: all but the target and --drop].
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        conflicts_with = "drop"
    )]
    pub features: Option<Vec<String>>,

    /// CSV: columns to leave out, comma-separated (ids, leaks, ...).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub drop: Vec<String>,

    /// CSV: the field delimiter: a single character, or "tab" [default: detected from the
    /// header among comma, semicolon and tab].
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,

    /// Classification or regression [default: detected: a text target, or integers with at most
    /// 20 distinct values, is classification; other numbers are regression].
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,

    /// CSV: what to do with missing cells (empty, NA, NaN, null) [default: refuse the file,
    /// naming the first one].
    #[arg(long, value_enum)]
    pub impute: Option<ImputeArg>,

    /// CSV: input scaling, fitted on the training split [default: standard; IDX images are
    /// always pixels / 255].
    #[arg(long, value_enum)]
    pub scale: Option<ScaleArg>,

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

    /// Fraction of the training part held out as a validation set, evaluated every epoch.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub val_split: f64,

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

/// Parses `--delimiter`: one ASCII character, or `tab`.
fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" && s != "\r" => {
            Ok(s.as_bytes()[0])
        }
        _ => Err(format!(
            "expected one ASCII character (other than a quote or line break) or \"tab\", got {s:?}"
        )),
    }
}

/// The metrics file: field names are a contract with other tools.
#[derive(Serialize)]
struct MetricsReport<'a> {
    dataset: &'a str,
    task: &'a str,
    train_samples: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    val_samples: Option<usize>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    test_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_r2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_mae: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_rmse: Option<f64>,
    test_loss: f64,
    train_seconds: f64,
}

/// Training, optional validation and test sets, and warnings for the user.
struct Loaded {
    train: Dataset,
    val: Option<Dataset>,
    test: Dataset,
    warnings: Vec<String>,
}

/// Loads the training, validation and test sets the flags ask for.
fn load(args: &TrainArgs) -> Result<Loaded> {
    let csv_options = CsvOptions {
        target: args.target.clone(),
        features: args.features.clone(),
        drop: args.drop.clone(),
        delimiter: args.delimiter,
        ..Default::default()
    };
    let table_options = TableOptions {
        task: args.task.map(|t| match t {
            TaskArg::Classification => Task::Classification,
            TaskArg::Regression => Task::Regression,
        }),
        impute: match args.impute {
            None => Impute::Refuse,
            Some(ImputeArg::Mean) => Impute::Mean,
            Some(ImputeArg::Median) => Impute::Median,
            Some(ImputeArg::DropRows) => Impute::DropRows,
        },
        scaling: match args.scale {
            None | Some(ScaleArg::Standard) => Scaling::Standard,
            Some(ScaleArg::Minmax) => Scaling::MinMax,
            Some(ScaleArg::None) => Scaling::None,
        },
        test_split: args.test_split,
        val_split: args.val_split,
        seed: args.seed,
    };
    let from_table = |p: data::Prepared| Loaded {
        train: p.train,
        val: p.val,
        test: p.test,
        warnings: p.warnings,
    };
    let csv_only = |what: &str| -> Result<()> {
        Err(nabla::NablaError::Usage(format!(
            "{what} applies to CSV data; IDX folders hold images and labels (pixels are scaled by 1/255)"
        ))
        .into())
    };
    match &args.data {
        None => {
            let raw = data::builtin::digits_table()?;
            let test = match &args.test_data {
                Some(t) => Some(data::csv::read(t, &data::table::test_options(&raw, &csv_options))?),
                None => None,
            };
            Ok(from_table(data::table::prepare(
                data::builtin::DIGITS_NAME,
                raw,
                test,
                &table_options,
            )?))
        }
        Some(path) if path.is_dir() => {
            for (given, flag) in [
                (args.test_data.is_some(), "--test-data"),
                (args.target.is_some(), "--target"),
                (args.features.is_some(), "--features"),
                (!args.drop.is_empty(), "--drop"),
                (args.delimiter.is_some(), "--delimiter"),
                (args.impute.is_some(), "--impute"),
                (args.scale.is_some(), "--scale"),
                (args.task == Some(TaskArg::Regression), "--task regression"),
            ] {
                if given {
                    csv_only(flag)?;
                }
            }
            let (train, test) = data::idx::read_dir(path)?;
            if args.val_split > 0.0 {
                let (train, val, warnings) =
                    data::table::carve_validation(&train, args.val_split, args.seed)?;
                Ok(Loaded {
                    train,
                    val: Some(val),
                    test,
                    warnings,
                })
            } else {
                Ok(Loaded {
                    train,
                    val: None,
                    test,
                    warnings: Vec::new(),
                })
            }
        }
        Some(path) if path.is_file() => Ok(from_table(data::table::load_csv(
            path,
            args.test_data.as_deref(),
            &csv_options,
            &table_options,
        )?)),
        Some(path) if path.exists() => Err(nabla::NablaError::data(
            path,
            "path",
            "expected a CSV file or a folder of MNIST-style IDX files (train-images-idx3-ubyte[.gz], ...)",
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
    let Loaded {
        train,
        val,
        test,
        warnings,
    } = load(&args)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let activation = args.activation.activation();
    let regression = train.task() == Task::Regression;
    let outputs = if regression { 1 } else { train.classes().len() };
    let mut spec = ModelSpec::mlp(train.dim(), &args.hidden, activation, outputs);
    spec.task = train.task();
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
    let val_desc = val
        .as_ref()
        .map(|v| format!(", {} validation samples", v.len()))
        .unwrap_or_default();
    let target_desc = if regression {
        "regression".to_string()
    } else {
        format!("{} classes", train.classes().len())
    };
    writeln!(
        out,
        "data: {} — {} training samples{val_desc}, {} test samples, {} features, {target_desc}",
        train.name(),
        train.len(),
        test.len(),
        train.dim(),
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
    let history = trainer.fit_with_validation(
        &mut model,
        &mut optimizer,
        &train,
        val.as_ref(),
        &test,
        |m| {
            let mut line = format!(
                "epoch {:>width$}/{epochs}  train loss {:.4}",
                m.epoch, m.train_loss
            );
            if let Some(a) = m.train_accuracy {
                line += &format!("  train acc {a:.4}");
            }
            if let Some(l) = m.val_loss {
                line += &format!("  val loss {l:.4}");
            }
            if let Some(a) = m.val_accuracy {
                line += &format!("  val acc {a:.4}");
            }
            if let Some(r) = m.val_r2 {
                line += &format!("  val R² {r:.4}");
            }
            line += &format!("  test loss {:.4}", m.test_loss);
            if let Some(a) = m.test_accuracy {
                line += &format!("  test acc {a:.4}");
            }
            if let (Some(r), Some(e)) = (m.test_r2, m.test_rmse) {
                line += &format!("  test R² {r:.4}  test RMSE {e:.4}");
            }
            let _ = writeln!(std::io::stdout(), "{line}  {:.2}s", m.seconds);
        },
    )?;
    let final_eval = trainer.evaluate(&model, &test)?;
    let train_seconds: f64 = history.iter().map(|m| m.seconds).sum();
    match (final_eval.accuracy, final_eval.regression) {
        (_, Some(r)) => writeln!(
            out,
            "done: test R² {:.4}, MAE {:.4}, RMSE {:.4} (original units), test loss {:.4}, {:.2}s training",
            r.r2, r.mae, r.rmse, final_eval.loss, train_seconds
        )?,
        (accuracy, None) => writeln!(
            out,
            "done: test accuracy {:.4}, test loss {:.4}, {:.2}s training",
            accuracy.unwrap_or(f64::NAN),
            final_eval.loss,
            train_seconds
        )?,
    }

    if let Some(path) = &args.metrics_out {
        let report = MetricsReport {
            dataset: train.name(),
            task: spec.task.name(),
            train_samples: train.len(),
            val_samples: val.as_ref().map(Dataset::len),
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
            test_accuracy: final_eval.accuracy,
            test_r2: final_eval.regression.map(|r| r.r2),
            test_mae: final_eval.regression.map(|r| r.mae),
            test_rmse: final_eval.regression.map(|r| r.rmse),
            test_loss: final_eval.loss,
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
    let head = match spec.task {
        Task::Classification => "softmax",
        Task::Regression => "linear",
    };
    s + &format!(" → {} ({head})", spec.outputs())
}
