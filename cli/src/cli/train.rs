//! `nabla train`: load data, split it, build the network from flags, train, report.
//! On a terminal each epoch shows a progress bar; every run is saved to a run folder.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use nabla::data::csv::CsvOptions;
use nabla::data::{self, Dataset, Impute, Preprocess, Scaling, TableOptions};
use nabla::kernels::activation::Activation;
use nabla::nn::Init;
use nabla::nn::{ModelSpec, Network, Task};
use nabla::optim::{Adagrad, Adam, Optimizer, RmsProp, Schedule, Sgd};
use nabla::train::{
    EpochMetrics, Hooks, IterationStats, Splits, TrainConfig, Trainer, confusion_matrix,
    iterations_per_epoch,
};

use super::hints;
use super::plot::{self, History};

use super::{parse_fraction, parse_hidden, parse_momentum, parse_non_negative, parse_positive};

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
    /// x·Φ(x) (Gaussian error linear unit).
    Gelu,
}

impl ActivationArg {
    fn activation(self) -> Activation {
        match self {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Sigmoid => Activation::Sigmoid,
            ActivationArg::Tanh => Activation::Tanh,
            ActivationArg::LeakyRelu => Activation::LeakyRelu { slope: 0.01 },
            ActivationArg::Gelu => Activation::Gelu,
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
    /// Adam with decoupled weight decay (default lr 0.001, weight decay 0.01).
    Adamw,
    /// RMSprop (default lr 0.001).
    Rmsprop,
    /// Adagrad (default lr 0.01).
    Adagrad,
}

/// Learning-rate schedules selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum ScheduleArg {
    /// The same rate every epoch.
    Constant,
    /// Multiply by --gamma (default 0.1) every --step-size epochs (default 10).
    Step,
    /// Multiply by --gamma (default 0.95) every epoch.
    Exponential,
    /// Cosine annealing from --lr down to --min-lr over the epochs.
    Cosine,
    /// Multiply by --plateau-factor when the monitored loss stalls for --plateau-patience epochs.
    Plateau,
}

/// Weight initialisers selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum InitArg {
    /// Normal, std sqrt(2/fan_in) (default for relu, leaky-relu, gelu).
    HeNormal,
    /// Uniform in ±sqrt(6/fan_in).
    HeUniform,
    /// Normal, std sqrt(2/(fan_in+fan_out)).
    GlorotNormal,
    /// Uniform in ±sqrt(6/(fan_in+fan_out)) (default for sigmoid, tanh).
    GlorotUniform,
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
    // A flag given twice takes the last value: --config FILE's settings come first, so flags
    // on the command line override them.
    args_override_self = true,
    after_help = "Every run is saved to runs/<name or UTC time>/: config.toml (repeat the run with\n\
`nabla train --config runs/<run>/config.toml`), metrics.csv, history.json and plots\n\
(learning_curves, confusion_matrix, lr_schedule; .png and .svg).\n\n\
Examples:\n  nabla train\n  nabla train --epochs 5 --name first-try\n  nabla train --data ../shared/datasets/mnist --hidden 256,128 --optimizer sgd --lr 0.05 --momentum 0.9 --batch-size 128 --epochs 10 --seed 1\n  nabla train --config runs/first-try/config.toml --epochs 10\n  nabla train --data ../shared/datasets/iris.csv --val-split 0.1\n  nabla train --data houses.csv.gz --target price --drop id --impute median\n  nabla train --activation sigmoid --quiet --no-save --metrics-out metrics.json"
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

    /// Input scaling, fitted per input on the training split: standard (x − mean) / std,
    /// minmax (x − min) / (max − min), none [default: standard for CSV; pixels / 255 for IDX
    /// images].
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

    /// Passes over the training data [default: 30, more for small datasets so training runs at
    /// least 1,000 iterations, at most 200 epochs].
    #[arg(long)]
    pub epochs: Option<usize>,

    /// Nesterov momentum (sgd).
    #[arg(long)]
    pub nesterov: bool,

    /// Weight decay: L2 in the gradient for sgd/adam/rmsprop/adagrad, decoupled for adamw
    /// [default: 0; adamw 0.01].
    #[arg(long, value_parser = parse_non_negative)]
    pub weight_decay: Option<f64>,

    /// Learning-rate schedule (the rate in force is printed per epoch).
    #[arg(long, value_enum, default_value_t = ScheduleArg::Constant)]
    pub schedule: ScheduleArg,

    /// Epochs between decays of the step schedule.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub step_size: u32,

    /// Decay factor of the step (default 0.1) and exponential (default 0.95) schedules.
    #[arg(long, value_parser = parse_positive)]
    pub gamma: Option<f64>,

    /// Final learning rate of the cosine schedule.
    #[arg(long, default_value_t = 0.0, value_parser = parse_non_negative)]
    pub min_lr: f64,

    /// Epochs without improvement before the plateau schedule reduces the rate.
    #[arg(long, default_value_t = 5)]
    pub plateau_patience: usize,

    /// Factor the plateau schedule multiplies the rate by.
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction)]
    pub plateau_factor: f64,

    /// Linear warm-up epochs before the schedule (combines with any schedule).
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,

    /// Dropout probability after each hidden activation (training only).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub dropout: f64,

    /// Batch normalisation after each hidden linear layer.
    #[arg(long)]
    pub batch_norm: bool,

    /// Rescale each step's gradient so its global L2 norm is at most this.
    #[arg(long, value_parser = parse_positive)]
    pub clip_grad_norm: Option<f64>,

    /// Weight initialiser [default: he-normal for the ReLU family, glorot-uniform otherwise].
    #[arg(long, value_enum)]
    pub init: Option<InitArg>,

    /// Stop after this many epochs without improvement of the validation loss (the test loss
    /// without --val-split); the best epoch's weights are kept.
    #[arg(long, value_name = "PATIENCE", value_parser = clap::value_parser!(u32).range(1..))]
    pub early_stopping: Option<u32>,

    /// Train on only this many training samples (a seeded, stratified subset), e.g. to see
    /// overfitting.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_train: Option<u32>,

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

    /// Read settings from a TOML file whose keys are these flags' names (batch_size = 64), like
    /// a run's config.toml; flags given as well override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Name of the run folder under runs/ [default: the UTC time, e.g. 2026-11-27T21-50-02].
    #[arg(long, value_name = "NAME", conflicts_with = "run_dir")]
    pub name: Option<String>,

    /// Save the run into exactly this folder instead of runs/<name>.
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,

    /// Do not write a run folder.
    #[arg(long, conflicts_with_all = ["name", "run_dir"])]
    pub no_save: bool,

    /// No progress bar: plain per-epoch lines even on a terminal.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also print the loss of every iteration.
    #[arg(long, short)]
    pub verbose: bool,

    /// Save the trained model to this file (safetensors, loadable by PyTorch; see
    /// `nabla predict`, `nabla evaluate`, `nabla inspect`). Written atomically.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// After every epoch, save a checkpoint (model, optimizer state, epoch, step counter,
    /// schedule, history, best weights) atomically into this folder, keeping the last 3 and the
    /// best.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// Continue the run whose checkpoints are in DIR from its latest one, with the settings it
    /// was started with (other flags are ignored). Ends bit-identical to an uninterrupted run.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
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
    schedule: &'a str,
    warmup: usize,
    weight_decay: f64,
    dropout: f64,
    batch_norm: bool,
    early_stopping: Option<u32>,
    stopped_early: bool,
    /// The epoch whose weights the final model holds.
    kept_epoch: usize,
    epochs: &'a [EpochMetrics],
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<hints::DiagnosisJson<'a>>,
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
    /// Seconds to run the whole test set through the final model (forward only, chunks of
    /// 1,000 rows in parallel).
    inference_seconds: f64,
}

/// Training, optional validation and test sets, and warnings for the user.
pub(crate) struct Loaded {
    pub(crate) train: Dataset,
    pub(crate) val: Option<Dataset>,
    pub(crate) test: Dataset,
    pub(crate) warnings: Vec<String>,
    /// How the data's rows became network inputs (saved with the model).
    pub(crate) preprocess: Preprocess,
}

/// Loads the training, validation and test sets the flags ask for.
pub(crate) fn load(args: &TrainArgs) -> Result<Loaded> {
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
        preprocess: p.preprocess,
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
                (args.task == Some(TaskArg::Regression), "--task regression"),
            ] {
                if given {
                    csv_only(flag)?;
                }
            }
            let (train, test) = data::idx::read_dir(path)?;
            let (train, val, warnings) = if args.val_split > 0.0 {
                let (train, val, warnings) =
                    data::table::carve_validation(&train, args.val_split, args.seed)?;
                (train, Some(val), warnings)
            } else {
                (train, None, Vec::new())
            };
            // Pixels are /255 unless --scale asks for a fit on the training images.
            let scaling = match args.scale {
                None => Scaling::Pixels,
                Some(ScaleArg::Standard) => Scaling::Standard,
                Some(ScaleArg::Minmax) => Scaling::MinMax,
                Some(ScaleArg::None) => Scaling::None,
            };
            let preprocess = Preprocess::pixels_fitted(&train, scaling)?;
            // Pixels / 255 and `none` keep the bytes; standard and minmax store f32.
            let rescale = |d: Dataset| -> Result<Dataset> {
                Ok(d.rescale_bytes(&preprocess.center, &preprocess.scale)?)
            };
            Ok(Loaded {
                train: rescale(train)?,
                val: val.map(rescale).transpose()?,
                test: rescale(test)?,
                warnings,
                preprocess,
            })
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

/// How progress is shown: a bar per epoch on a terminal, plain lines otherwise.
struct Progress {
    terminal: bool,
    verbose: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    samples: usize,
    loss_sum: f64,
    epochs: usize,
}

impl Progress {
    fn iteration(&mut self, it: &IterationStats) {
        if it.iteration == 1 {
            self.started = Instant::now();
            self.samples = 0;
            self.loss_sum = 0.0;
            if self.terminal {
                let bar = ProgressBar::with_draw_target(
                    Some(it.iterations as u64),
                    ProgressDrawTarget::stdout(),
                );
                if let Ok(style) = ProgressStyle::with_template(
                    "epoch {prefix} [{wide_bar:.cyan/blue}] {pos}/{len} it  {msg}  ETA {eta}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                let width = self.epochs.to_string().len();
                bar.set_prefix(format!("{:>width$}/{}", it.epoch, self.epochs));
                self.bar = Some(bar);
            }
        }
        self.samples += it.samples;
        self.loss_sum += it.loss * it.samples as f64;
        let rate = self.samples as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let running = self.loss_sum / self.samples.max(1) as f64;
        if self.verbose {
            let line = format!(
                "  epoch {} iteration {}/{}  loss {:.4}",
                it.epoch, it.iteration, it.iterations, it.loss
            );
            match &self.bar {
                Some(bar) => bar.println(line),
                None => {
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {running:.4}  {rate:.0} samples/s"));
            bar.inc(1);
        }
    }

    fn epoch(&mut self, line: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}

/// Runs `nabla train`; `matches` are the parsed flags, from which config.toml is written.
pub fn run(args: TrainArgs, matches: &ArgMatches) -> Result<()> {
    // With --resume, the settings are the saved command line's, parsed again as at the start.
    let resumed_matches: ArgMatches;
    let (args, matches, argv, resume) = match &args.resume {
        Some(dir) => {
            let ckpt =
                nabla::train::checkpoint::load_latest(dir).context("reading the checkpoint")?;
            let not_train = || {
                nabla::NablaError::data(
                    &ckpt.path,
                    "__metadata__.checkpoint",
                    "the saved command line is not a nabla train command",
                )
            };
            let command = super::Cli::command();
            let saved: Vec<std::ffi::OsString> = ckpt.argv.iter().map(Into::into).collect();
            let saved = match command.find_subcommand("train") {
                Some(train) => super::config::expand(saved, train)?,
                None => saved,
            };
            resumed_matches = command
                .try_get_matches_from(saved)
                .map_err(|_| not_train())?;
            let Some(sub) = resumed_matches.subcommand_matches("train") else {
                anyhow::bail!(not_train());
            };
            let parsed = TrainArgs::from_arg_matches(sub).map_err(|_| not_train())?;
            if std::env::args().count() > 4 {
                eprintln!(
                    "warning: --resume continues with the settings the run was started with; other flags are ignored"
                );
            }
            eprintln!(
                "resuming from {} (epoch {} done)",
                ckpt.path.display(),
                ckpt.state.epoch
            );
            let argv = ckpt.argv.clone();
            (parsed, sub, argv, Some(ckpt))
        }
        None => (args, matches, std::env::args().collect::<Vec<_>>(), None),
    };
    let run_dir = if args.no_save {
        None
    } else {
        Some(match (&args.run_dir, &args.name) {
            (Some(dir), _) => dir.clone(),
            (None, Some(name)) => Path::new("runs").join(name),
            (None, None) => fresh(Path::new("runs").join(utc_timestamp())),
        })
    };
    // Fail before training, not after, when the run folder cannot be written.
    if let Some(dir) = &run_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| nabla::NablaError::io(dir, e))
            .context("creating the run folder")?;
    }
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
        preprocess,
    } = load(&args)?;
    let train = match args.limit_train {
        Some(n) if (n as usize) < train.len() => limit(&train, n as usize, args.seed)?,
        _ => train,
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let activation = args.activation.activation();
    let regression = train.task() == Task::Regression;
    let (spec, mut model, mut optimizer) = build(&args, &train)?;
    let resume_state = match resume {
        Some(ckpt) => {
            if ckpt.model.spec() != &spec {
                anyhow::bail!(nabla::NablaError::data(
                    &ckpt.path,
                    "__metadata__.spec",
                    "the checkpoint's network differs from the one its settings build (different data?)"
                ));
            }
            model = ckpt.model;
            optimizer.set_state(ckpt.checkpoint.optimizer);
            Some(ckpt.checkpoint.state)
        }
        None => None,
    };
    let batch_size = args.batch_size as usize;
    let iterations = iterations_per_epoch(train.len(), batch_size);
    let epochs = args.epochs.unwrap_or_else(|| default_epochs(iterations));
    if args.early_stopping.is_some() && val.is_none() {
        eprintln!(
            "warning: --early-stopping without --val-split watches the test loss, so the test set also picks the epoch; add --val-split 0.1 for an unbiased test score"
        );
    }

    let mut out = super::Stdout::lock();
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
        "data: {} — {} training samples{val_desc}, {} test samples, {} features ({}), {target_desc}",
        train.name(),
        train.len(),
        test.len(),
        train.dim(),
        match preprocess.scaling {
            Scaling::Standard => "standardised",
            Scaling::MinMax => "min-max scaled",
            Scaling::None => "unscaled",
            Scaling::Pixels => "pixels / 255",
        },
    )?;
    writeln!(
        out,
        "network: {} ({} parameters)",
        describe(&spec, activation),
        model.params().count()
    )?;
    let mut opt_desc = match &optimizer {
        Optimizer::Sgd(s) => format!(
            "sgd (lr {}, momentum {}{})",
            s.lr,
            s.momentum,
            if s.nesterov { ", nesterov" } else { "" }
        ),
        other => format!("{} (lr {})", other.name(), other.learning_rate()),
    };
    if args.schedule != ScheduleArg::Constant || args.warmup > 0 {
        opt_desc += &format!(
            ", {} schedule{}",
            schedule(&args).name(),
            if args.warmup > 0 {
                format!(" after {} warm-up epochs", args.warmup)
            } else {
                String::new()
            }
        );
    }
    writeln!(
        out,
        "training: batch size {batch_size} → {iterations} iterations per epoch (ceil({} / {batch_size})), {} epochs, {opt_desc}, {threads} thread{}, seed {}",
        train.len(),
        epochs,
        if threads == 1 { "" } else { "s" },
        args.seed
    )?;

    let mut trainer = Trainer::new(TrainConfig {
        schedule: schedule(&args),
        warmup: args.warmup,
        early_stopping: args.early_stopping.map(|p| p as usize),
        clip_grad_norm: args.clip_grad_norm,
        ..TrainConfig::new(epochs, batch_size, args.seed, threads)
    })?;
    let width = epochs.to_string().len();
    let base_lr = optimizer.learning_rate();
    drop(out);
    let progress = std::cell::RefCell::new(Progress {
        terminal: !args.quiet && std::io::stdout().is_terminal(),
        verbose: args.verbose,
        bar: None,
        started: Instant::now(),
        samples: 0,
        loss_sum: 0.0,
        epochs,
    });
    let checkpoint_dir = args.checkpoint_dir.clone();
    let hooks = Hooks::new()
        .on_iteration(|it| progress.borrow_mut().iteration(it))
        .on_epoch(|m| {
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
            progress.borrow_mut().epoch(&format!(
                "{line}  lr {:.3e}  {:.2}s",
                m.learning_rate, m.seconds
            ));
        })
        .on_checkpoint(|state, model, optimizer| match &checkpoint_dir {
            Some(dir) => nabla::train::checkpoint::save(
                dir,
                state,
                model,
                &optimizer.state(),
                &preprocess,
                &argv,
            )
            .map(|_| ()),
            None => Ok(()),
        });
    let splits = Splits::new(&train, &test).with_validation(val.as_ref());
    let report = match resume_state {
        Some(state) => trainer.resume(&mut model, &mut optimizer, splits, state, hooks),
        None => trainer.fit(&mut model, &mut optimizer, splits, hooks),
    };
    if let Some(bar) = progress.borrow_mut().bar.take() {
        bar.abandon();
    }
    let report = report?;
    let mut out = super::Stdout::lock();
    let history = &report.history;
    if report.stopped_early {
        writeln!(
            out,
            "early stopping: no improvement for {} epochs; stopped after epoch {}",
            args.early_stopping.unwrap_or(0),
            history.len()
        )?;
    }
    if report.kept_epoch != history.len() {
        writeln!(
            out,
            "kept the weights of epoch {} (lowest {})",
            report.kept_epoch,
            if val.is_some() {
                "validation loss"
            } else {
                "test loss"
            }
        )?;
    }
    if let Some(d) = &report.diagnosis {
        writeln!(out, "{}", hints::diagnosis_line(d))?;
    }
    let eval_started = std::time::Instant::now();
    let final_eval = trainer.evaluate(&model, &test)?;
    let inference_seconds = eval_started.elapsed().as_secs_f64();
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

    // The model goes to --save and, unless --no-save, into the run folder as model.safetensors.
    let run_model = run_dir.as_ref().map(|d| d.join("model.safetensors"));
    let targets: Vec<&PathBuf> = args.save.iter().chain(run_model.iter()).collect();
    if !targets.is_empty() {
        let training = serde_json::json!({
            "data": train.name(),
            "train_samples": train.len(),
            "hidden": args.hidden,
            "activation": activation.name(),
            "optimizer": optimizer.name(),
            "learning_rate": base_lr,
            "momentum": matches!(optimizer, Optimizer::Sgd(_)).then_some(args.momentum),
            "nesterov": args.nesterov,
            "weight_decay": weight_decay(&args),
            "batch_size": batch_size,
            "epochs": epochs,
            "epochs_run": history.len(),
            "kept_epoch": report.kept_epoch,
            "schedule": schedule(&args).name(),
            "warmup": args.warmup,
            "dropout": args.dropout,
            "batch_norm": args.batch_norm,
            "clip_grad_norm": args.clip_grad_norm,
            "early_stopping": args.early_stopping,
            "val_split": args.val_split,
            "test_split": args.test_split,
            "seed": args.seed,
            "test_loss": final_eval.loss,
            "test_accuracy": final_eval.accuracy,
            "test_r2": final_eval.regression.map(|r| r.r2),
            "nabla_version": env!("CARGO_PKG_VERSION"),
        });
        for path in targets {
            nabla::io::save(path, &model, &preprocess, &training).context("saving the model")?;
            if Some(path) != run_model.as_ref() {
                writeln!(out, "saved the model to {}", path.display())?;
            }
        }
    }

    if let Some(path) = &args.metrics_out {
        let metrics = MetricsReport {
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
            learning_rate: base_lr,
            momentum: matches!(optimizer, Optimizer::Sgd(_)).then_some(args.momentum),
            seed: args.seed,
            threads,
            parameters: model.params().count(),
            schedule: schedule(&args).name(),
            warmup: args.warmup,
            weight_decay: weight_decay(&args),
            dropout: args.dropout,
            batch_norm: args.batch_norm,
            early_stopping: args.early_stopping,
            stopped_early: report.stopped_early,
            kept_epoch: report.kept_epoch,
            epochs: history,
            diagnosis: report.diagnosis.as_ref().map(hints::DiagnosisJson::new),
            test_accuracy: final_eval.accuracy,
            test_r2: final_eval.regression.map(|r| r.r2),
            test_mae: final_eval.regression.map(|r| r.mae),
            test_rmse: final_eval.regression.map(|r| r.rmse),
            test_loss: final_eval.loss,
            train_seconds,
            inference_seconds,
        };
        let json = serde_json::to_string_pretty(&metrics)?;
        std::fs::write(path, json + "\n")
            .map_err(|e| nabla::NablaError::io(path, e))
            .context("writing the metrics file")?;
    }

    if let Some(dir) = run_dir {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let record = History {
            name,
            dataset: train.name().to_string(),
            classes: spec.classes.clone(),
            best_epoch: best_epoch(history).map(|b| b.epoch),
            early_stop_epoch: report.stopped_early.then_some(history.len()),
            confusion_matrix: match spec.task {
                Task::Classification => confusion_matrix(&model, &test)?,
                Task::Regression => Vec::new(),
            },
            epochs: history.clone(),
        };
        let config = super::Cli::command()
            .find_subcommand("train")
            .map(|train| {
                super::config::to_toml(
                    train,
                    matches,
                    &[("lr", base_lr.to_string()), ("epochs", epochs.to_string())],
                )
            })
            .unwrap_or_default();
        save_run(&dir, config, &record)?;
        writeln!(
            out,
            "run saved to {}: model.safetensors, config.toml, metrics.csv, history.json, plots (learning_curves, confusion_matrix, lr_schedule; .png, .svg)",
            dir.display()
        )?;
        writeln!(
            out,
            "  repeat it: nabla train --config {}",
            dir.join("config.toml").display()
        )?;
    }
    Ok(())
}

/// The epoch with the lowest monitored loss: validation loss, else test loss (the epoch early
/// stopping keeps).
fn best_epoch(history: &[EpochMetrics]) -> Option<&EpochMetrics> {
    let monitored = |m: &EpochMetrics| m.val_loss.unwrap_or(m.test_loss);
    history
        .iter()
        .filter(|m| monitored(m).is_finite())
        .min_by(|a, b| monitored(a).total_cmp(&monitored(b)))
}

/// Writes config.toml, metrics.csv, history.json and the plots into `dir`.
fn save_run(dir: &Path, config: String, record: &History) -> Result<()> {
    let io = |path: &Path, e| anyhow::Error::from(nabla::NablaError::io(path, e));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let write = |name: &str, text: String| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| io(&path, e))
    };
    write("config.toml", config)?;
    let mut csv = String::from(
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,test_r2,learning_rate,seconds\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for m in &record.epochs {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            m.epoch,
            m.train_loss,
            opt(m.train_accuracy),
            opt(m.val_loss),
            opt(m.val_accuracy),
            m.test_loss,
            opt(m.test_accuracy),
            opt(m.test_r2),
            m.learning_rate,
            m.seconds
        );
    }
    write("metrics.csv", csv)?;
    write("history.json", serde_json::to_string_pretty(record)? + "\n")?;
    plot::draw_run(dir, record).context("drawing the plots")?;
    Ok(())
}

/// `path`, or `path-2`, `path-3`, ... if it exists already.
fn fresh(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    (2..)
        .map(|i| PathBuf::from(format!("{}-{i}", path.display())))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

/// The current UTC time as `2026-11-27T21-50-02` (safe in file names).
fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The preprocessing of IDX images (see [`Preprocess::pixels`]).
/// A seeded subset of `n` training samples (stratified by class for classification).
fn limit(train: &Dataset, n: usize, seed: u64) -> Result<Dataset> {
    let fraction = n as f64 / train.len() as f64;
    let mut keep = match train.task() {
        Task::Classification => {
            data::split::stratified_stream(
                train.labels(),
                train.classes().len(),
                fraction,
                seed,
                7,
            )?
            .held
        }
        Task::Regression => data::split::random(train.len(), fraction, seed, 7)?.held,
    };
    keep.truncate(n);
    Ok(train.subset(&keep, train.name()))
}

/// The default epoch count: 30, or enough for at least 1,000 iterations on small datasets
/// (at most 200 epochs).
fn default_epochs(iterations_per_epoch: usize) -> usize {
    1000usize
        .div_ceil(iterations_per_epoch.max(1))
        .clamp(30, 200)
}

/// The weight decay in force: the flag, else 0.01 for adamw and 0 otherwise.
fn weight_decay(args: &TrainArgs) -> f64 {
    args.weight_decay
        .unwrap_or(if args.optimizer == OptimizerArg::Adamw {
            0.01
        } else {
            0.0
        })
}

/// The schedule the flags ask for.
fn schedule(args: &TrainArgs) -> Schedule {
    match args.schedule {
        ScheduleArg::Constant => Schedule::Constant,
        ScheduleArg::Step => Schedule::Step {
            step_size: args.step_size as usize,
            gamma: args.gamma.unwrap_or(0.1),
        },
        ScheduleArg::Exponential => Schedule::Exponential {
            gamma: args.gamma.unwrap_or(0.95),
        },
        ScheduleArg::Cosine => Schedule::Cosine {
            min_lr: args.min_lr,
        },
        ScheduleArg::Plateau => Schedule::Plateau {
            factor: args.plateau_factor,
            patience: args.plateau_patience,
        },
    }
}

/// Builds the network and optimizer the flags ask for, for the data in `train`.
pub fn build(args: &TrainArgs, train: &Dataset) -> Result<(ModelSpec, Network, Optimizer)> {
    let activation = args.activation.activation();
    let outputs = match train.task() {
        Task::Regression => 1,
        Task::Classification => train.classes().len(),
    };
    let mut spec = ModelSpec::mlp_with(
        train.dim(),
        &args.hidden,
        activation,
        outputs,
        args.batch_norm,
        args.dropout as f32,
    );
    spec.task = train.task();
    spec.classes = train.classes().to_vec();
    let init = args.init.map(|i| match i {
        InitArg::HeNormal => Init::HeNormal,
        InitArg::HeUniform => Init::HeUniform,
        InitArg::GlorotNormal => Init::GlorotNormal,
        InitArg::GlorotUniform => Init::GlorotUniform,
    });
    let model =
        Network::from_spec_with_init(&spec, args.seed, init).context("building the network")?;
    let wd = weight_decay(args);
    let optimizer = match args.optimizer {
        OptimizerArg::Sgd => {
            let mut o = Sgd::new(args.lr.unwrap_or(0.05), args.momentum);
            o.nesterov = args.nesterov;
            o.weight_decay = wd;
            if args.nesterov && args.momentum == 0.0 {
                anyhow::bail!(nabla::NablaError::Usage(
                    "--nesterov needs a momentum above 0".into()
                ));
            }
            Optimizer::Sgd(o)
        }
        OptimizerArg::Adam => {
            let default_lr = match activation {
                Activation::Sigmoid | Activation::Tanh => 0.01,
                Activation::Relu | Activation::LeakyRelu { .. } | Activation::Gelu => 0.001,
            };
            let mut o = Adam::new(args.lr.unwrap_or(default_lr));
            o.weight_decay = wd;
            Optimizer::Adam(o)
        }
        OptimizerArg::Adamw => Optimizer::Adam(Adam::adamw(args.lr.unwrap_or(0.001), wd)),
        OptimizerArg::Rmsprop => {
            let mut o = RmsProp::new(args.lr.unwrap_or(0.001));
            o.weight_decay = wd;
            Optimizer::RmsProp(o)
        }
        OptimizerArg::Adagrad => {
            let mut o = Adagrad::new(args.lr.unwrap_or(0.01));
            o.weight_decay = wd;
            Optimizer::Adagrad(o)
        }
    };
    Ok((spec, model, optimizer))
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
