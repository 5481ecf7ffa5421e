//! One step's micro-batch results, combined across the ranks of a distributed run in the order
//! one process combines them (see [`crate::dist`]): the loss sum and correct count and the
//! batch-norm running statistics, reduced along the chain of ranks `0 → 1 → … → N − 1` and
//! broadcast back along the ring `N − 1 → 0 → … → N − 2`, and the gradient sum, handed to
//! [`Reducer`] as each parameter's ordered terms with every rank's term count (it picks the
//! direct reduce-scatter + all-gather or the chain).

use std::sync::atomic::{AtomicBool, Ordering};

use super::fit::{StepStats, apply};
use crate::autograd::Grads;
use crate::data::Dataset;
use crate::dist::{Collective, Reducer, broadcast, share};
use crate::error::NablaError;
use crate::loss::Loss;
use crate::nn::{BatchStats, Buffers, Dtype, Module, Network};
use crate::optim::Optimizer;

/// What this rank's micro-batches of one step produced.
pub(crate) struct Local<'a> {
    /// Each micro-batch's summed loss and count of correct answers, in order.
    pub results: &'a [(f64, usize)],
    /// Each micro-batch's batch-norm statistics, in order.
    pub stats: &'a [&'a BatchStats],
    /// Each gradient group's gradients (the sum of its micro-batches'), in order.
    pub grads: &'a [Grads],
}

/// The step's totals, the same on every rank.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Totals {
    /// Sum of every micro-batch's summed loss, in micro-batch order.
    pub loss_sum: f64,
    /// Samples classified correctly.
    pub correct: usize,
}

/// Combines the loss sums and correct counts of every rank.
pub(crate) fn totals(group: &mut dyn Collective, local: &Local) -> Result<Totals, NablaError> {
    let (rank, size) = (group.rank(), group.size());
    // `Sum for f64` starts from -0.0 (the exact identity); so does the chain.
    let mut h = [-0.0f64, 0.0];
    if rank > 0 {
        group.receive_f64(rank - 1, &mut h)?;
    }
    for &(loss, correct) in local.results {
        h[0] += loss;
        h[1] += correct as f64;
    }
    if rank + 1 < size {
        group.send_f64(rank + 1, &h)?;
    }
    broadcast_f64(group, &mut h)?;
    Ok(Totals {
        loss_sum: h[0],
        correct: h[1] as usize,
    })
}

/// Folds every rank's batch statistics into the running statistics of `model`, in order.
pub(crate) fn fold_stats<M: Module>(
    group: &mut dyn Collective,
    model: &mut Network<M>,
    local: &Local,
) -> Result<(), NablaError> {
    let (rank, size) = (group.rank(), group.size());
    let buffers = model.buffers_mut();
    if !buffers.ids().any(|id| buffers.dtype(id) == Dtype::F32) {
        return Ok(());
    }
    if rank > 0 {
        each_f32(buffers, |b| group.receive(rank - 1, b))?;
    }
    for stats in local.stats {
        stats.fold_into(buffers);
    }
    if rank + 1 < size {
        each_f32(buffers, |b| group.send(rank + 1, b))?;
    }
    each_f32(buffers, |b| broadcast(group, b))
}

/// Calls `f` on every `f32` buffer's values, in buffer order.
fn each_f32(
    buffers: &mut Buffers,
    mut f: impl FnMut(&mut [f32]) -> Result<(), NablaError>,
) -> Result<(), NablaError> {
    let ids: Vec<_> = buffers
        .ids()
        .filter(|&id| buffers.dtype(id) == Dtype::F32)
        .collect();
    for id in ids {
        f(buffers.get_mut(id).data_mut())?;
    }
    Ok(())
}

/// A distributed step's summed gradient and the buffers its reduction reuses.
pub(crate) struct Summed {
    pub(super) grads: Grads,
    pub(super) reducer: Reducer,
}

/// Writes into `sum` the sum over every rank's gradient terms, its groups' gradients
/// (`counts[r]` of them on rank `r`, `local.grads` here), added in order exactly as
/// [`crate::optim::Optimizer::step_sum`] adds them in one process.
pub(crate) fn sum_gradients(
    group: &mut dyn Collective,
    local: &Local,
    counts: &[usize],
    sum: &mut Summed,
) -> Result<(), NablaError> {
    let mut mine: Vec<&[f32]> = Vec::with_capacity(local.grads.len());
    for (p, out) in sum.grads.tensors_mut().iter_mut().enumerate() {
        mine.clear();
        mine.extend(local.grads.iter().map(|g| g.tensors()[p].data()));
        sum.reducer.sum(group, &mine, counts, out.data_mut())?;
    }
    Ok(())
}

/// How a distributed step ends: by the sharded step (ranks sharing memory), with the gradient
/// already summed (overlapped with backward), and the flag that asks the run to stop.
struct Finish<'s> {
    sharded: bool,
    summed: bool,
    stop: Option<&'s AtomicBool>,
}

/// [`crate::dist::broadcast`] for a few `f64` values.
fn broadcast_f64(group: &mut dyn Collective, data: &mut [f64]) -> Result<(), NablaError> {
    let (rank, size) = (group.rank(), group.size());
    let root = size - 1;
    if rank != root {
        group.receive_f64(if rank == 0 { root } else { rank - 1 }, data)?;
    }
    let next = if rank == root { 0 } else { rank + 1 };
    if next != root {
        group.send_f64(next, data)?;
    }
    Ok(())
}

impl super::Trainer {
    /// [`super::Trainer::step_with`] as one rank of a distributed run: this rank's share of
    /// the micro-batches, then the results of every rank combined in the one-process order.
    pub(super) fn step_distributed<M: Module>(
        &mut self,
        (model, optimizer): (&mut Network<M>, &mut Optimizer),
        (data, loss): (&Dataset, Loss),
        batch: &[usize],
        stop: Option<&AtomicBool>,
    ) -> Result<StepStats, NablaError> {
        let Some(mut group) = self.group.take() else {
            return Err(NablaError::Distributed("not a distributed trainer".into()));
        };
        self.stop_agreed = None;
        let result = self.combined_step(&mut *group, (model, optimizer), (data, loss), batch, stop);
        self.group = Some(group);
        result
    }

    fn combined_step<M: Module>(
        &mut self,
        group: &mut dyn Collective,
        (model, optimizer): (&mut Network<M>, &mut Optimizer),
        (data, loss): (&Dataset, Loss),
        batch: &[usize],
        stop: Option<&AtomicBool>,
    ) -> Result<StepStats, NablaError> {
        let (rank, size) = (group.rank(), group.size());
        let (mine, n) = self.share_of(batch.len(), rank, size, model);
        let groups = mine.len();
        // Every rank's term count: its whole gradient groups (see `train::rank_share`).
        let all = super::groups(batch.len());
        let counts: Vec<usize> = (0..size).map(|r| share(all, r, size).len()).collect();
        // Clipping needs the whole gradient's norm on every rank: the summed gradient then.
        let sharded = self.config.clip_grad_norm.is_none() && group.shared().is_some();
        // The sharded step sums into no buffer of its own: no gradient-sized one for it.
        let mut sum = (self.sum.take())
            .filter(|s| sharded || !s.grads.tensors().is_empty())
            .unwrap_or_else(|| Summed {
                grads: if sharded {
                    Grads::default()
                } else {
                    Grads::zeros_like(model.params())
                },
                reducer: Reducer::new(),
            });
        let overlap = self.overlap && !sharded;
        let computed = if overlap {
            let work = (data, loss);
            self.overlapped_gradients(group, model, work, batch, mine, &counts, &mut sum)
        } else {
            self.micro_batches(model, data, loss, batch, mine)
        };
        let result = computed.and_then(|()| {
            let how = Finish {
                sharded,
                summed: overlap,
                stop,
            };
            let sizes = (batch.len(), n, groups);
            self.finish_step(group, (model, optimizer), sizes, (&counts, &mut sum), how)
        });
        self.sum = Some(sum);
        result
    }

    /// The rest of a distributed step once this rank's micro-batches ran (`rows` in the
    /// batch, `n` micro-batches and `groups` gradient groups here): the totals, the running
    /// statistics and the update, by the sharded step or from the gradient sum (made here
    /// unless `how.summed` already).
    fn finish_step<M: Module>(
        &mut self,
        group: &mut dyn Collective,
        (model, optimizer): (&mut Network<M>, &mut Optimizer),
        (rows, n, groups): (usize, usize, usize),
        (counts, sum): (&[usize], &mut Summed),
        how: Finish,
    ) -> Result<StepStats, NablaError> {
        let rank = group.rank();
        let results: Vec<(f64, usize)> = (self.outs[..n].iter())
            .map(|o| (o.loss_sum, o.correct))
            .collect();
        let shared_totals = match group.shared().filter(|_| how.sharded) {
            Some(shared) => {
                let at = (model as &Network<M>, optimizer.state_width());
                Some(self.shared_begin(shared, (rank, counts), at, (&results, rows))?)
            }
            None => None,
        };
        let stats: Vec<&BatchStats> = self.outs[..n].iter().map(|o| &o.stats).collect();
        let local = Local {
            results: &results,
            stats: &stats,
            grads: &self.grads[..groups],
        };
        let t = match shared_totals {
            Some((loss_sum, correct)) => Totals { loss_sum, correct },
            None => totals(group, &local)?,
        };
        let mut step = StepStats {
            loss: t.loss_sum / rows as f64,
            correct: t.correct,
            finite_gradient: true,
        };
        if !step.loss.is_finite() {
            // Every rank skips the update; none writes its segment before all have read.
            if let Some(shared) = group.shared().filter(|_| how.sharded) {
                shared.barrier()?;
            }
            return Ok(step);
        }
        fold_stats(group, model, &local)?;
        if let Some(shared) = group.shared().filter(|_| how.sharded) {
            let here = how.stop.is_some_and(|s| s.load(Ordering::Relaxed));
            let (finite, stop) =
                self.shared_finish(shared, (rank, counts), (model, optimizer), here)?;
            self.stop_agreed = how.stop.map(|_| stop);
            step.finite_gradient = finite;
            return Ok(step);
        }
        if !how.summed {
            sum_gradients(group, &local, counts, sum)?;
        }
        step.finite_gradient = apply(
            &self.config,
            &self.pool,
            model,
            optimizer,
            std::slice::from_ref(&sum.grads),
        );
        Ok(step)
    }
}
