//! Training: mini-batch stochastic gradient descent over epochs, evaluation, and the per-epoch
//! history.
//!
//! One epoch shuffles the training samples (a fresh seeded order per epoch) and walks them in
//! mini-batches of `batch_size`; the last, smaller batch is used, not dropped, so an epoch is
//! `ceil(n / batch_size)` iterations. Each iteration:
//!
//! 1. splits the mini-batch into fixed micro-batches of [`MICRO_BATCH`] rows;
//! 2. each micro-batch (on its own core when there are several threads) gathers its samples,
//!    records the forward pass, the loss `(rows/batch)·CE`, and runs backward into its own
//!    gradient buffers;
//! 3. the micro-batch gradients are summed in a fixed order, giving `∂L/∂θ` of the mean loss
//!    over the whole mini-batch;
//! 4. the optimizer updates every parameter: `W ← W − lr·∂L/∂W` (plus momentum, ...).
//!
//! The micro-batch size never depends on the thread count and the reduction order is fixed,
//! so 1 and 2 threads give bit-identical weights.

pub mod baseline;
pub mod checkpoint;
mod chunk;
mod combine;
pub mod diagnosis;
mod fit;

pub use diagnosis::{Diagnosis, Verdict};
pub use fit::{
    EpochMetrics, Evaluation, Explosion, FitReport, FitState, Hooks, IterationStats,
    RegressionMetrics, Splits, StepStats, TrainConfig, Trainer, evaluate, evaluate_with, lower_lr,
};

pub use chunk::{EVAL_CHUNK_FLOATS, eval_chunk_rows};
mod confusion;
pub use confusion::confusion_matrix;

/// Rows per micro-batch: the unit of parallel work within a mini-batch.
pub const MICRO_BATCH: usize = 64;

/// Rows per evaluation chunk at most (fixed, so results never depend on the thread count;
/// wide networks use fewer, see [`eval_chunk_rows`]).
pub const EVAL_CHUNK: usize = 1000;

/// Iterations in one epoch: `ceil(samples / batch_size)`.
pub fn iterations_per_epoch(samples: usize, batch_size: usize) -> usize {
    samples.div_ceil(batch_size.max(1))
}
