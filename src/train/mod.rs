//! Training: mini-batch stochastic gradient descent over epochs, evaluation, and the per-epoch
//! history.
//!
//! One epoch shuffles the training samples (a fresh seeded order per epoch) and walks them in
//! mini-batches of `batch_size`; the last, smaller batch is used, not dropped, so an epoch is
//! `ceil(n / batch_size)` iterations. Each iteration:
//!
//! 1. splits the mini-batch into micro-batches of [`micro_batch_rows`] rows (64, or half the
//!    batch for batches under 128, so both cores work on small batches);
//! 2. each micro-batch (on its own core when there are several threads) gathers its samples,
//!    records the forward pass, the loss `(rows/batch)·CE`, and runs backward into its own
//!    gradient buffers;
//! 3. the micro-batch gradients are summed in a fixed order, giving `∂L/∂θ` of the mean loss
//!    over the whole mini-batch;
//! 4. the optimizer updates every parameter: `W ← W − lr·∂L/∂W` (plus momentum, ...).
//!
//! The micro-batch size depends on the batch size only, never on the thread count, and the
//! reduction order is fixed, so 1 and 2 threads give bit-identical weights. A step runs with
//! subnormal floats flushed to zero (see [`crate::simd::ftz`]).

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

/// Rows per micro-batch of a large mini-batch: the unit of parallel work within a mini-batch.
pub const MICRO_BATCH: usize = 64;

/// Smallest micro-batch a small mini-batch is cut into.
pub const MIN_MICRO_BATCH: usize = 8;

/// Rows per micro-batch for a mini-batch of `batch` rows: [`MICRO_BATCH`] from 128 rows up;
/// below, half the batch (rounded up, at least [`MIN_MICRO_BATCH`]), so a small batch still
/// gives two cores work. A function of the batch size only, never of the thread count or of
/// the ranks of a distributed run.
pub fn micro_batch_rows(batch: usize) -> usize {
    if batch >= 2 * MICRO_BATCH {
        MICRO_BATCH
    } else {
        batch.div_ceil(2).max(MIN_MICRO_BATCH)
    }
}

/// Micro-batches of a mini-batch of `batch` rows (see [`micro_batch_rows`]).
pub fn micro_batches(batch: usize) -> usize {
    batch.div_ceil(micro_batch_rows(batch))
}

/// Rows per evaluation chunk at most (fixed, so results never depend on the thread count;
/// wide networks use fewer, see [`eval_chunk_rows`]).
pub const EVAL_CHUNK: usize = 1000;

/// Iterations in one epoch: `ceil(samples / batch_size)`.
pub fn iterations_per_epoch(samples: usize, batch_size: usize) -> usize {
    samples.div_ceil(batch_size.max(1))
}
