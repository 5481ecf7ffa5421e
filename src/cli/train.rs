//! `nabla train`: load data, split it, build the network from flags, train, report.
//! On a terminal each epoch shows a progress bar; every run is saved to a run folder.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{ArgMatches, Args, CommandFactory, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use nabla::data::{self, Dataset};
use nabla::kernels::activation::Activation;
use nabla::nn::{ModelSpec, Sequential};
use nabla::optim::{Adam, Optimizer, Sgd};
use nabla::train::{
    EpochMetrics, IterationStats, TrainConfig, Trainer, confusion_matrix, iterations_per_epoch,
};

use super::plot::{self, History};

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
    // A flag given twice takes the last value: --config FILE's settings come first, so flags
    // on the command line override them.
    args_override_self = true,
    after_help = "Every run is saved to runs/<name or UTC time>/: config.toml (repeat the run with\n\
`nabla train --config runs/<run>/config.toml`), metrics.csv, history.json and plots\n\
(learning_curves, confusion_matrix, lr_schedule; .png and .svg).\n\n\
Examples:\n  nabla train\n  nabla train --epochs 5 --name first-try\n  nabla train --data ../shared/datasets/mnist --hidden 256,128 --optimizer sgd --lr 0.05 --momentum 0.9 --batch-size 128 --epochs 10 --seed 1\n  nabla train --config runs/first-try/config.toml --epochs 10\n  nabla train --activation sigmoid --quiet --no-save --metrics-out metrics.json"
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
    pub lr: Option<f32>,

    /// Momentum for sgd, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = parse_momentum)]
    pub momentum: f32,

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
    learning_rate: f32,
    momentum: Option<f32>,
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
    let history = trainer.fit_with(
        &mut model,
        &mut optimizer,
        &train,
        &test,
        |it| progress.borrow_mut().iteration(it),
        |m| {
            progress.borrow_mut().epoch(&format!(
                "epoch {:>width$}/{epochs}  train loss {:.4}  train acc {:.4}  test loss {:.4}  test acc {:.4}  {:.2}s",
                m.epoch,
                m.train_loss,
                m.train_accuracy,
                m.test_loss,
                m.test_accuracy,
                m.seconds,
            ));
        },
    );
    if let Some(bar) = progress.borrow_mut().bar.take() {
        bar.abandon();
    }
    let history = history?;
    let mut out = std::io::stdout().lock();
    let final_eval = match history.last() {
        Some(m) => (m.test_accuracy, m.test_loss),
        None => {
            let e = trainer.evaluate(&model, &test)?;
            (e.accuracy, e.loss)
        }
    };
    let train_seconds: f64 = history.iter().map(|m| m.seconds).sum();
    let best = best_epoch(&history);
    let best_note = best
        .map(|b| {
            format!(
                " (best epoch {}: test loss {:.4}, test accuracy {:.4})",
                b.epoch, b.test_loss, b.test_accuracy
            )
        })
        .unwrap_or_default();
    writeln!(
        out,
        "done: test accuracy {:.4}, test loss {:.4}, {:.2}s training{best_note}",
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

    if let Some(dir) = run_dir {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let record = History {
            name,
            dataset: train.name().to_string(),
            classes: spec.classes.clone(),
            best_epoch: best.map(|b| b.epoch),
            early_stop_epoch: None,
            confusion_matrix: confusion_matrix(&model, &test)?,
            epochs: history,
        };
        let config = super::Cli::command()
            .find_subcommand("train")
            .map(|train| {
                super::config::to_toml(
                    train,
                    matches,
                    &[
                        ("lr", optimizer.learning_rate().to_string()),
                        ("epochs", epochs.to_string()),
                    ],
                )
            })
            .unwrap_or_default();
        save_run(&dir, config, &record)?;
        writeln!(
            out,
            "run saved to {}: config.toml, metrics.csv, history.json, plots (learning_curves, confusion_matrix, lr_schedule; .png, .svg)",
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

/// The epoch with the lowest test loss (what early stopping would keep).
fn best_epoch(history: &[EpochMetrics]) -> Option<&EpochMetrics> {
    history
        .iter()
        .filter(|m| m.test_loss.is_finite())
        .min_by(|a, b| a.test_loss.total_cmp(&b.test_loss))
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
        "epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,seconds\n",
    );
    for m in &record.epochs {
        csv += &format!(
            "{},{},{},{},{},{},{}\n",
            m.epoch,
            m.train_loss,
            m.train_accuracy,
            m.test_loss,
            m.test_accuracy,
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

/// `64 → 256 (relu) → 128 (relu) → 10 (softmax)`.
fn describe(spec: &ModelSpec, activation: Activation) -> String {
    let mut s = spec.inputs.to_string();
    for h in spec.hidden() {
        s += &format!(" → {h} ({})", activation.name());
    }
    s + &format!(" → {} (softmax)", spec.outputs())
}
