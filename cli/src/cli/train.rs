//! `nabla train`: load data, split it, build the network from flags, train, report.
//! On a terminal each epoch shows a progress bar; every run is saved to a run folder.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{ArgMatches, Args, CommandFactory, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use nabla::config::{
    ActivationKind, ImputeKind, OptimizerKind, Output, RunConfig, RunData, ScaleKind, ScheduleKind,
    defaults,
};
use nabla::data::{Dataset, Scaling};
use nabla::kernels::activation::Activation;
use nabla::nn::Init;
use nabla::nn::{ModelSpec, Network, Task};
use nabla::optim::Optimizer;
use nabla::train::baseline::{BaselineConfig, Baselines, Scores};
use nabla::train::checkpoint::{DataFingerprint, ModelCheckpoint, RunIdentity};
use nabla::train::diagnosis::{Context as FitContext, diagnose_with};
use nabla::train::{
    Diagnosis, EpochMetrics, Evaluation, FitReport, FitState, Hooks, IterationStats, Splits,
    Trainer, confusion_matrix, iterations_per_epoch,
};

use super::distributed::World;
use super::hints;
use super::outputs::Existing;
use super::plot::{self, History};
use super::progress;

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
`nabla train --config runs/<run>/config.toml`), metrics.csv, history.json, plots\n\
(learning_curves, confusion_matrix, lr_schedule; .png and .svg) and a TensorBoard event file\n\
written as the run goes (tensorboard --logdir runs).\n\n\
Examples:\n  nabla train\n  nabla train --layers \"conv 16 3 pad 1, relu, maxpool 2, flatten, dense 10\" --image-shape 1x8x8\n  nabla train --epochs 5 --name first-try\n  nabla train --data ../shared/datasets/mnist --hidden 256,128 --optimizer sgd --lr 0.05 --momentum 0.9 --batch-size 128 --epochs 10 --seed 1\n  nabla train --config runs/first-try/config.toml --epochs 10\n  nabla train --data ../shared/datasets/iris.csv --val-split 0.1\n  nabla train --data houses.csv.gz --target price --drop id --impute median\n  nabla train --activation sigmoid --quiet --no-save --metrics-out metrics.json"
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
    #[arg(long, value_name = "SIZES", default_value = defaults::HIDDEN, value_parser = parse_hidden)]
    pub hidden: std::vec::Vec<usize>,

    /// The whole network in words, comma-separated, instead of --hidden/--activation/--dropout/
    /// --batch-norm. Words: `dense N` (linear N); `conv F K [stride S] [pad P] [dilation D]`
    /// (F filters K×K; stride 1, pad 0, dilation 1); `maxpool K [stride S]`, `avgpool K
    /// [stride S]` (stride K); `globalavgpool` (gap: one mean per channel); `flatten` (C×H×W to
    /// C·H·W features, C,H,W order); `batchnorm [eps E] [momentum M]` (per channel after an image
    /// layer, per feature otherwise); `dropout P`; `dropout2d P` (whole channels); `relu`,
    /// `sigmoid`, `tanh`, `gelu`, `leaky_relu [SLOPE]`. Sizes come from the layer before; a dense
    /// layer after an image needs `flatten` first; the last layer is `dense <classes>` (1 for
    /// regression). Image layers read IDX images as 1×H×W, CSV rows with --image-shape.
    /// Example: "conv 32 3 pad 1, relu, maxpool 2, conv 64 3 pad 1, relu, maxpool 2, flatten,
    /// dense 128, relu, dense 10".
    #[arg(long, value_name = "SPEC")]
    pub layers: Option<String>,

    /// Read each sample as an image of C channels, H rows and W columns (`1x8x8` for the
    /// built-in digits) for the image layers of --layers [default: IDX images 1×rows×columns].
    #[arg(long, value_name = "CxHxW")]
    pub image_shape: Option<String>,

    /// Image augmentation of the training samples, drawn anew for each sample every epoch
    /// (images only: IDX, or CSV rows with --image-shape; off by default), comma-separated:
    /// `shift=N` moves the image by up to N whole pixels along each axis (zero fill),
    /// `rotate=D` turns it about its centre by up to D degrees either way (bilinear
    /// interpolation, zero fill), `flip` mirrors it left ↔ right half of the time (not for
    /// digits). The draws depend only on --seed, the epoch and the sample, so any --threads
    /// gives the same run; no copy of the data is made. `none`: off. Example:
    /// shift=2,rotate=10.
    #[arg(long, value_name = "SPEC")]
    pub augment: Option<String>,

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
    #[arg(long, default_value_t = defaults::MOMENTUM, value_parser = parse_momentum)]
    pub momentum: f64,

    /// Samples per mini-batch.
    #[arg(long, default_value_t = defaults::BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,

    /// Passes over the training data [default: 30, more for small datasets so training runs at
    /// least 1,000 iterations, at most 200 epochs; small data (under 10,000 training rows)
    /// without --epochs and --val-split: at most 100-500 epochs (3,000 iterations) with a
    /// validation split and early stopping].
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
    #[arg(long, default_value_t = defaults::STEP_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub step_size: u32,

    /// Decay factor of the step (default 0.1) and exponential (default 0.95) schedules.
    #[arg(long, value_parser = parse_positive)]
    pub gamma: Option<f64>,

    /// Final learning rate of the cosine schedule.
    #[arg(long, default_value_t = defaults::MIN_LR, value_parser = parse_non_negative)]
    pub min_lr: f64,

    /// Epochs without improvement before the plateau schedule reduces the rate.
    #[arg(long, default_value_t = defaults::PLATEAU_PATIENCE)]
    pub plateau_patience: usize,

    /// Factor the plateau schedule multiplies the rate by.
    #[arg(long, default_value_t = defaults::PLATEAU_FACTOR, value_parser = parse_fraction)]
    pub plateau_factor: f64,

    /// Linear warm-up epochs before the schedule (combines with any schedule): the rate rises at
    /// every iteration, from base/(N × iterations per epoch) to the base rate at the end of
    /// epoch N.
    #[arg(long, default_value_t = defaults::WARMUP)]
    pub warmup: usize,

    /// Dropout probability after each hidden activation (training only).
    #[arg(long, default_value_t = defaults::DROPOUT, value_parser = parse_fraction)]
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

    /// Stop after this many epochs without improvement of the validation loss; the best epoch's
    /// weights are kept. Without --val-split, 20 % of the training rows are held out for it
    /// (the test set never chooses); with --val-split 0 it is off.
    #[arg(long, value_name = "PATIENCE", value_parser = clap::value_parser!(u32).range(1..))]
    pub early_stopping: Option<u32>,

    /// Train on exactly this many training samples (a seeded, stratified subset), e.g. to see
    /// overfitting; a validation split (--val-split) is carved from these rows.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_train: Option<u32>,

    /// Fraction held out as the test set when the data has no test set of its own.
    #[arg(long, default_value_t = defaults::TEST_SPLIT, value_parser = parse_fraction)]
    pub test_split: f64,

    /// Fraction of the training part held out as a validation set, evaluated every epoch; it
    /// alone picks the best epoch [default: 0; 0.2 with --early-stopping, and for small data
    /// (under 10,000 training rows) when --epochs is not given either, which also turns on
    /// early stopping (patience 20) and weight decay (0.01 under 1,000 rows, else 0.001)].
    #[arg(long, value_parser = parse_fraction)]
    pub val_split: Option<f64>,

    /// Seed for weight initialisation, the split and shuffling (same seed, same numbers).
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,

    /// Worker threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,

    /// Under `mpirun` (a build with `--features mpi`): seconds a rank waits for another before
    /// it stops the whole run (longer than any evaluation or checkpoint pause).
    #[arg(long, value_name = "SECS", default_value_t = 120.0, value_parser = parse_timeout)]
    pub mpi_timeout: f64,

    /// Under `mpirun`: how the ranks combine their gradients. `auto`: when every rank runs on
    /// this machine, through one shared-memory window, each rank summing and updating its own
    /// share of the weights (else MPI messages); `messages`: MPI messages only, as between
    /// machines. Both give the same bits.
    #[arg(long, value_name = "HOW", default_value = "auto", value_parser = ["auto", "messages"])]
    pub mpi_transport: String,

    /// Under `mpirun`, ranks combining by messages: `on` sums each layer's gradients across the
    /// ranks as soon as its backward is done, while the earlier layers' backward runs; `off`
    /// after the whole backward pass. Both give the same bits.
    #[arg(long, value_name = "ON_OFF", default_value = "on", value_parser = ["on", "off"])]
    pub mpi_overlap: String,

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

    /// Print errors, warnings and the final `done:` line only (no setup, epoch or summary
    /// lines, no progress bar).
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
    /// best. A folder holding another run's checkpoints is refused. On Ctrl-C the run saves its
    /// outputs marked "interrupted" and exits 130 (143 on SIGTERM).
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// Continue the run whose checkpoints are in DIR from its latest one, with the settings it
    /// was started with. --epochs N extends it to N epochs; output flags replace the stored
    /// ones; other flags are ignored. Refuses changed data (see --accept-changed-data). Ends
    /// bit-identical to an uninterrupted run.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,

    /// Replace the run folder of --name or --run-dir if it already holds a run (the files a
    /// run writes are removed first); without it such a folder is refused.
    #[arg(long)]
    pub overwrite: bool,

    /// With --resume: continue although the data files differ from the ones the checkpoint was
    /// trained on (size and hash); without it such a resume is refused.
    #[arg(long, requires = "resume")]
    pub accept_changed_data: bool,
}

/// Parses `--delimiter`: one ASCII character, or `tab`.
fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e6 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 1e6"
        )),
    }
}

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
    /// The MLP's hidden widths; empty when `layers` describes the network.
    hidden: Vec<usize>,
    /// The `--layers` description, `null` for an MLP built from `hidden`.
    layers: Option<&'a str>,
    /// The `--augment` description, `null` when off.
    augment: Option<&'a str>,
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
    /// True when training diverged (the model holds the last good weights).
    diverged: bool,
    /// The epoch whose weights the final model holds.
    kept_epoch: usize,
    /// `finished`, or `interrupted` (a signal stopped the run; see `nabla train --help`).
    status: &'a str,
    epochs: &'a [EpochMetrics],
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<hints::DiagnosisJson<'a>>,
    /// The final model's test metrics (`null` without a test set) and, with a validation
    /// set, its validation metrics: `test_loss`, `test_accuracy` or `test_mae`, `test_rmse`,
    /// `test_r2`; `val_loss`, ...
    #[serde(flatten)]
    final_metrics: serde_json::Map<String, serde_json::Value>,
    /// `{trivial: {...}, linear: {...}}` under the same metric names.
    baselines: serde_json::Value,
    train_seconds: f64,
    /// Seconds to run the whole test set through the final model (forward only, chunks of
    /// 1,000 rows in parallel).
    inference_seconds: f64,
}

impl TrainArgs {
    /// The run settings these flags stand for (clap's defaults are the library's, so a value
    /// left at its default equals the one [`RunConfig::resolve`] would fill in).
    pub fn config(&self) -> RunConfig {
        RunConfig {
            data: self.data.clone(),
            test_data: self.test_data.clone(),
            target: self.target.clone(),
            features: self.features.clone(),
            drop: self.drop.clone(),
            delimiter: self.delimiter.map(char::from),
            task: self.task.map(|t| match t {
                TaskArg::Classification => Task::Classification,
                TaskArg::Regression => Task::Regression,
            }),
            impute: self.impute.map(|i| match i {
                ImputeArg::Mean => ImputeKind::Mean,
                ImputeArg::Median => ImputeKind::Median,
                ImputeArg::DropRows => ImputeKind::DropRows,
            }),
            scale: self.scale.map(|s| match s {
                ScaleArg::Standard => ScaleKind::Standard,
                ScaleArg::Minmax => ScaleKind::Minmax,
                ScaleArg::None => ScaleKind::None,
            }),
            hidden: Some(self.hidden.clone()),
            layers: self.layers.clone(),
            image_shape: self.image_shape.clone(),
            augment: self.augment.clone(),
            activation: Some(self.activation.kind()),
            optimizer: Some(self.optimizer.kind()),
            lr: self.lr,
            momentum: Some(self.momentum),
            batch_size: Some(self.batch_size as usize),
            epochs: self.epochs,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            schedule: Some(self.schedule.kind()),
            step_size: Some(self.step_size as usize),
            gamma: self.gamma,
            min_lr: Some(self.min_lr),
            plateau_patience: Some(self.plateau_patience),
            plateau_factor: Some(self.plateau_factor),
            warmup: Some(self.warmup),
            dropout: Some(self.dropout),
            batch_norm: self.batch_norm,
            clip_grad_norm: self.clip_grad_norm,
            init: self.init.map(|i| match i {
                InitArg::HeNormal => Init::HeNormal,
                InitArg::HeUniform => Init::HeUniform,
                InitArg::GlorotNormal => Init::GlorotNormal,
                InitArg::GlorotUniform => Init::GlorotUniform,
            }),
            early_stopping: self.early_stopping.map(|p| p as usize),
            limit_train: self.limit_train.map(|n| n as usize),
            test_split: Some(self.test_split),
            val_split: self.val_split,
            seed: Some(self.seed),
            threads: self.threads.map(|t| t as usize),
            output: Output {
                save: self.save.clone(),
                checkpoint_dir: self.checkpoint_dir.clone(),
                metrics_out: self.metrics_out.clone(),
                name: self.name.clone(),
                run_dir: self.run_dir.clone(),
                no_save: self.no_save,
                quiet: self.quiet,
                verbose: self.verbose,
            },
        }
    }
}

impl ActivationArg {
    fn kind(self) -> ActivationKind {
        match self {
            ActivationArg::Relu => ActivationKind::Relu,
            ActivationArg::Sigmoid => ActivationKind::Sigmoid,
            ActivationArg::Tanh => ActivationKind::Tanh,
            ActivationArg::LeakyRelu => ActivationKind::LeakyRelu,
            ActivationArg::Gelu => ActivationKind::Gelu,
        }
    }
}

impl OptimizerArg {
    fn kind(self) -> OptimizerKind {
        match self {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::Adamw,
            OptimizerArg::Rmsprop => OptimizerKind::Rmsprop,
            OptimizerArg::Adagrad => OptimizerKind::Adagrad,
        }
    }
}

impl ScheduleArg {
    fn kind(self) -> ScheduleKind {
        match self {
            ScheduleArg::Constant => ScheduleKind::Constant,
            ScheduleArg::Step => ScheduleKind::Step,
            ScheduleArg::Exponential => ScheduleKind::Exponential,
            ScheduleArg::Cosine => ScheduleKind::Cosine,
            ScheduleArg::Plateau => ScheduleKind::Plateau,
        }
    }
}

/// How progress is shown: a bar per epoch on a terminal, plain lines otherwise.
struct Progress {
    terminal: bool,
    /// --quiet: no epoch lines.
    quiet: bool,
    verbose: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    samples: usize,
    loss_sum: f64,
    epochs: usize,
    /// The terminal's width, when progress goes to one.
    width: Option<usize>,
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
                if let Ok(style) = ProgressStyle::with_template(progress::bar_template(self.width))
                {
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
            let left = it.iterations.saturating_sub(it.iteration) as f64;
            let eta = self.started.elapsed().as_secs_f64() / it.iteration.max(1) as f64 * left;
            bar.set_message(progress::bar_message(running, rate, eta, self.width));
            bar.inc(1);
        }
    }

    fn epoch(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        // A terminal gets a line that fits it (its width read each epoch: it may be resized).
        if self.width.is_some() {
            self.width = progress::terminal_width().or(self.width);
        }
        if self.quiet {
            return;
        }
        let line = progress::epoch_line(m, self.epochs, self.width);
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}

/// Runs `nabla train`: the flags (or, with `--resume`, the checkpoint's settings) become one
/// [`RunConfig`], resolved once the data is loaded; everything after reads only that. Every
/// output is checked before the data is loaded.
pub fn run(args: TrainArgs, matches: &ArgMatches) -> Result<()> {
    let messages_only = args.mpi_transport == "messages";
    let mut world = World::join(Duration::from_secs_f64(args.mpi_timeout), messages_only)?;
    world.overlap = args.mpi_overlap == "on";
    let (config, resume) = match &args.resume {
        Some(dir) => match super::resume::resumed(dir, &args, matches)? {
            Some((config, ckpt)) => (config, Some(ckpt)),
            None => return Ok(()),
        },
        None => (args.config(), None),
    };
    // A resumed run writes into its own folder (the one its settings name), unless an output
    // flag given with --resume points elsewhere.
    let own_folder = resume.is_some()
        && !["run_dir", "name", "no_save"]
            .iter()
            .any(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine));
    let claim = FolderClaim {
        resuming: resume.is_some(),
        own_folder,
    };
    let folder = checked_run_folder(&mut world, &args, &config, claim)?;
    let run_dir = folder
        .as_ref()
        .and_then(|f| f.run.as_ref())
        .map(|f| f.dir.clone());
    let events = super::tensorboard::EventLog::open(run_dir.as_deref());
    let data = config.load_data()?;
    for w in data.warnings.iter().filter(|_| world.is_root()) {
        eprintln!("warning: {w}");
    }
    let defaulted = config.epochs.is_none() && config.val_split.is_none();
    let config = config.resolve_for(&data);
    super::memory::check_run(&config, &data)?;
    let (spec, mut model) = config.network(&data.train, data.image)?;
    check_header(&model, &data, &config)?;
    let augment = config.augmenter(&data)?;
    let mut optimizer = config.optimizer()?;
    let (identity, resume_state) = identity_and_state(
        resume,
        (&spec, &config, args.accept_changed_data),
        (&mut model, &mut optimizer),
    )?;
    if world.is_root() {
        warn_unused_early_stopping(&config, &data);
    }
    if !config.output.quiet {
        print_setup(
            &config,
            &data,
            (&spec, &model),
            &optimizer,
            (&world, defaulted),
        )?;
    }
    if let Some(a) = augment
        .as_ref()
        .filter(|_| world.is_root() && !config.output.quiet)
    {
        augment_line(a)?;
    }
    let base_lr = optimizer.learning_rate();
    // Under MPI every rank handles the signals and the ranks agree after each step whether
    // any was asked to stop, so all stop after the same step.
    let stop = super::signals::Stop::install();
    let (report, checkpoint_failure) = fit(
        (&config, &identity, &stop),
        &data,
        &mut model,
        &mut optimizer,
        resume_state,
        &mut world,
        &events,
    )?;
    let ended = match world.is_root() {
        true => {
            let finished = Finished {
                config: &config,
                data: &data,
                spec: &spec,
                model: &model,
                base_lr,
                report: &report,
                stop: &stop,
                failures: std::cell::RefCell::new(checkpoint_failure.into_iter().collect()),
            };
            finished.save(run_dir, &events).and_then(|()| {
                drop(folder);
                interrupted(&config, &report, &stop)
            })
        }
        false => other_rank_end(&report, &stop),
    };
    // The other ranks wait until rank 0 has saved: their exit (non-zero after a signal or a
    // divergence) would make mpirun end rank 0 before its files are written.
    let _ = world.agree(true);
    ended
}

/// How a rank other than 0 ends: every rank saw the same losses and the same stop verdict, so
/// a diverged or interrupted run fails on every rank.
fn other_rank_end(report: &FitReport, stop: &super::signals::Stop) -> Result<()> {
    if let Some(why) = &report.diverged {
        return Err(nabla::NablaError::Diverged(why.clone()).into());
    }
    match report.interrupted {
        true => Err(super::signals::Interrupted(stop.requested().unwrap_or(130)).into()),
        false => Ok(()),
    }
}

/// Every output checked and the run folder claimed by rank 0, before any rank loads data
/// (under MPI the other ranks wait for its verdict and stop with it).
fn checked_run_folder(
    world: &mut World,
    args: &TrainArgs,
    config: &RunConfig,
    claim: FolderClaim,
) -> Result<Option<super::outputs::Claim>> {
    let folder = match world.is_root() {
        true => preflight(args, config, claim).map(Some),
        false => Ok(None),
    };
    if !world.agree(folder.is_ok())? {
        folder?;
        // mpirun ends the job at the first non-zero exit: give rank 0 the time to print why
        // (it exits at once, and mpirun then reports rank 0's exit, not this one).
        std::thread::sleep(Duration::from_secs(1));
        anyhow::bail!("rank 0 could not start the run (its message says why)");
    }
    folder
}

/// How the run folder is claimed.
#[derive(Debug, Clone, Copy)]
struct FolderClaim {
    /// The run continues from a checkpoint (--resume).
    resuming: bool,
    /// The folder is the resumed run's own: the run it holds is the one continued, so it is
    /// replaced without --overwrite.
    own_folder: bool,
}

/// Every output checked, and the run folder claimed (rank 0 only).
fn preflight(
    args: &TrainArgs,
    config: &RunConfig,
    claim: FolderClaim,
) -> Result<super::outputs::Claim> {
    if !claim.resuming
        && let Some(dir) = &config.output.checkpoint_dir
    {
        super::resume::fresh_checkpoint_dir(dir)?;
    }
    let extra_inputs: Vec<PathBuf> = args.config.iter().cloned().collect();
    let existing = match (args.overwrite, claim.own_folder) {
        (true, _) => Existing::Overwrite,
        (false, true) => Existing::Continue,
        (false, false) => Existing::Refuse,
    };
    super::outputs::preflight(config, existing, &extra_inputs)
}

/// The run's identity (new, or the resumed run's) and the state a resume continues from.
fn identity_and_state(
    resume: Option<ModelCheckpoint>,
    (spec, config, accept_changed): (&ModelSpec, &RunConfig, bool),
    (model, optimizer): (&mut Network, &mut Optimizer),
) -> Result<(RunIdentity, Option<FitState>)> {
    let data_files: Vec<PathBuf> = config
        .data
        .iter()
        .chain(&config.test_data)
        .cloned()
        .collect();
    let data_files = &data_files[..];
    let checkpointing = config.output.checkpoint_dir.is_some();
    Ok(match resume {
        Some(ckpt) => {
            let fingerprint = DataFingerprint::of(data_files)?;
            let (identity, state) = super::resume::restore(
                ckpt,
                (spec, &fingerprint, accept_changed),
                model,
                optimizer,
            )?;
            (identity, Some(state))
        }
        // Only checkpoints record the data's fingerprint: no extra read of the data without.
        None if checkpointing => (
            RunIdentity::new(Some(DataFingerprint::of(data_files)?)),
            None,
        ),
        None => (RunIdentity::new(None), None),
    })
}

/// What nabla writes it must read: the header of the model and checkpoint files (class and
/// feature names, layers, settings) is checked against the reader's limit before training.
fn check_header(model: &Network, data: &RunData, config: &RunConfig) -> Result<()> {
    use nabla::io::model_file::{MAX_HEADER, header_len};
    let out = &config.output;
    if out.no_save && out.save.is_none() && out.checkpoint_dir.is_none() {
        return Ok(());
    }
    let training = serde_json::json!({ "config": config.settings_only() });
    let n = header_len(model, &data.preprocess, &training)?;
    // A checkpoint adds the optimizer's state (up to 3 entries per tensor) and the history.
    let tensors = model.tensors().len() as u64;
    let needed = n + tensors * 3 * 200 + (1 << 20);
    if needed > MAX_HEADER {
        anyhow::bail!(nabla::NablaError::Usage(format!(
            "the model file would need a {n}-byte header ({} classes, {} input columns, {tensors} tensors) and its checkpoints about {needed}, more than the {MAX_HEADER} bytes nabla reads back; refusing before training: shorten the class or column names, or use fewer classes or layers",
            data.preprocess.target.classes.len(),
            data.preprocess.features.len(),
        )));
    }
    Ok(())
}

/// `--early-stopping` with `--val-split 0`: nothing may choose, so it is off; says so.
fn warn_unused_early_stopping(config: &RunConfig, data: &RunData) {
    if config.early_stopping.is_some() && data.val.is_none() {
        eprintln!(
            "warning: --early-stopping needs validation data to choose an epoch and --val-split 0 asks for none, so it is off and the last epoch's weights are kept (the test set never chooses)"
        );
    }
}

/// After an interrupted run was saved: where its checkpoint is (if one was written), and the
/// signal's exit code (130 when another rank of an MPI run was the one interrupted). A signal
/// after training (during the baselines) ends the run the same way once everything is saved.
fn interrupted(config: &RunConfig, report: &FitReport, stop: &super::signals::Stop) -> Result<()> {
    let after_training = !report.interrupted && stop.requested().is_some();
    if !report.interrupted && !after_training {
        return Ok(());
    }
    let code = stop.requested().unwrap_or(130);
    let epochs = report.history.len();
    let out = &config.output;
    let saved = !out.no_save || out.save.is_some() || out.metrics_out.is_some();
    let what = if saved {
        "the model and results are saved as shown"
    } else {
        "nothing was saved (--no-save)"
    };
    if after_training {
        eprintln!(
            "interrupted after training ({}): the baselines were skipped; {what}",
            plural(epochs, "epoch")
        );
        return Err(super::signals::Interrupted(code).into());
    }
    let checkpoint = config
        .output
        .checkpoint_dir
        .as_ref()
        .filter(|dir| nabla::train::checkpoint::latest(dir).is_ok());
    match (checkpoint, &config.output.checkpoint_dir) {
        (Some(dir), _) => eprintln!(
            "interrupted after epoch {epochs}: its checkpoint is in {}; continue with nabla train --resume {}",
            dir.display(),
            dir.display()
        ),
        (None, Some(dir)) => eprintln!(
            "interrupted in epoch {}, before any checkpoint was written into {} (nothing to resume: start the run again); {what}, marked \"interrupted\"",
            epochs + 1,
            dir.display()
        ),
        (None, None) => eprintln!(
            "interrupted after epoch {epochs} (and part of the next); {}",
            if saved {
                "the model and results are saved as shown, marked \"interrupted\""
            } else {
                what
            }
        ),
    }
    Err(super::signals::Interrupted(code).into())
}

/// Prints the data, network and training lines before the first epoch.
fn print_setup(
    config: &RunConfig,
    data: &RunData,
    (spec, model): (&ModelSpec, &Network),
    optimizer: &Optimizer,
    (world, defaulted): (&World, bool),
) -> Result<()> {
    let mut out = super::Stdout::lock();
    let train = &data.train;
    let val_desc = val_description(config, data);
    let test_desc = if data.test.is_empty() {
        "no test set".to_string()
    } else {
        format!("{} test samples", data.test.len())
    };
    let target_desc = match train.task() {
        Task::Regression => "regression".to_string(),
        Task::Classification => format!("{} classes", train.classes().len()),
    };
    writeln!(
        out,
        "{}",
        progress::fit_terminal(format!(
            "data: {} — {} training samples{val_desc}, {test_desc}, {} features ({}), {target_desc}",
            train.name(),
            train.len(),
            train.dim(),
            match data.preprocess.scaling {
                Scaling::Standard => "standardised",
                Scaling::MinMax => "min-max scaled",
                Scaling::None => "unscaled",
                Scaling::Pixels => "pixels / 255",
            }
        ))
    )?;
    if config.layers.is_some() {
        writeln!(out, "network ({} parameters):", model.params().count())?;
        write!(out, "{}", nabla::nn::summary::table(spec)?)?;
    } else {
        writeln!(
            out,
            "{}",
            progress::fit_terminal(format!(
                "network: {} ({} parameters)",
                describe(spec, config.activation()),
                model.params().count()
            ))
        )?;
    }
    let tc = config.train_config();
    let workers = match world.size {
        1 => format!(
            "{} thread{}",
            tc.threads,
            if tc.threads == 1 { "" } else { "s" }
        ),
        _ => world.describe(tc.threads, tc.batch_size),
    };
    writeln!(
        out,
        "{}",
        progress::fit_terminal(format!(
            "training: batch size {0} → {1} iterations per epoch (ceil({2} / {0})), {3}, {4}, {5}, seed {6}; {7}",
            tc.batch_size,
            iterations_per_epoch(train.len(), tc.batch_size),
            train.len(),
            plural(tc.epochs, "epoch"),
            describe_optimizer(config, optimizer),
            workers,
            tc.seed,
            super::rule::describe(config, data, defaulted)
        ))
    )?;
    Ok(())
}

/// `augment: shift ±2 px (zero fill), ...` under the training line.
fn augment_line(a: &nabla::data::augment::Augmenter) -> Result<()> {
    let mut out = super::Stdout::lock();
    writeln!(
        out,
        "{}",
        progress::fit_terminal(format!(
            "augment: {} — training samples only, drawn from (seed, epoch, sample)",
            a.augment().describe()
        ))
    )?;
    Ok(())
}

/// `, 287 validation samples (automatic: 20 % of the training rows, stratified, seed 42)`, or
/// nothing without a validation set.
fn val_description(config: &RunConfig, data: &RunData) -> String {
    let train = &data.train;
    data.val
        .as_ref()
        .map(|v| {
            let how = match (data.auto_validation, train.task()) {
                (None, _) => String::new(),
                (Some(_), task) => format!(
                    " (automatic: {} % of the training rows, {}, seed {})",
                    defaults::AUTO_VAL_SPLIT * 100.0,
                    if task == Task::Classification {
                        "stratified"
                    } else {
                        "random"
                    },
                    config.seed()
                ),
            };
            format!(", {} validation samples{how}", v.len())
        })
        .unwrap_or_default()
}

/// `sgd (lr 0.05, momentum 0.9, nesterov), step schedule after 2 warm-up epochs`.
fn describe_optimizer(config: &RunConfig, optimizer: &Optimizer) -> String {
    let mut desc = match optimizer {
        Optimizer::Sgd(s) => format!(
            "sgd (lr {}, momentum {}{})",
            s.lr,
            s.momentum,
            if s.nesterov { ", nesterov" } else { "" }
        ),
        other => format!("{} (lr {})", other.name(), other.learning_rate()),
    };
    let warmup = config.warmup.unwrap_or_default();
    if config.schedule.unwrap_or_default() != ScheduleKind::Constant || warmup > 0 {
        desc += &format!(
            ", {} schedule{}",
            config.schedule().name(),
            if warmup > 0 {
                format!(" after {}", plural(warmup, "warm-up epoch"))
            } else {
                String::new()
            }
        );
    }
    desc
}

/// Trains (or continues) the run, showing progress and writing checkpoints; also returns the
/// first checkpoint that could not be written (training went on without it).
fn fit(
    (config, identity, stop): (&RunConfig, &RunIdentity, &super::signals::Stop),
    data: &RunData,
    model: &mut Network,
    optimizer: &mut Optimizer,
    resume_state: Option<FitState>,
    world: &mut World,
    events: &super::tensorboard::EventLog,
) -> Result<(FitReport, Option<String>)> {
    let mut tc = config.train_config();
    tc.augment = config.augmenter(data)?;
    let epochs = tc.epochs;
    let mut trainer = Trainer::new(tc)?;
    if let Some(group) = world.take_group() {
        trainer = trainer.distributed(group).overlap(world.overlap);
    }
    // mpirun forwards every rank's output through a pseudo-terminal, even into a log file:
    // under MPI progress is printed as epoch lines, never as a redrawn bar.
    let tty = std::io::stdout().is_terminal() && world.size == 1;
    let terminal = !config.output.quiet && tty;
    let progress = std::cell::RefCell::new(Progress {
        terminal,
        quiet: config.output.quiet,
        // Lines fit a terminal's width, with --quiet too; piped output gets full lines.
        width: if tty {
            progress::terminal_width()
        } else {
            None
        },
        verbose: config.output.verbose,
        bar: None,
        started: Instant::now(),
        samples: 0,
        loss_sum: 0.0,
        epochs,
    });
    let checkpoint_dir = config
        .output
        .checkpoint_dir
        .clone()
        .filter(|_| world.is_root());
    let checkpoint_failure = std::cell::RefCell::new(None);
    let hooks = Hooks::new()
        .on_iteration(|it| {
            progress.borrow_mut().iteration(it);
            events.iteration(it);
        })
        .on_epoch(|m| {
            progress.borrow_mut().epoch(m);
            events.epoch(m);
        })
        .on_checkpoint(|state, model, optimizer| {
            if let Some(dir) = &checkpoint_dir {
                let run = (identity, data, config);
                checkpoint(dir, run, (state, model, optimizer), &checkpoint_failure);
            }
            Ok(())
        })
        .stop_when(&stop.flag);
    let splits = splits(data);
    let report = match resume_state {
        Some(state) => trainer.resume(model, optimizer, splits, state, hooks),
        None => trainer.fit(model, optimizer, splits, hooks),
    };
    if let Some(bar) = progress.borrow_mut().bar.take() {
        bar.abandon();
    }
    world.give_back(trainer.take_group());
    Ok((report?, checkpoint_failure.into_inner()))
}

/// Writes the epoch's checkpoint into `dir`. One that cannot be written (a full disk) never
/// costs the run: a warning says so once, training goes on, the model and results are saved at
/// the end, and the run then fails naming the first checkpoint that failed (`failure`).
fn checkpoint(
    dir: &Path,
    (identity, data, config): (&RunIdentity, &RunData, &RunConfig),
    (state, model, optimizer): (&FitState, &Network, &Optimizer),
    failure: &std::cell::RefCell<Option<String>>,
) {
    let saved = nabla::train::checkpoint::save(
        dir,
        identity,
        state,
        model,
        &optimizer.state(),
        &data.preprocess,
        config,
    );
    let mut failed = failure.borrow_mut();
    if let (Err(e), None) = (saved, failed.as_ref()) {
        let why = hints::error_chain(&anyhow::Error::from(e));
        eprintln!(
            "warning: cannot write the checkpoint of epoch {} into {}: {why}; training goes on without checkpoints, and the model is saved at the end",
            state.epoch,
            dir.display()
        );
        *failed = Some(format!(
            "the checkpoint of epoch {} into {} ({why})",
            state.epoch,
            dir.display()
        ));
    }
}

/// The run's splits; an empty test set (`--test-split 0`) is no test set.
fn splits(data: &RunData) -> Splits<'_> {
    Splits {
        train: &data.train,
        val: data.val.as_ref(),
        test: (!data.test.is_empty()).then_some(&data.test),
    }
}

/// A trained run, to be reported and saved.
struct Finished<'a> {
    config: &'a RunConfig,
    data: &'a RunData,
    spec: &'a ModelSpec,
    model: &'a Network,
    /// The learning rate before any schedule.
    base_lr: f64,
    report: &'a FitReport,
    /// A signal after training skips the baselines.
    stop: &'a super::signals::Stop,
    /// Outputs that could not be written (the others are written all the same).
    failures: std::cell::RefCell<Vec<String>>,
}

/// What is measured after training: the final model on the held-out sets, the baselines on
/// the same split, and the verdict.
struct Outcome {
    /// The final model on the validation and test sets (those there are).
    network: Scores,
    baselines: Baselines,
    diagnosis: Option<Diagnosis>,
    /// Said when the network does no better than the linear model on validation data.
    linear_note: Option<nabla::error::Message>,
    inference_seconds: f64,
}

impl Finished<'_> {
    /// [`Finished::report`], then the confusion matrix image in the TensorBoard events.
    fn save(&self, run_dir: Option<PathBuf>, events: &super::tensorboard::EventLog) -> Result<()> {
        self.report(run_dir.clone())?;
        // Only a confusion matrix that was drawn (not beyond MAX_PLOTTED_CLASSES, not for a
        // run stopped in its first epoch) goes into the log.
        let drawn = self.spec.task == Task::Classification
            && self.spec.classes.len() <= plot::MAX_PLOTTED_CLASSES
            && !self.report.history.is_empty();
        if let Some(dir) = run_dir.filter(|_| drawn) {
            let png = dir.join("confusion_matrix.png");
            if png.is_file() {
                events.image("confusion_matrix", &png, self.report.history.len());
            }
        }
        Ok(())
    }

    /// `"finished"`, or `"interrupted"` for a run stopped by a signal.
    fn status(&self) -> &'static str {
        if self.report.interrupted {
            "interrupted"
        } else {
            "finished"
        }
    }

    /// Saves the trained model first (before any post-training work, so no signal can lose
    /// it), then measures, prints the outcome and writes the metrics file and the run folder.
    /// An output that cannot be written does not stop the others: the run then fails naming
    /// each. A diverged run is saved (marked diverged) and then reported as the error.
    fn report(&self, run_dir: Option<PathBuf>) -> Result<()> {
        let (network, inference_seconds) = self.score()?;
        let run_model = run_dir.as_ref().map(|d| d.join("model.safetensors"));
        let saved = self.save_models(run_model.as_ref(), &network);
        let outcome = self.measure(network, inference_seconds)?;
        self.print_outcome(&outcome)?;
        self.announce(&saved, run_model.as_ref())?;
        if let Some(path) = &self.config.output.metrics_out {
            let written = self.write_metrics(path, &outcome);
            self.failed(written, path);
        }
        if let Some(dir) = run_dir {
            let written = self.save_run_folder(&dir, &outcome);
            self.failed(written, &dir);
        }
        let failures = self.failures.borrow();
        if !failures.is_empty() {
            anyhow::bail!(
                "could not write {}; every other output was written",
                failures.join("; ")
            );
        }
        match &self.report.diverged {
            Some(why) => Err(nabla::NablaError::Diverged(why.clone()).into()),
            None => Ok(()),
        }
    }

    /// Records a failed write of `path` (said at the end, after every other output).
    fn failed(&self, result: Result<()>, path: &Path) {
        if let Err(e) = result {
            let why = hints::error_chain(&e);
            eprintln!("error: {why}");
            self.failures
                .borrow_mut()
                .push(format!("{} ({why})", path.display()));
        }
    }

    /// The final model on the validation and test sets, and the test set's inference time.
    fn score(&self) -> Result<(Scores, f64)> {
        let trainer = Trainer::new(self.config.train_config())?;
        let splits = splits(self.data);
        let eval_started = Instant::now();
        let test = splits
            .test
            .map(|t| trainer.evaluate(self.model, t))
            .transpose()?;
        let inference_seconds = eval_started.elapsed().as_secs_f64();
        let val = splits
            .val
            .map(|v| trainer.evaluate(self.model, v))
            .transpose()?;
        Ok((Scores { val, test }, inference_seconds))
    }

    /// Fits the baselines (skipped once a signal arrived) and diagnoses the run.
    fn measure(&self, network: Scores, inference_seconds: f64) -> Result<Outcome> {
        let splits = splits(self.data);
        let c = self.config;
        let baselines = nabla::train::baseline::fit_until(
            splits,
            BaselineConfig {
                linear: !c.data.as_ref().is_some_and(|d| d.is_dir()),
                seed: c.seed(),
                threads: c.threads.unwrap_or(1),
            },
            &self.stop.flag,
        )?
        .unwrap_or(nabla::train::baseline::Baselines::NONE);
        let context = FitContext {
            early_stopping: c.early_stopping.is_some() && splits.val.is_some(),
            dropout: c.dropout.unwrap_or_default() > 0.0,
            weight_decay: c.weight_decay.unwrap_or_default() > 0.0,
            start_loss: (self.spec.task == Task::Classification)
                .then(|| (self.spec.outputs().max(2) as f64).ln()),
        };
        let linear_note = match (&network.val, baselines.linear.and_then(|l| l.val)) {
            (Some(net), Some(lin)) => nabla::train::baseline::not_better_than_linear(net, &lin),
            _ => None,
        };
        Ok(Outcome {
            network,
            baselines,
            diagnosis: diagnose_with(&self.report.history, &context),
            linear_note,
            inference_seconds,
        })
    }

    /// Early stopping, the kept epoch, the diagnosis, the baselines and the final numbers.
    fn print_outcome(&self, outcome: &Outcome) -> Result<()> {
        let mut out = super::Stdout::lock();
        if self.config.output.quiet {
            writeln!(out, "{}", self.done_line(outcome))?;
            return Ok(());
        }
        let (report, history) = (self.report, &self.report.history);
        if report.stopped_early {
            writeln!(
                out,
                "early stopping: no lower validation loss for {}; stopped after epoch {}",
                plural(self.config.early_stopping.unwrap_or(0), "epoch"),
                history.len()
            )?;
        }
        if self.data.val.is_none() {
            writeln!(
                out,
                "no validation set: nothing was chosen; the model is the last trained epoch's"
            )?;
        } else if report.kept_epoch != history.len() {
            writeln!(
                out,
                "kept the weights of epoch {} (lowest validation loss)",
                report.kept_epoch
            )?;
        }
        if let Some(d) = &outcome.diagnosis {
            writeln!(out, "{}", progress::fit_terminal(hints::diagnosis_line(d)))?;
        }
        let regression = self.spec.task == Task::Regression;
        writeln!(
            out,
            "{}",
            super::baselines::line(&outcome.baselines, outcome.network, regression)
        )?;
        if let Some(note) = &outcome.linear_note {
            writeln!(out, "note: {}.", hints::message(note))?;
        }
        writeln!(out, "{}", self.done_line(outcome))?;
        Ok(())
    }

    /// The final line: `done: test accuracy ...`.
    fn done_line(&self, outcome: &Outcome) -> String {
        let train_seconds = self.report.history.iter().fold(0.0, |t, m| t + m.seconds);
        match outcome.network.test {
            None => format!("done: no test set (--test-split 0), {train_seconds:.2}s training"),
            Some(Evaluation {
                regression: Some(r),
                loss,
                ..
            }) => format!(
                "done: test R² {:.4}, MAE {:.4}, RMSE {:.4} (original units), test loss {loss:.4}, {train_seconds:.2}s training",
                r.r2, r.mae, r.rmse
            ),
            Some(e) => format!(
                "done: test accuracy {:.4}, test loss {:.4}, {train_seconds:.2}s training",
                e.accuracy.unwrap_or(f64::NAN),
                e.loss
            ),
        }
    }

    /// The model goes to --save and, unless --no-save, into the run folder; its `training`
    /// metadata holds the settings (`config`, without the output part) and the results.
    /// Returns the files written; a file that cannot be written is recorded and the others
    /// are still written.
    fn save_models(&self, run_model: Option<&PathBuf>, network: &Scores) -> Vec<PathBuf> {
        let targets: Vec<&PathBuf> = self.config.output.save.iter().chain(run_model).collect();
        if targets.is_empty() {
            return Vec::new();
        }
        let training = self.training_metadata(network);
        let mut saved = Vec::new();
        for path in targets {
            let written = nabla::io::save(path, self.model, &self.data.preprocess, &training)
                .context("saving the model");
            match written {
                Ok(()) => saved.push(path.clone()),
                Err(e) => self.failed(Err(e), path),
            }
        }
        saved
    }

    /// `saved the model to FILE` for each --save file written.
    fn announce(&self, saved: &[PathBuf], run_model: Option<&PathBuf>) -> Result<()> {
        if self.config.output.quiet {
            return Ok(());
        }
        let mut out = super::Stdout::lock();
        for path in saved.iter().filter(|p| Some(*p) != run_model) {
            writeln!(out, "saved the model to {}", path.display())?;
        }
        Ok(())
    }

    /// The model file's `training` metadata: the settings and the network's results.
    fn training_metadata(&self, network: &Scores) -> serde_json::Value {
        let c = self.config;
        let optimizer = c.optimizer.unwrap_or_default();
        let test = network.test;
        serde_json::json!({
            "data": self.data.train.name(),
            "train_samples": self.data.train.len(),
            "hidden": if c.layers.is_some() { None } else { c.hidden.as_ref() },
            "layers": c.layers,
            "augment": c.augment.as_deref().filter(|a| *a != "none"),
            "activation": c.activation().name(),
            "optimizer": optimizer_name(optimizer),
            "learning_rate": self.base_lr,
            "momentum": (optimizer == OptimizerKind::Sgd).then_some(c.momentum).flatten(),
            "nesterov": c.nesterov,
            "weight_decay": c.weight_decay,
            "batch_size": c.batch_size,
            "epochs": c.epochs,
            "epochs_run": self.report.history.len(),
            "kept_epoch": self.report.kept_epoch,
            "diverged": self.report.diverged.is_some(),
            "schedule": c.schedule().name(),
            "warmup": c.warmup,
            "dropout": c.dropout,
            "batch_norm": c.batch_norm,
            "clip_grad_norm": c.clip_grad_norm,
            "early_stopping": c.early_stopping,
            "val_split": c.val_split,
            "test_split": c.test_split,
            "seed": c.seed,
            "test_loss": test.map(|e| e.loss),
            "test_accuracy": test.and_then(|e| e.accuracy),
            "test_r2": test.and_then(|e| e.regression).map(|r| r.r2),
            "nabla_version": env!("CARGO_PKG_VERSION"),
            "status": self.status(),
            "config": c.settings_only(),
        })
    }

    /// The final model's metrics under the network's names: test (`null` without a test set)
    /// and, with a validation set, validation.
    fn final_metrics(&self, outcome: &Outcome) -> serde_json::Map<String, serde_json::Value> {
        let regression = self.spec.task == Task::Regression;
        let mut m = super::baselines::metrics("test", outcome.network.test.as_ref(), regression);
        if let Some(v) = &outcome.network.val {
            m.extend(super::baselines::metrics("val", Some(v), regression));
        }
        m
    }

    /// The metrics file (--metrics-out): results, and the settings (read off the resolved
    /// config) they came from.
    fn write_metrics(&self, path: &Path, outcome: &Outcome) -> Result<()> {
        let (c, train) = (self.config, &self.data.train);
        let optimizer = c.optimizer.unwrap_or_default();
        let tc = c.train_config();
        let regression = self.spec.task == Task::Regression;
        let metrics = MetricsReport {
            dataset: train.name(),
            task: self.spec.task.name(),
            train_samples: train.len(),
            val_samples: self.data.val.as_ref().map(Dataset::len),
            test_samples: self.data.test.len(),
            features: train.dim(),
            classes: &self.spec.classes,
            batch_size: tc.batch_size,
            iterations_per_epoch: iterations_per_epoch(train.len(), tc.batch_size),
            hidden: match c.layers {
                Some(_) => Vec::new(),
                None => c.hidden.clone().unwrap_or_default(),
            },
            layers: c.layers.as_deref(),
            augment: c.augment.as_deref().filter(|a| *a != "none"),
            activation: c.activation().name(),
            optimizer: optimizer_name(optimizer),
            learning_rate: self.base_lr,
            momentum: (optimizer == OptimizerKind::Sgd)
                .then_some(c.momentum)
                .flatten(),
            seed: tc.seed,
            threads: tc.threads,
            parameters: self.model.params().count(),
            schedule: tc.schedule.name(),
            warmup: tc.warmup,
            weight_decay: c.weight_decay.unwrap_or_default(),
            dropout: c.dropout.unwrap_or_default(),
            batch_norm: c.batch_norm,
            early_stopping: c.early_stopping.map(|p| p as u32),
            stopped_early: self.report.stopped_early,
            diverged: self.report.diverged.is_some(),
            kept_epoch: self.report.kept_epoch,
            status: self.status(),
            epochs: &self.report.history,
            diagnosis: outcome
                .diagnosis
                .as_ref()
                .map(|d| hints::DiagnosisJson::new(d, outcome.linear_note.as_ref())),
            final_metrics: self.final_metrics(outcome),
            baselines: super::baselines::to_json(
                &outcome.baselines,
                regression,
                self.data.val.is_some(),
            ),
            train_seconds: self.report.history.iter().map(|m| m.seconds).sum(),
            inference_seconds: outcome.inference_seconds,
        };
        let json = serde_json::to_string_pretty(&metrics)?;
        nabla::io::write_atomic(path, (json + "\n").as_bytes())
            .context("writing the metrics file")?;
        Ok(())
    }

    /// The run folder: config.toml, metrics.csv, history.json and the plots.
    fn save_run_folder(&self, dir: &Path, outcome: &Outcome) -> Result<()> {
        let history = &self.report.history;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let record = History {
            name,
            dataset: self.data.train.name().to_string(),
            classes: self.spec.classes.clone(),
            best_epoch: best_epoch(history).map(|b| b.epoch),
            early_stop_epoch: self.report.stopped_early.then_some(history.len()),
            status: Some(self.status().to_string()),
            // Beyond a readable size the matrix is left out (`nabla evaluate` prints it).
            confusion_matrix: match (self.spec.task, splits(self.data).test) {
                _ if self.spec.classes.len() > plot::MAX_PLOTTED_CLASSES => Vec::new(),
                (Task::Classification, Some(test)) => confusion_matrix(self.model, test)?,
                _ => Vec::new(),
            },
            epochs: history.clone(),
            baselines: Some(super::baselines::to_json(
                &outcome.baselines,
                self.spec.task == Task::Regression,
                self.data.val.is_some(),
            )),
            diverged: self.report.diverged.is_some(),
            schedule: Some(schedule_name(self.config)),
        };
        let config = super::Cli::command()
            .find_subcommand("train")
            .map(|train| super::config::to_toml(train, self.config))
            .transpose()?
            .unwrap_or_default();
        save_run(dir, config, &record)?;
        if self.config.output.quiet {
            return Ok(());
        }
        let mut out = super::Stdout::lock();
        writeln!(
            out,
            "{}",
            progress::fit_terminal(format!(
                "run saved to {}{}: model.safetensors, config.toml, metrics.csv, history.json, {}events.out.tfevents.* (TensorBoard)",
                dir.display(),
                if record.diverged {
                    " (marked diverged)"
                } else {
                    ""
                },
                // No epoch finished: no curve to draw, so no plots.
                match record.epochs.is_empty() {
                    true => String::new(),
                    false => format!(
                        "plots ({}; .png, .svg), ",
                        plot::plot_names(&record).join(", ")
                    ),
                }
            ))
        )?;
        writeln!(
            out,
            "  repeat it: nabla train --config {}",
            dir.join("config.toml").display()
        )?;
        Ok(())
    }
}

/// The schedule as the lr plot's title names it: `cosine schedule`, `constant rate after 2
/// warm-up epochs`.
fn schedule_name(config: &RunConfig) -> String {
    let kind = config.schedule.unwrap_or_default();
    let mut name = match kind {
        ScheduleKind::Constant => "constant rate".to_string(),
        _ => format!("{} schedule", config.schedule().name()),
    };
    let warmup = config.warmup.unwrap_or_default();
    if warmup > 0 {
        name += &format!(" after {}", plural(warmup, "warm-up epoch"));
    }
    name
}

/// `1 epoch`, `2 epochs`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The optimizer's name as the metrics and model files have always written it.
fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Adam => "adam",
        OptimizerKind::Adamw => "adamw",
        OptimizerKind::Rmsprop => "rmsprop",
        OptimizerKind::Adagrad => "adagrad",
    }
}

/// The epoch with the lowest validation loss (the epoch early stopping keeps); `None` without
/// a validation set: the test set never chooses.
fn best_epoch(history: &[EpochMetrics]) -> Option<&EpochMetrics> {
    history
        .iter()
        .filter_map(|m| m.val_loss.filter(|l| l.is_finite()).map(|l| (m, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(m, _)| m)
}

/// Writes config.toml, metrics.csv, history.json and the plots into `dir`.
fn save_run(dir: &Path, config: String, record: &History) -> Result<()> {
    let io = |path: &Path, e| anyhow::Error::from(nabla::NablaError::io(path, e));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let write = |name: &str, text: String| -> Result<()> {
        Ok(nabla::io::write_atomic(&dir.join(name), text.as_bytes())?)
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
            opt(m.test_loss),
            opt(m.test_accuracy),
            opt(m.test_r2),
            m.learning_rate,
            m.seconds
        );
    }
    write("metrics.csv", csv)?;
    write("history.json", serde_json::to_string_pretty(record)? + "\n")?;
    if !record.epochs.is_empty() {
        plot::draw_run(dir, record).context("drawing the plots")?;
    }
    Ok(())
}

/// The current UTC time as `2026-11-27T21-50-02` (safe in file names).
pub fn utc_timestamp() -> String {
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
