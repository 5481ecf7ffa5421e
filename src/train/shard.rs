//! The sharded step of a distributed run whose ranks share memory (see [`crate::dist`]):
//! every rank updates only its own chunks of every parameter, reading the gradient terms for
//! them straight from the other ranks' shared segments, then reads the others' updated chunks.
//!
//! A rank's segment holds, from value 0: a header (value 0 is 1 when every chunk this rank
//! updated had a finite gradient, value 1 is 1 when this rank was asked to stop; from value
//! [`RESULTS`], the summed loss and correct count of each of its micro-batches as `f64` bits),
//! the rank's updated chunks of the weights
//! (all parameters one after another, in the flat layout of [`Shard::offsets`]), and its
//! gradient terms in the same layout: rank 0 one, the prefix `(t0 + t1) + …` of its groups'
//! gradients (its only term as it is), any later rank each of its terms. The owner of a chunk
//! sums the terms for it in rank order, `((t0 + t1) + t2) + …`, as one process sums them, and
//! updates it: the same bits as the one-process step, with every element summed and updated
//! once in the whole run instead of once per rank. Chunks are the optimizer's [`CHUNK`]s, so a
//! chunk with a non-finite gradient is skipped whole, as in one process.
//!
//! Each rank's optimizer state is current only for its own chunks; [`Trainer::sync_state`]
//! gathers the others (at the end of every epoch, before checkpoints, and when a run stops).

use std::ops::Range;

use super::Trainer;
use crate::autograd::Grads;
use crate::dist::{SharedMemory, share};
use crate::error::NablaError;
use crate::nn::{Module, Network};
use crate::optim::{CHUNK, Optimizer, Term, add_terms};
use crate::simd;
use crate::tensor::Tensor;

/// Where a rank's micro-batch results start in its header (4 values, two `f64`, each).
const RESULTS: usize = 4;

/// Where every parameter's values sit in a segment, and which chunks each rank updates.
pub(super) struct Shard {
    /// Values before the weights in a segment.
    header: usize,
    /// First value of each parameter in the flat layout.
    offsets: Vec<usize>,
    /// Values of all parameters.
    total: usize,
    /// `owners[r][p]`: the chunks of parameter `p` that rank `r` updates.
    owners: Vec<Vec<Range<usize>>>,
    /// A step was taken since the ranks last shared their optimizer state.
    stale: bool,
}

impl Shard {
    /// The layout for `params` over `size` ranks. Parameter `p`'s chunks are split in
    /// contiguous shares ([`share`]), rank `(p + i) mod size` taking share `i`, so parameters
    /// of one chunk (biases, small layers) spread over the ranks. A batch has at most
    /// `micro_batches` micro-batches.
    fn new(params: &[Tensor], size: usize, micro_batches: usize) -> Self {
        let mut offsets = Vec::with_capacity(params.len());
        let mut total = 0;
        for p in params {
            offsets.push(total);
            total += p.len();
        }
        let owners = (0..size)
            .map(|r| {
                let chunks = params.iter().map(|t| t.len().div_ceil(CHUNK));
                let shares = chunks.enumerate();
                shares
                    .map(|(p, n)| share(n, (r + size - p % size) % size, size))
                    .collect()
            })
            .collect();
        Self {
            header: (RESULTS + 4 * micro_batches).next_multiple_of(16),
            offsets,
            total,
            owners,
            stale: false,
        }
    }

    /// The weights' values in a segment.
    fn weights(&self) -> Range<usize> {
        self.header..self.header + self.total
    }

    /// Where term areas start in a segment (term `t` at `t · total` from there).
    fn terms_at(&self) -> usize {
        self.header + self.total
    }

    /// The elements of parameter `p` (of `len`) in the chunks `chunks`.
    fn elements(chunks: &Range<usize>, len: usize) -> Range<usize> {
        (chunks.start * CHUNK).min(len)..(chunks.end * CHUNK).min(len)
    }
}

/// Terms rank `r` puts in its segment when it holds `count` group gradients.
fn terms_of(r: usize, count: usize) -> usize {
    if r == 0 { count.min(1) } else { count }
}

/// Writes this rank's terms for the chunks other ranks own, in the flat layout: rank 0 the
/// prefix of its `grads` in order (the one-process sum's first additions, as
/// [`crate::optim::Optimizer::step_sum`] forms them), a later rank each of its `grads`. The
/// chunks this rank owns it reads from `grads` itself.
fn write_terms(seg: &mut [f32], shard: &Shard, rank: usize, grads: &[Grads]) {
    let level = simd::level();
    let total = shard.total;
    for (p, &off) in shard.offsets.iter().enumerate() {
        let len = of(&grads[0], p).len();
        let others = (shard.owners.iter().enumerate()).filter(|&(r, _)| r != rank);
        for e in others.map(|(_, o)| Shard::elements(&o[p], len)) {
            let at = |t: usize| t * total + off + e.start..t * total + off + e.end;
            if rank > 0 {
                for (t, g) in grads.iter().enumerate() {
                    seg[at(t)].copy_from_slice(&of(g, p)[e.clone()]);
                }
                continue;
            }
            let out = &mut seg[at(0)];
            match grads {
                [only] => out.copy_from_slice(&of(only, p)[e]),
                [a, b, rest @ ..] => {
                    let rest = rest.iter().map(|g| &of(g, p)[e.clone()]);
                    let first = [&of(a, p)[e.clone()], &of(b, p)[e.clone()]];
                    add_terms(level, first, rest, 1.0, out);
                }
                [] => {}
            }
        }
    }
}

/// Parameter `p`'s values in `g`.
fn of(g: &Grads, p: usize) -> &[f32] {
    g.tensors()[p].data()
}

impl Trainer {
    /// The first half of a sharded step (see the module docs), after this rank computed its
    /// groups' gradients (`self.grads[..counts[rank]]`; `counts[r]` is every rank's group
    /// count) and its micro-batches' `results` (summed loss, correct answers) of a batch of
    /// `rows`: puts both in
    /// its segment, waits for every rank, and returns the step's loss sum and correct count
    /// over every rank's micro-batches, added in micro-batch order as one process adds them.
    pub(super) fn shared_begin<M: Module>(
        &mut self,
        shared: &mut dyn SharedMemory,
        (rank, counts): (usize, &[usize]),
        (model, width): (&Network<M>, usize),
        (results, rows): (&[(f64, usize)], usize),
    ) -> Result<(f64, usize), NablaError> {
        let size = counts.len();
        let params = model.params().tensors();
        let most_micro = super::micro_batches(self.config.batch_size).max(results.len());
        let shard = match self.shard.take() {
            Some(s) if s.header >= RESULTS + 4 * most_micro => s,
            old => Shard {
                stale: old.is_some_and(|s| s.stale),
                ..Shard::new(params, size, most_micro)
            },
        };
        let shard = self.shard.insert(shard);
        let most = (0..size).map(|r| terms_of(r, counts[r])).max().unwrap_or(1);
        shared.reserve(shard.terms_at() + shard.total * most.max(width))?;
        let mine = &self.grads[..counts[rank]];
        let terms = shard.terms_at()..shard.terms_at() + shard.total * terms_of(rank, mine.len());
        if !mine.is_empty() {
            shared.write(terms, &mut |seg| write_terms(seg, shard, rank, mine))?;
        }
        let at = RESULTS..RESULTS + 4 * results.len();
        shared.write(at, &mut |seg| {
            for (out, &(loss, correct)) in seg.chunks_exact_mut(4).zip(results) {
                out[..2].copy_from_slice(&f64_bits(loss));
                out[2..].copy_from_slice(&f64_bits(correct as f64));
            }
        })?;
        shared.barrier()?;
        // `Sum for f64` starts from -0.0 (the exact identity); so does this fold.
        let (mut loss, mut correct) = (-0.0f64, 0.0f64);
        shared.read(0..shard.header, &mut |segs| {
            for (r, seg) in segs.iter().enumerate() {
                let n = super::rank_share(rows, r, size).len();
                for out in seg[RESULTS..].chunks_exact(4).take(n) {
                    loss += from_f64_bits(&out[..2]);
                    correct += from_f64_bits(&out[2..]);
                }
            }
        })?;
        Ok((loss, correct as usize))
    }

    /// The second half of a sharded step: this rank sums the terms for its own chunks straight
    /// from the others' segments and updates them, publishes them with whether their gradient
    /// was finite and whether `stop` is set here, waits for every rank and copies the others'
    /// chunks. Returns (every rank's gradient was finite, some rank was asked to stop).
    pub(super) fn shared_finish<M: Module>(
        &mut self,
        shared: &mut dyn SharedMemory,
        (rank, counts): (usize, &[usize]),
        (model, optimizer): (&mut Network<M>, &mut Optimizer),
        stop: bool,
    ) -> Result<(bool, bool), NablaError> {
        let Some(shard) = self.shard.as_mut() else {
            return Err(NablaError::Distributed(
                "a sharded step without its layout".into(),
            ));
        };
        let mine = &self.grads[..counts[rank]];
        let mut finite = true;
        let most = (0..counts.len())
            .map(|r| terms_of(r, counts[r]))
            .max()
            .unwrap_or(1);
        let all_terms = shard.terms_at()..shard.terms_at() + shard.total * most;
        let parallel = self.config.threads > 1;
        let owned = &shard.owners[rank];
        shared.read(all_terms, &mut |segs| {
            // Every rank's terms in rank order; this rank's own are its groups' gradients.
            let mut terms = Vec::with_capacity(counts.iter().sum());
            for (r, seg) in segs.iter().enumerate() {
                if r == rank {
                    terms.extend(mine.iter().map(Term::Set));
                    continue;
                }
                let n = terms_of(r, counts[r]);
                let flat = (0..n).map(|t| &seg[t * shard.total..(t + 1) * shard.total]);
                terms.extend(flat.map(Term::Flat));
            }
            let params = model.params_mut().tensors_mut();
            let sources = (&terms[..], &shard.offsets[..]);
            finite = if parallel {
                let step = || optimizer.step_chunks(params, sources, owned, true);
                self.pool.install(step)
            } else {
                optimizer.step_chunks(params, sources, owned, false)
            };
        })?;
        shard.stale = true;
        let params = model.params_mut().tensors_mut();
        share_weights(shared, shard, rank, params, [finite, stop])
    }

    /// Makes every rank's optimizer state whole again after sharded steps of a distributed
    /// run whose ranks share memory (each rank keeps only its own chunks of the state current).
    /// [`Trainer::fit`] calls it at the end of every epoch; a caller of
    /// [`Trainer::step_with`] calls it before reading or saving the optimizer's state. Every
    /// rank calls it at the same point; a no-op when no sharded step was taken since the last
    /// call, or in one process.
    pub fn sync_state(&mut self, optimizer: &mut Optimizer) -> Result<(), NablaError> {
        let (Some(shard), Some(group)) = (self.shard.as_mut(), self.group.as_deref_mut()) else {
            return Ok(());
        };
        let width = optimizer.state_width();
        let rank = group.rank();
        let (Some(shared), true) = (group.shared(), shard.stale) else {
            return Ok(());
        };
        shard.stale = false;
        let state = optimizer.state_buffers_mut();
        if width == 0 || state.len() != shard.offsets.len() {
            return Ok(());
        }
        let at = shard.terms_at()..shard.terms_at() + shard.total * width;
        // Each rank's chunks of the state, in the flat layout (`width` values per element).
        let places = |r: usize, p: usize| {
            let len = state_len(&shard.offsets, shard.total, p);
            let e = Shard::elements(&shard.owners[r][p], len);
            (
                shard.offsets[p] * width + e.start * width,
                e.start * width..e.end * width,
            )
        };
        shared.write(at.clone(), &mut |seg| {
            for (p, s) in state.iter().enumerate() {
                let (from, e) = places(rank, p);
                seg[from..from + e.len()].copy_from_slice(&s[e]);
            }
        })?;
        shared.barrier()?;
        shared.read(at, &mut |segs| {
            for (r, seg) in segs.iter().enumerate().filter(|&(r, _)| r != rank) {
                for (p, s) in state.iter_mut().enumerate() {
                    let (from, e) = places(r, p);
                    s[e.clone()].copy_from_slice(&seg[from..from + e.len()]);
                }
            }
        })?;
        // Nobody writes terms over the state before every rank has read it.
        shared.barrier()
    }
}

/// Values of parameter `p` in the flat layout.
fn state_len(offsets: &[usize], total: usize, p: usize) -> usize {
    offsets.get(p + 1).copied().unwrap_or(total) - offsets[p]
}

/// Puts this rank's updated chunks and its two flags (its gradient was finite; it was asked to
/// stop) in its segment, waits for every rank, then copies the other ranks' chunks into
/// `params`. Returns (every rank's gradient was finite, some rank was asked to stop).
fn share_weights(
    shared: &mut dyn SharedMemory,
    shard: &Shard,
    rank: usize,
    params: &mut [Tensor],
    [finite, stop]: [bool; 2],
) -> Result<(bool, bool), NablaError> {
    let weights = shard.weights();
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    shared.write(0..weights.end, &mut |seg| {
        seg[..2].copy_from_slice(&[flag(finite), flag(stop)]);
        for (p, t) in params.iter().enumerate() {
            let e = Shard::elements(&shard.owners[rank][p], t.len());
            let at = shard.header + shard.offsets[p];
            seg[at + e.start..at + e.end].copy_from_slice(&t.data()[e]);
        }
    })?;
    shared.barrier()?;
    let (mut all_finite, mut any_stop) = (true, false);
    shared.read(0..weights.end, &mut |segs| {
        for (r, seg) in segs.iter().enumerate() {
            all_finite &= seg[0] == 1.0;
            any_stop |= seg[1] == 1.0;
            if r == rank {
                continue;
            }
            for (p, t) in params.iter_mut().enumerate() {
                let e = Shard::elements(&shard.owners[r][p], t.len());
                let at = shard.header + shard.offsets[p];
                t.data_mut()[e.clone()].copy_from_slice(&seg[at + e.start..at + e.end]);
            }
        }
    })?;
    Ok((all_finite, any_stop))
}

/// An `f64` as two `f32` bit patterns (low word first), copied bit for bit.
fn f64_bits(x: f64) -> [f32; 2] {
    let b = x.to_bits();
    [f32::from_bits(b as u32), f32::from_bits((b >> 32) as u32)]
}

/// The `f64` that [`f64_bits`] split.
fn from_f64_bits(v: &[f32]) -> f64 {
    f64::from_bits(u64::from(v[0].to_bits()) | (u64::from(v[1].to_bits()) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_has_one_owner_and_one_chunk_parameters_spread() {
        let lens: [usize; 7] = [784 * 1024, 1024, 1024 * 1024, 1024, 10 * 1024, 10, 0];
        let params: Vec<Tensor> = lens.iter().map(|&n| Tensor::zeros(1, n)).collect();
        for size in 1..6 {
            let shard = Shard::new(&params, size, 8);
            for (p, &len) in lens.iter().enumerate() {
                let mut owned = vec![0; len.div_ceil(CHUNK)];
                for r in 0..size {
                    owned[shard.owners[r][p].clone()]
                        .iter_mut()
                        .for_each(|c| *c += 1);
                }
                assert!(owned.iter().all(|&c| c == 1), "size {size} param {p}");
            }
            assert_eq!(shard.offsets[2], 784 * 1024 + 1024);
        }
        // Two ranks update about as many values each (784-1024-1024-10: 944,128 and 919,562).
        let shard = Shard::new(&params, 2, 8);
        let values = |r: usize| -> usize {
            let each = lens.iter().enumerate();
            each.map(|(p, &n)| Shard::elements(&shard.owners[r][p], n).len())
                .sum()
        };
        assert_eq!((values(0), values(1)), (944_128, 919_562));
    }
}
