//! Data-parallel training over several processes: the seam between the trainer and whatever
//! carries bytes between them (MPI, or threads in one process for tests).
//!
//! A run over `N` processes ("ranks") trains one model. Every rank holds the whole model and
//! the whole data, walks the same seeded batches, and computes a fixed share of every batch's
//! gradient groups (see [`share`]; a group is one micro-batch, or from batch 512 up several that
//! accumulate into one buffer, fixed by the batch: [`crate::train::groups`]). The group
//! gradients (the "terms" below) are then combined **in the order a single process sums them**, so the trained weights are bit-identical to a one-process run
//! with the same seed, for any `N` and any thread count per rank. Over messages, two schemes
//! give that order:
//!
//! * *the chain* ([`sum_in_order`]): rank 0 sums its micro-batch gradients `(g0 + g1) + …`,
//!   sends the partial sum to rank 1, which adds its own in order and passes it on, … up to
//!   rank `N − 1`, which then holds exactly the sum one process would form; the result is then
//!   broadcast along the ring `N − 1 → 0 → 1 → … → N − 2`. Both phases send each tensor in
//!   chunks of [`CHUNK`] values, so the chain works as a pipeline: about `2 · bytes /
//!   bandwidth` plus `N` chunk latencies. The loss sum, the count of correct answers and the
//!   batch-norm running statistics always travel this way, folded in the same order.
//! * *the direct scheme* ([`Reducer`], module `scatter`): a reduce-scatter + all-gather in
//!   which each rank owns a slice of the tensor and receives, for it, rank 0's prefix and every
//!   later rank's terms unsummed, and adds them in rank order; the owners then swap their
//!   finished slices. With one term per rank it moves a ring all-reduce's `2 · (N − 1)/N ·
//!   bytes` per rank, in `N − 1` pairwise rounds per phase with both link directions busy.
//!   [`Reducer`] uses it for the gradient when it takes no longer than the chain by the bytes
//!   on the busiest link ([`direct_pays`]) and falls back to the chain otherwise; both give
//!   the same bits.
//!
//! Then every rank applies the same optimizer step to the same summed gradient. The sum
//! overlaps the backward pass: each parameter is summed across the ranks as soon as this rank's
//! backward has made its gradient final (the last layer's first), while the earlier layers'
//! backward runs on the trainer's threads (`Trainer::overlap`). Over shared memory:
//!
//! * *the sharded step*, for ranks that all run on one machine and so can share memory
//!   ([`Collective::shared`], a [`SharedMemory`]): every rank writes its terms into its own
//!   segment, and each updates only its own chunks of every parameter, summing the terms for
//!   them in rank order (`((t0 + t1) + t2) + …` again) straight from the others' segments, then
//!   publishes its updated chunks for the others to copy. Each element is summed and updated
//!   once in the whole run rather than on every rank, and no byte goes through a message
//!   queue. The optimizer's state is then current on each rank for its own chunks only, and is
//!   gathered at the end of every epoch (`Trainer::sync_state`).
//!
//! [`Collective`] is what the trainer needs from the transport: point-to-point sends and
//! receives of `f32` and `f64` values that fail (rather than hang) when a peer is gone or
//! silent. [`Solo`] is the one-process case, [`LocalGroup`] runs the ranks as threads of one
//! process (tests, examples), and `Mpi` (cargo feature `mpi`) runs them under `mpirun`.

mod local;
#[cfg(feature = "mpi")]
mod mpi;
mod scatter;
mod shared;
#[cfg(feature = "mpi")]
mod window;

pub use local::{LocalGroup, LocalMember};
#[cfg(feature = "mpi")]
pub use mpi::Mpi;
pub use scatter::{Reducer, direct_pays};
pub use shared::SharedMemory;

use std::ops::Range;

use crate::error::NablaError;

/// Values per message when a tensor is sent in pieces (1 MiB of `f32`): small enough to
/// pipeline along a chain, large enough that per-message latency is noise.
pub const CHUNK: usize = 1 << 18;

/// Point-to-point messages between the ranks of one run.
///
/// Messages between two ranks arrive in the order they were sent. Every call either completes
/// or returns an error naming the peer (a rank that died, or sent nothing within the
/// transport's timeout), so a broken run stops instead of hanging.
pub trait Collective {
    /// This process's rank, `0 ≤ rank < size`.
    fn rank(&self) -> usize;
    /// How many ranks the run has.
    fn size(&self) -> usize;
    /// Memory all ranks share, when they run on one machine and the transport offers it
    /// (then the trainer takes the sharded step: see the module docs); `None` by default.
    fn shared(&mut self) -> Option<&mut dyn SharedMemory> {
        None
    }
    /// Sends `data` to rank `to`.
    fn send(&mut self, to: usize, data: &[f32]) -> Result<(), NablaError>;
    /// Receives exactly `data.len()` values from rank `from` into `data`.
    fn receive(&mut self, from: usize, data: &mut [f32]) -> Result<(), NablaError>;
    /// Sends `data` to rank `to`.
    fn send_f64(&mut self, to: usize, data: &[f64]) -> Result<(), NablaError>;
    /// Receives exactly `data.len()` values from rank `from` into `data`.
    fn receive_f64(&mut self, from: usize, data: &mut [f64]) -> Result<(), NablaError>;
    /// Sends `send.1` to rank `send.0` and receives `recv.1.len()` values from rank `recv.0`
    /// into `recv.1`, both at once (either may be absent), so two ranks that send each other
    /// large messages do not wait for each other. The default sends first and then receives,
    /// which is right for a transport whose sends complete without the receiver (buffered,
    /// like [`LocalGroup`]); MPI overrides it.
    fn exchange(
        &mut self,
        send: Option<(usize, &[f32])>,
        recv: Option<(usize, &mut [f32])>,
    ) -> Result<(), NablaError> {
        if let Some((to, data)) = send {
            self.send(to, data)?;
        }
        match recv {
            Some((from, data)) => self.receive(from, data),
            None => Ok(()),
        }
    }
}

/// A run of one process: rank 0 of 1, with nobody to talk to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn send(&mut self, to: usize, _: &[f32]) -> Result<(), NablaError> {
        Err(no_peer(to))
    }
    fn receive(&mut self, from: usize, _: &mut [f32]) -> Result<(), NablaError> {
        Err(no_peer(from))
    }
    fn send_f64(&mut self, to: usize, _: &[f64]) -> Result<(), NablaError> {
        Err(no_peer(to))
    }
    fn receive_f64(&mut self, from: usize, _: &mut [f64]) -> Result<(), NablaError> {
        Err(no_peer(from))
    }
}

fn no_peer(rank: usize) -> NablaError {
    NablaError::Distributed(format!("a one-process run has no rank {rank}"))
}

/// The gradient groups (see [`crate::train::micro_batches_per_group`]) `rank` computes when a
/// batch has `k` of them and the run has `size` ranks: contiguous, the first `k mod size` ranks one more than the others
/// (`k = 5, size = 2`: rank 0 takes 0..3, rank 1 takes 3..5). A rank may get none when
/// `k < size`; it still passes the partial sums along.
pub fn share(k: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (q, rem) = (k / size, k % size);
    let start = rank * q + rank.min(rem);
    let len = q + usize::from(rank < rem);
    start.min(k)..(start + len).min(k)
}

/// The element-wise sum of every rank's `mine` (each rank's terms in order, ranks in order),
/// added exactly as one process adds all the terms: `((t0 + t1) + t2) + …`. Rank 0 starts
/// with `t0 + t1` (or `t0`), each rank adds its own terms to the partial sum it receives from
/// the previous rank and passes it on; the last rank's result, the whole sum, is then broadcast
/// (see [`broadcast`]) so every rank ends with it in `out`. Rank 0 must have at least one term;
/// later ranks may have none. Sent in pipelined chunks of [`CHUNK`] values.
pub fn sum_in_order(
    group: &mut dyn Collective,
    mine: &[&[f32]],
    out: &mut [f32],
) -> Result<(), NablaError> {
    let (rank, size) = (group.rank(), group.size());
    let len = out.len();
    if let Some(bad) = mine.iter().find(|m| m.len() != len) {
        return Err(NablaError::Shape(format!(
            "a term of {} values for a sum of {len}",
            bad.len()
        )));
    }
    for start in (0..len).step_by(CHUNK) {
        let end = (start + CHUNK).min(len);
        let o = &mut out[start..end];
        let mut terms = mine.iter().map(|m| &m[start..end]);
        if rank > 0 {
            group.receive(rank - 1, o)?;
        } else {
            first_terms(o, &mut terms);
        }
        for t in terms {
            o.iter_mut().zip(t).for_each(|(x, y)| *x += *y);
        }
        if rank + 1 < size {
            group.send(rank + 1, o)?;
        }
    }
    broadcast(group, out)
}

/// Rank 0 starts the sum as one process does: `t0 + t1` in one pass, or `t0` alone.
fn first_terms<'t>(o: &mut [f32], terms: &mut impl Iterator<Item = &'t [f32]>) {
    match (terms.next(), terms.next()) {
        (Some(a), Some(b)) => {
            for ((x, y), z) in o.iter_mut().zip(a).zip(b) {
                *x = y + z;
            }
        }
        (Some(a), None) => o.copy_from_slice(a),
        _ => o.fill(0.0),
    }
}

/// Sends rank `N − 1`'s `data` to every other rank along the ring `N − 1 → 0 → 1 → … → N − 2`,
/// in pipelined chunks of [`CHUNK`] values; every rank ends with rank `N − 1`'s values.
pub fn broadcast(group: &mut dyn Collective, data: &mut [f32]) -> Result<(), NablaError> {
    let (rank, size) = (group.rank(), group.size());
    if size == 1 {
        return Ok(());
    }
    let root = size - 1;
    for chunk in data.chunks_mut(CHUNK) {
        if rank != root {
            group.receive(if rank == 0 { root } else { rank - 1 }, chunk)?;
        }
        let next = if rank == root { 0 } else { rank + 1 };
        if next != root {
            group.send(next, chunk)?;
        }
    }
    Ok(())
}

/// True on every rank when `ok` is true on every rank: each rank's verdict passed along the
/// chain `0 → … → N − 1` and the answer broadcast back (how ranks agree to go on after rank 0
/// checked the output paths, before anyone loads data).
pub fn all_agree(group: &mut dyn Collective, ok: bool) -> Result<bool, NablaError> {
    let (rank, size) = (group.rank(), group.size());
    if size == 1 {
        return Ok(ok);
    }
    let mut flag = [1.0f64];
    if rank > 0 {
        group.receive_f64(rank - 1, &mut flag)?;
    }
    if !ok {
        flag[0] = 0.0;
    }
    let root = size - 1;
    if rank < root {
        group.send_f64(rank + 1, &flag)?;
        group.receive_f64(if rank == 0 { root } else { rank - 1 }, &mut flag)?;
    }
    let next = if rank == root { 0 } else { rank + 1 };
    if next != root {
        group.send_f64(next, &flag)?;
    }
    Ok(flag[0] != 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_micro_batch_once_in_order() {
        for k in 0..20 {
            for size in 1..7 {
                let mut next = 0;
                for rank in 0..size {
                    let r = share(k, rank, size);
                    assert_eq!(r.start, next, "k {k} size {size} rank {rank}");
                    assert!(r.len() <= k.div_ceil(size));
                    next = r.end;
                }
                assert_eq!(next, k);
            }
        }
        assert_eq!(share(5, 0, 2), 0..3);
        assert_eq!(share(5, 1, 2), 3..5);
        assert_eq!(share(2, 3, 4), 2..2);
    }

    #[test]
    fn ranks_agree_only_when_all_are_ok() {
        for size in 1..5 {
            for bad in 0..=size {
                let members = LocalGroup::new(size, std::time::Duration::from_secs(10));
                let answers: Vec<bool> = members
                    .into_iter()
                    .map(|mut m| {
                        std::thread::spawn(move || {
                            let ok = m.rank() != bad;
                            all_agree(&mut m, ok).unwrap()
                        })
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect();
                assert!(answers.iter().all(|&a| a == (bad == size)), "{size} {bad}");
            }
        }
    }
}
