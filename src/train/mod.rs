//! Training: mini-batch stochastic gradient descent over epochs, evaluation, and the per-epoch
//! history.
//!
//! One epoch shuffles the training samples (a fresh seeded order per epoch) and walks them in
//! mini-batches of `batch_size`; the last, smaller batch is used, not dropped, so an epoch is
//! `ceil(n / batch_size)` iterations. Each iteration:
//!
//! 1. splits the mini-batch into micro-batches of [`micro_batch_rows`] rows (64, or half the
//!    batch for batches under 128, so both cores work on small batches), and the micro-batches
//!    into at most [`GROUPS`] gradient groups of [`micro_batches_per_group`] (1 up to batch
//!    256, 2 at batch 512);
//! 2. each group (on its own core when there are several threads) runs its micro-batches in
//!    order, reusing one tape's buffers: gathers the samples, records the forward pass and the
//!    loss `(rows/batch)·CE`, and runs backward into the group's gradient buffers, the first
//!    micro-batch overwriting them, the next ones adding to them (the weight gradients through
//!    the GEMM's accumulate mode, no zero-fill);
//! 3. the group gradients are summed in a fixed order, giving `∂L/∂θ` of the mean loss over
//!    the whole mini-batch;
//! 4. the optimizer updates every parameter: `W ← W − lr·∂L/∂W` (plus momentum, ...), summing
//!    the group gradients chunk by chunk as it updates.
//!
//! The micro-batch size and the groups depend on the batch size only, never on the thread
//! count or the ranks of a distributed run, and every order of summation is fixed, so 1 and 2
//! threads (and any number of ranks) give bit-identical weights. A step runs with subnormal
//! floats flushed to zero (see [`crate::simd::ftz`]).

pub mod baseline;
pub mod checkpoint;
mod chunk;
mod combine;
pub mod diagnosis;
mod fit;
mod overlap;
mod shard;

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

/// Most gradient groups a mini-batch is cut into (see [`micro_batches_per_group`]): enough for
/// 2 ranks × 2 threads, or 4 threads, to each have a group of their own.
pub const GROUPS: usize = 4;

/// Micro-batches per gradient group of a mini-batch of `batch` rows: the micro-batches are
/// cut, in order, into at most [`GROUPS`] groups of this many (the last may hold fewer). A
/// group's micro-batches run one after another on one thread and backpropagate into the
/// group's one gradient buffer (the weight gradients through the GEMM's accumulate mode, no
/// zero-fill), so a step writes and re-reads one buffer per group instead of one per
/// micro-batch. Up to [`GROUPS`] micro-batches each is its own group (batches up to 256 rows:
/// every micro-batch can run on its own core); beyond, `ceil(k / GROUPS)` micro-batches share
/// one (batch 512: 4 groups of 2). A function of the batch size only, never of the thread
/// count or of the ranks of a distributed run (which share whole groups, see
/// [`rank_share`]), so the arithmetic of a step is the same for every `--threads` and every
/// number of ranks.
pub fn micro_batches_per_group(batch: usize) -> usize {
    micro_batches(batch).div_ceil(GROUPS).max(1)
}

/// Gradient groups of a mini-batch of `batch` rows (see [`micro_batches_per_group`]).
pub fn groups(batch: usize) -> usize {
    micro_batches(batch).div_ceil(micro_batches_per_group(batch))
}

/// The micro-batches `rank` of `size` ranks computes of a mini-batch of `batch` rows: the
/// micro-batches of its share of whole groups (see [`crate::dist::share`]).
pub fn rank_share(batch: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let (k, per) = (micro_batches(batch), micro_batches_per_group(batch));
    let g = crate::dist::share(groups(batch), rank, size);
    (g.start * per).min(k)..(g.end * per).min(k)
}

/// Rows per evaluation chunk at most (fixed, so results never depend on the thread count;
/// wide networks use fewer, see [`eval_chunk_rows`]).
pub const EVAL_CHUNK: usize = 1000;

/// Iterations in one epoch: `ceil(samples / batch_size)`.
pub fn iterations_per_epoch(samples: usize, batch_size: usize) -> usize {
    samples.div_ceil(batch_size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_fixed_by_the_batch_and_ranks_get_whole_groups() {
        // (batch, micro-batches, per group, groups)
        for (batch, k, per, g) in [
            (1, 1, 1, 1),
            (32, 2, 1, 2),
            (128, 2, 1, 2),
            (256, 4, 1, 4),
            (300, 5, 2, 3),
            (512, 8, 2, 4),
            (1000, 16, 4, 4),
        ] {
            assert_eq!(micro_batches(batch), k, "{batch}");
            assert_eq!(micro_batches_per_group(batch), per, "{batch}");
            assert_eq!(groups(batch), g, "{batch}");
            for size in 1..=5 {
                // The ranks' shares are contiguous, cover every micro-batch, and start on a
                // group boundary.
                let mut next = 0;
                for rank in 0..size {
                    let r = rank_share(batch, rank, size);
                    assert_eq!(r.start, next, "{batch} {rank}/{size}");
                    assert!(r.is_empty() || r.start.is_multiple_of(per));
                    next = r.end.max(next);
                }
                assert_eq!(next, k, "{batch} over {size} ranks");
            }
        }
    }
}
