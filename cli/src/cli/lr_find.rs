//! `nabla lr-find`: the learning-rate range test (Smith, 2017). Trains from fresh weights for a
//! few hundred steps while the learning rate grows exponentially from `--start-lr` to
//! `--end-lr`, records the (smoothed) training loss at each rate, and suggests a rate a decade
//! below the one with the lowest loss, where the loss still falls steadily.
//!
//! It takes `nabla train`'s data, network and optimizer flags; the others (epochs, schedules,
//! run folders, ...) are hidden from its help and refused when given, never ignored. The
//! suggestion is a `nabla train` command line with every flag the user gave plus `--lr`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args};

use nabla::config::RunData;
use nabla::rng::{self, Stream};
use nabla::train::{TrainConfig, Trainer};

use super::parse_positive;
use super::train::TrainArgs;

/// The flags (clap ids) the sweep uses: data, network, optimizer, batches, seed, threads, and
/// its own. Every other `nabla train` flag is hidden from `nabla lr-find --help` and refused.
pub const USED: &[&str] = &[
    "data",
    "test_data",
    "target",
    "features",
    "drop",
    "delimiter",
    "task",
    "impute",
    "scale",
    "hidden",
    // The CNN issue's layer list, once it exists, is part of the network too.
    "layers",
    "activation",
    "optimizer",
    "momentum",
    "nesterov",
    "weight_decay",
    "batch_size",
    "dropout",
    "batch_norm",
    "clip_grad_norm",
    "init",
    "test_split",
    "val_split",
    "seed",
    "threads",
    "metrics_out",
    "steps",
    "start_lr",
    "end_lr",
    "help",
    "version",
];

/// Flags of the sweep itself, left out of the suggested `nabla train` command.
const SWEEP_ONLY: [&str; 4] = ["steps", "start_lr", "end_lr", "metrics_out"];

fn hide_unused(arg: Arg) -> Arg {
    let used = USED.contains(&arg.get_id().as_str());
    arg.hide(!used)
}

/// Flags of `nabla lr-find`: the training flags it uses, plus the range to sweep.
#[derive(Debug, Args)]
#[command(
    mut_args = hide_unused,
    after_help = "The suggestion is a `nabla train` command with the data, network and optimizer flags given here.\n\n\
Examples:\n  nabla lr-find\n  nabla lr-find --data data/iris.csv --optimizer sgd\n  nabla lr-find --data ../shared/datasets/mnist --optimizer sgd --steps 300 --metrics-out sweep.json"
)]
pub struct LrFindArgs {
    /// Data, network and optimizer, as for `nabla train`.
    #[command(flatten)]
    pub train: TrainArgs,

    /// Training steps in the sweep.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub steps: u32,

    /// Learning rate of the first step.
    #[arg(long, default_value_t = 1e-6, value_parser = parse_positive)]
    pub start_lr: f64,

    /// Learning rate of the last step.
    #[arg(long, default_value_t = 1.0, value_parser = parse_positive)]
    pub end_lr: f64,
}

/// One point of the sweep.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Point {
    /// The learning rate of the step.
    pub lr: f64,
    /// The mini-batch loss before the step.
    pub loss: f64,
    /// Exponentially smoothed loss (β = 0.9, bias-corrected).
    pub smoothed: f64,
}

/// Why the sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// It reached `--end-lr` after `--steps` steps.
    Finished,
    /// The smoothed loss rose above 4× its lowest value (at this rate).
    Diverged,
    /// A loss or gradient was NaN or infinite (at this rate).
    NotFinite,
}

/// A sweep: its points and why it ended, at which rate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sweep {
    /// One point per step taken.
    pub points: Vec<Point>,
    /// Why it ended.
    pub stop: Stop,
    /// The rate of the step it ended at.
    pub stop_lr: f64,
}

impl Sweep {
    /// Why the sweep ended, in a sentence.
    pub fn reason(&self, steps: u32) -> String {
        let n = self.points.len();
        match self.stop {
            Stop::Finished => format!(
                "the sweep ran all {steps} steps, up to lr {:.3e}",
                self.stop_lr
            ),
            Stop::Diverged => format!(
                "the sweep stopped after {n} of {steps} steps, at lr {:.3e}: the smoothed loss rose above 4× its lowest value (it diverges beyond here)",
                self.stop_lr
            ),
            Stop::NotFinite => format!(
                "the sweep stopped after {n} of {steps} steps, at lr {:.3e}: the loss or a gradient was not finite",
                self.stop_lr
            ),
        }
    }
}

/// Runs the sweep and returns its points (stopping early once the loss explodes).
pub fn sweep(args: &LrFindArgs) -> Result<Sweep> {
    if args.end_lr <= args.start_lr {
        anyhow::bail!(nabla::NablaError::Usage(format!(
            "--end-lr ({}) must be above --start-lr ({})",
            args.end_lr, args.start_lr
        )));
    }
    // The sweep trains on the whole training set, whatever --limit-train says, and chooses
    // no epoch, so the small-data rule holds out no validation rows.
    let config = args.train.config();
    let config = nabla::config::RunConfig {
        limit_train: None,
        val_split: config.val_split.or(Some(0.0)),
        ..config
    };
    let RunData { train, image, .. } = config.load_data()?;
    let config = config.resolve(train.len());
    super::memory::check_network(&config, &train, image, false)?;
    let (_, mut model) = config.network(&train, image)?;
    let mut optimizer = config.optimizer()?;
    let tc = config.train_config();
    let (batch, seed) = (tc.batch_size, tc.seed);
    let mut one_step = TrainConfig::new(1, batch, seed, tc.threads);
    one_step.clip_grad_norm = tc.clip_grad_norm;
    one_step.loss = tc.loss;
    let mut trainer = Trainer::new(one_step)?;
    let steps = args.steps as usize;
    let ratio = (args.end_lr / args.start_lr).powf(1.0 / (steps - 1) as f64);
    let mut order: Vec<usize> = Vec::new();
    let mut pos = 0;
    let mut epoch = 0u64;
    let (mut avg, mut best) = (0.0f64, f64::INFINITY);
    let mut points = Vec::with_capacity(steps);
    let mut lr = args.start_lr;
    for i in 0..steps {
        if pos >= order.len() {
            order = (0..train.len()).collect();
            let mut r = rng::sub_stream(seed, Stream::Shuffle, 1_000_000 + epoch);
            rng::shuffle(&mut r, &mut order);
            pos = 0;
            epoch += 1;
        }
        let end = (pos + batch).min(order.len());
        lr = args.start_lr * ratio.powi(i as i32);
        optimizer.set_learning_rate(lr);
        let stats = trainer.step(&mut model, &mut optimizer, &train, &order[pos..end])?;
        pos = end;
        if !stats.loss.is_finite() || !stats.finite_gradient {
            return Ok(Sweep {
                points,
                stop: Stop::NotFinite,
                stop_lr: lr,
            });
        }
        avg = 0.9 * avg + 0.1 * stats.loss;
        let smoothed = avg / (1.0 - 0.9f64.powi(i as i32 + 1));
        points.push(Point {
            lr,
            loss: stats.loss,
            smoothed,
        });
        best = best.min(smoothed);
        if i > 10 && smoothed > 4.0 * best {
            return Ok(Sweep {
                points,
                stop: Stop::Diverged,
                stop_lr: lr,
            });
        }
    }
    Ok(Sweep {
        points,
        stop: Stop::Finished,
        stop_lr: lr,
    })
}

/// The suggested rate: a tenth of the rate with the lowest smoothed loss.
pub fn suggest(points: &[Point]) -> Option<f64> {
    points
        .iter()
        .min_by(|a, b| a.smoothed.total_cmp(&b.smoothed))
        .map(|p| p.lr / 10.0)
}

/// Flags given on the command line that lr-find does not use, refused with the reason.
fn refuse_unused(matches: &ArgMatches) -> Result<()> {
    let Some(command) = super::Cli::command_for("lr-find") else {
        return Ok(());
    };
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if USED.contains(&id) || matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let flag = format!("--{}", id.replace('_', "-"));
        let why = match id {
            "save" | "checkpoint_dir" | "resume" | "name" | "run_dir" | "no_save" => {
                "lr-find keeps no model and writes no run folder".to_string()
            }
            "lr" => "the sweep sets the rate itself, from --start-lr to --end-lr".to_string(),
            "epochs" | "early_stopping" | "limit_train" => {
                "the sweep's length is --steps, over the whole training set".to_string()
            }
            "config" => "lr-find reads no config file: give the flags".to_string(),
            _ => "the sweep does not use it".to_string(),
        };
        anyhow::bail!(nabla::NablaError::Usage(format!(
            "{flag} does not apply to lr-find ({why}); give it to nabla train"
        )));
    }
    Ok(())
}

/// `nabla train` with every flag the user gave lr-find (except the sweep's own) and `--lr`.
pub fn suggested_command(matches: &ArgMatches, lr: f64) -> String {
    let command = super::Cli::command_for("lr-find");
    let mut words = vec!["nabla".to_string(), "train".to_string()];
    let Some(command) = command else {
        return format!("nabla train --lr {lr:.2e}");
    };
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if SWEEP_ONLY.contains(&id)
            || !USED.contains(&id)
            || matches.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        let long = format!("--{}", arg.get_long().unwrap_or(id));
        if !arg.get_action().takes_values() {
            words.push(long);
            continue;
        }
        let values: Vec<String> = matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        words.push(long);
        words.push(shell_word(&values.join(",")));
    }
    words.push("--lr".into());
    words.push(format!("{lr:.2e}"));
    words.join(" ")
}

/// `word` as a shell reads it back: bare when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:=+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Writes the sweep as JSON: the points, why it stopped, the suggestion and its command.
fn write_sweep(path: &Path, sweep: &Sweep, lr: Option<f64>, command: Option<&str>) -> Result<()> {
    let json = serde_json::json!({
        "points": sweep.points,
        "stop": sweep.stop,
        "stop_lr": sweep.stop_lr,
        "suggested_lr": lr,
        "suggested_command": command,
    });
    nabla::io::write_atomic(
        path,
        (serde_json::to_string_pretty(&json)? + "\n").as_bytes(),
    )?;
    Ok(())
}

/// Runs `nabla lr-find`; `matches` are its own (for the flags given on the command line).
pub fn run(args: LrFindArgs, matches: &ArgMatches) -> Result<()> {
    refuse_unused(matches)?;
    // --metrics-out is checked before the sweep: writable, not an input, not another kind.
    if let Some(path) = &args.train.metrics_out {
        let data: Vec<PathBuf> = args
            .train
            .data
            .iter()
            .chain(&args.train.test_data)
            .cloned()
            .collect();
        super::outputs::check_output_file(path, &super::outputs::input_files(&data))?;
        super::outputs::same_kind(path, "--metrics-out", super::outputs::Kind::Json, false)?;
    }
    let sweep = sweep(&args)?;
    let points = &sweep.points;
    let mut out = super::Stdout::lock();
    writeln!(out, "{:>12}  {:>10}  {:>10}", "lr", "loss", "smoothed")?;
    let every = (points.len() / 40).max(1);
    for (i, p) in points.iter().enumerate() {
        if i % every == 0 || i + 1 == points.len() {
            writeln!(
                out,
                "{:>12.3e}  {:>10.4}  {:>10.4}",
                p.lr, p.loss, p.smoothed
            )?;
        }
    }
    writeln!(out, "{}", sweep.reason(args.steps))?;
    let lr = suggest(points);
    let command = lr.map(|lr| suggested_command(matches, lr));
    match (lr, &command) {
        (Some(lr), Some(command)) => writeln!(
            out,
            "suggested learning rate: {lr:.2e} (a tenth of {:.2e}, where the smoothed loss was lowest); try:\n  {command}",
            lr * 10.0
        )?,
        _ => writeln!(
            out,
            "no suggestion: the loss was not finite from the first step; lower --start-lr"
        )?,
    }
    if let Some(path) = &args.train.metrics_out {
        write_sweep(path, &sweep, lr, command.as_deref())?;
        writeln!(out, "sweep written to {}", path.display())?;
    }
    Ok(())
}
