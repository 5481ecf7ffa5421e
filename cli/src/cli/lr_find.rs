//! `nabla lr-find`: the learning-rate range test (Smith, 2017). Trains from fresh weights for a
//! few hundred steps while the learning rate grows exponentially from `--start-lr` to
//! `--end-lr`, records the (smoothed) training loss at each rate, and suggests a rate a decade
//! below the one with the lowest loss, where the loss still falls steadily.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use nabla::config::RunData;
use nabla::rng::{self, Stream};
use nabla::train::{TrainConfig, Trainer};

use super::parse_positive;
use super::train::TrainArgs;

/// Flags of `nabla lr-find`: the training flags, plus the range to sweep.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nabla lr-find\n  nabla lr-find --data ../shared/datasets/mnist --optimizer sgd --steps 300"
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

/// Runs the sweep and returns its points (stopping early once the loss explodes).
pub fn sweep(args: &LrFindArgs) -> Result<Vec<Point>> {
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
    let (_, mut model) = config.network(&train, image)?;
    let mut optimizer = config.optimizer()?;
    let TrainConfig {
        batch_size: batch,
        seed,
        threads,
        ..
    } = config.train_config();
    let mut trainer = Trainer::new(TrainConfig::new(1, batch, seed, threads))?;
    let steps = args.steps as usize;
    let ratio = (args.end_lr / args.start_lr).powf(1.0 / (steps - 1) as f64);
    let mut order: Vec<usize> = Vec::new();
    let mut pos = 0;
    let mut epoch = 0u64;
    let (mut avg, mut best) = (0.0f64, f64::INFINITY);
    let mut points = Vec::with_capacity(steps);
    for i in 0..steps {
        if pos >= order.len() {
            order = (0..train.len()).collect();
            let mut r = rng::sub_stream(seed, Stream::Shuffle, 1_000_000 + epoch);
            rng::shuffle(&mut r, &mut order);
            pos = 0;
            epoch += 1;
        }
        let end = (pos + batch).min(order.len());
        let lr = args.start_lr * ratio.powi(i as i32);
        optimizer.set_learning_rate(lr);
        let stats = trainer.step(&mut model, &mut optimizer, &train, &order[pos..end])?;
        pos = end;
        if !stats.loss.is_finite() || !stats.finite_gradient {
            break;
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
            break;
        }
    }
    Ok(points)
}

/// The suggested rate: a tenth of the rate with the lowest smoothed loss.
pub fn suggest(points: &[Point]) -> Option<f64> {
    points
        .iter()
        .min_by(|a, b| a.smoothed.total_cmp(&b.smoothed))
        .map(|p| p.lr / 10.0)
}

/// Runs `nabla lr-find`.
pub fn run(args: LrFindArgs) -> Result<()> {
    for (given, flag) in [
        (args.train.save.is_some(), "--save"),
        (args.train.checkpoint_dir.is_some(), "--checkpoint-dir"),
        (args.train.resume.is_some(), "--resume"),
    ] {
        if given {
            anyhow::bail!(nabla::NablaError::Usage(format!(
                "{flag} applies to nabla train, not lr-find (which keeps no model)"
            )));
        }
    }
    let points = sweep(&args)?;
    let mut out = std::io::stdout().lock();
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
    match suggest(&points) {
        Some(lr) => writeln!(
            out,
            "suggested learning rate: {lr:.2e} (a tenth of {:.2e}, where the smoothed loss was lowest); try: nabla train --lr {lr:.2e}",
            lr * 10.0
        )?,
        None => writeln!(
            out,
            "no suggestion: the loss was not finite from the first step; lower --start-lr"
        )?,
    }
    Ok(())
}
