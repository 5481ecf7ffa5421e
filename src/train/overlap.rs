//! A distributed step whose gradient sum overlaps the backward pass (ranks that combine by
//! messages, see [`crate::dist`]): the micro-batches run on the trainer's pool while the calling
//! thread, which alone talks to the other ranks, sums each parameter's gradient across the
//! ranks as soon as every gradient group of this rank has it final — the last layer's while the
//! earlier layers' backward still runs, as PyTorch DDP starts a bucket's all-reduce from its
//! gradient hooks. Each parameter is one bucket, and the buckets are summed in one fixed order
//! on every rank (last parameter first: the order backward finishes them), each exactly as
//! [`crate::dist::Reducer`] sums it, so the result is the same bits as without overlap.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;

use super::Trainer;
use super::combine::Summed;
use crate::data::Dataset;
use crate::dist::Collective;
use crate::error::NablaError;
use crate::loss::Loss;
use crate::nn::{Module, Network};

/// Where one group's gradient of one parameter lives: read by the communicating thread once
/// the group has reported it final (the pool's threads no longer write it then).
#[derive(Clone, Copy)]
struct View {
    at: *const f32,
    len: usize,
}

impl Trainer {
    /// This rank's micro-batches of `batch` (its gradient groups `mine`) on the pool, and
    /// meanwhile on this thread every parameter's gradient summed across the ranks into `sum`
    /// (`counts[r]`: rank `r`'s group count), parameter by parameter as soon as it is final.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn overlapped_gradients<M: Module>(
        &mut self,
        group: &mut dyn Collective,
        model: &Network<M>,
        (data, loss): (&Dataset, Loss),
        batch: &[usize],
        mine: Range<usize>,
        counts: &[usize],
        sum: &mut Summed,
    ) -> Result<(), NablaError> {
        let groups = mine.len();
        let params = model.params().len();
        // The buffers exist (`share_of` made them) and keep their place for the whole step.
        let views: Vec<Vec<View>> = (self.grads[..groups].iter())
            .map(|g| {
                let each = g.tensors().iter();
                each.map(|t| View {
                    at: t.data().as_ptr(),
                    len: t.len(),
                })
                .collect()
            })
            .collect();
        let remaining: Vec<AtomicUsize> = (0..params).map(|_| AtomicUsize::new(groups)).collect();
        let (tell, hear) = channel::<usize>();
        let compute = self.compute(groups);
        let pool = compute.pool;
        let mut computed = Ok(());
        let summed = pool.in_place_scope(|scope| {
            scope.spawn(|_| {
                let tell = tell;
                let ready = |p: usize| {
                    if remaining[p].fetch_sub(1, Ordering::AcqRel) == 1 {
                        // The receiver outlives the scope; a send cannot fail.
                        let _ = tell.send(p);
                    }
                };
                computed = compute.run(model, (data, loss), batch, mine.start, Some(&ready));
                // `tell` is dropped here: the summing thread stops waiting if backward failed.
            });
            let mut heard = vec![groups == 0; params];
            for p in (0..params).rev() {
                while !heard[p] {
                    match hear.recv() {
                        Ok(q) => heard[q] = true,
                        Err(_) => return Ok(()),
                    }
                }
                let terms: Vec<&[f32]> = (views.iter())
                    .map(|v| {
                        // SAFETY: group g's gradient of p is final (all groups reported it, the
                        // Acquire above orders their writes before this read) and no thread
                        // writes it again this step; the buffer lives in `self.grads`, which
                        // nothing resizes before the scope ends.
                        unsafe { std::slice::from_raw_parts(v[p].at, v[p].len) }
                    })
                    .collect();
                let out = sum.grads.tensors_mut()[p].data_mut();
                sum.reducer.sum(group, &terms, counts, out)?;
            }
            Ok(())
        });
        computed?;
        summed
    }
}
