//! The in-order sum as a reduce-scatter and an all-gather (the "direct" scheme).
//!
//! Each rank owns a contiguous slice of the tensor ([`super::share`] of its values). Every
//! other rank sends the owner what it holds for that slice — rank 0 its prefix
//! `(t0 + t1) + …` of its own terms, a later rank each of its terms unsummed — and the owner
//! adds them in rank order, so every value of its slice is the sum `((t0 + t1) + t2) + …` that
//! one process forms. The owners then swap their finished slices. The pairs talk in rounds
//! (round `k`: rank `r` sends to `r + k` and hears from `r − k`, both at once), so both
//! directions of every link work together and no rank waits for a chain to pass through the
//! others.
//!
//! Each rank sends `(c + 1)·(N − 1)/N` of the tensor, where `c` is the count of messages it
//! contributes per slice (1 for rank 0; its term count for the others): for `c = 1` that is a
//! ring all-reduce's `2·(N − 1)/N`. A later rank with several terms must send each, since
//! adding them first would change the order of the sum; [`direct_pays`] says when the scheme
//! takes no longer than the chain (counted in values sent over the slowest rank's link), and
//! [`Reducer`] falls back to the chain otherwise.

use super::{CHUNK, Collective, first_terms, share, sum_in_order};
use crate::error::NablaError;

/// True when the direct scheme takes no longer than the chain for a tensor of `len` values,
/// counted in values on the slowest rank's link: the direct scheme sends `(c_r + 1)·(N − 1)/N
/// · len` from rank `r` (`c_0 = 1`, `c_r = counts[r]` for `r > 0`), the chain's two pipelined
/// phases take as long as `2·(len + (N − 2)·chunk)` (the pipeline fills over `N − 2` hops,
/// `chunk = min(CHUNK, len)`). Rank 0 must have a term. For a tensor of many more chunks than
/// ranks that allows up to 3 terms per rank with 2 ranks and 1 from 4 ranks on; the chain's
/// pipeline fill lets more terms take the direct scheme on smaller tensors: a tensor of at most
/// one chunk takes it with up to `2·N − 1` terms per rank.
pub fn direct_pays(counts: &[usize], len: usize) -> bool {
    let n = counts.len();
    let chain = 2 * n * (len + (n.max(2) - 2) * len.min(CHUNK));
    n > 1
        && counts[0] > 0
        && counts
            .iter()
            .enumerate()
            .all(|(r, &c)| (if r == 0 { 1 } else { c } + 1) * (n - 1) * len <= chain)
}

/// The in-order sum of [`sum_in_order`] with a reusable receive buffer, by the faster scheme
/// by the count of [`direct_pays`]: the direct reduce-scatter + all-gather when it pays, the
/// chain otherwise. Results are bit-identical either way.
#[derive(Debug, Default)]
pub struct Reducer {
    scratch: Vec<f32>,
}

impl Reducer {
    /// A reducer with no buffer yet (it grows to the largest slice it has received).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes into `out`, on every rank, the element-wise sum of every rank's terms (`mine`
    /// on this rank), added in the order `((t0 + t1) + t2) + …` of one process: rank 0's terms
    /// first, then rank 1's, …. `counts[r]` is how many terms rank `r` holds; every rank must
    /// pass the same `counts`, with `counts[group.rank()] == mine.len()`.
    pub fn sum(
        &mut self,
        group: &mut dyn Collective,
        mine: &[&[f32]],
        counts: &[usize],
        out: &mut [f32],
    ) -> Result<(), NablaError> {
        let (rank, size) = (group.rank(), group.size());
        if counts.len() != size || counts[rank] != mine.len() {
            return Err(NablaError::Distributed(format!(
                "rank {rank} of {size} holds {} terms, the plan {counts:?}",
                mine.len()
            )));
        }
        if !direct_pays(counts, out.len()) {
            return sum_in_order(group, mine, out);
        }
        if let Some(bad) = mine.iter().find(|m| m.len() != out.len()) {
            return Err(NablaError::Shape(format!(
                "a term of {} values for a sum of {}",
                bad.len(),
                out.len()
            )));
        }
        self.scatter(group, mine, counts, out)?;
        gather(group, out)
    }

    /// The reduce-scatter: afterwards this rank's slice of `out` holds the finished sum.
    fn scatter(
        &mut self,
        group: &mut dyn Collective,
        mine: &[&[f32]],
        counts: &[usize],
        out: &mut [f32],
    ) -> Result<(), NablaError> {
        let (rank, size, len) = (group.rank(), group.size(), out.len());
        let own = share(len, rank, size);
        let width = own.len();
        // The terms of rank s > 0 (not this one) for this slice wait at offset[s].
        let mut offset = vec![0; size];
        let mut need = 0;
        for s in (1..size).filter(|&s| s != rank) {
            offset[s] = need;
            need += counts[s] * width;
        }
        if self.scratch.len() < need {
            self.scratch.resize(need, 0.0);
        }
        // Rank 0 sends its one term as it is, or the prefix of several formed in `out`.
        let summed_first = rank == 0 && mine.len() > 1;
        if summed_first {
            prefix(out, mine);
        }
        let sends = |r: usize| if r == 0 { 1 } else { counts[r] };
        for k in 1..size {
            let (to, from) = ((rank + k) % size, (rank + size - k) % size);
            let theirs = share(len, to, size);
            for j in 0..sends(rank).max(sends(from)) {
                let at = offset[from] + j * width;
                let heard = j < sends(from);
                let (send, recv): (Option<&[f32]>, _) = if summed_first {
                    // Rank 0 never hears from itself: its `out` only sends.
                    let recv = heard.then(|| (from, &mut self.scratch[at..at + width]));
                    ((j == 0).then(|| &out[theirs.clone()]), recv)
                } else {
                    let recv = heard.then(|| {
                        let into = if from == 0 {
                            &mut out[own.clone()]
                        } else {
                            &mut self.scratch[at..at + width]
                        };
                        (from, into)
                    });
                    (mine.get(j).map(|t| &t[theirs.clone()]), recv)
                };
                in_pieces(group, send.map(|d| (to, d)), recv)?;
            }
        }
        let mut rest: Vec<&[f32]> = Vec::new();
        for s in 1..size {
            if s == rank {
                rest.extend(mine.iter().map(|t| &t[own.clone()]));
            } else {
                let theirs = &self.scratch[offset[s]..offset[s] + counts[s] * width];
                rest.extend(theirs.chunks_exact(width.max(1)).take(counts[s]));
            }
        }
        let o = &mut out[own.clone()];
        if rank == 0 && !summed_first {
            // One term here: `t0 + t1` in one pass, as one process starts its sum.
            let t0 = mine.iter().map(|t| &t[own.clone()]);
            prefix(o, &t0.chain(rest).collect::<Vec<_>>());
        } else {
            rest.into_iter().for_each(|t| add(o, t));
        }
        Ok(())
    }
}

/// [`Collective::exchange`] in pieces of [`CHUNK`] values (piece `i` of the message sent with
/// piece `i` of the one received), so a large message streams through the transport's
/// buffers instead of waiting for it whole (measured faster on loopback).
fn in_pieces(
    group: &mut dyn Collective,
    send: Option<(usize, &[f32])>,
    recv: Option<(usize, &mut [f32])>,
) -> Result<(), NablaError> {
    let mut sends = send
        .into_iter()
        .flat_map(|(to, d)| d.chunks(CHUNK).map(move |c| (to, c)));
    let mut recvs = recv
        .into_iter()
        .flat_map(|(from, d)| d.chunks_mut(CHUNK).map(move |c| (from, c)));
    loop {
        match (sends.next(), recvs.next()) {
            (None, None) => return Ok(()),
            (s, r) => group.exchange(s, r)?,
        }
    }
}

/// Rank 0's own part of the sum, over the whole tensor: `(t0 + t1) + t2 + …`.
fn prefix(out: &mut [f32], mine: &[&[f32]]) {
    let mut terms = mine.iter().copied();
    first_terms(out, &mut terms);
    terms.for_each(|t| add(out, t));
}

fn add(o: &mut [f32], t: &[f32]) {
    o.iter_mut().zip(t).for_each(|(x, y)| *x += *y);
}

/// The all-gather: every rank sends its finished slice to every other, in the same rounds.
fn gather(group: &mut dyn Collective, out: &mut [f32]) -> Result<(), NablaError> {
    let (rank, size, len) = (group.rank(), group.size(), out.len());
    let own = share(len, rank, size);
    for k in 1..size {
        let (to, from) = ((rank + k) % size, (rank + size - k) % size);
        let theirs = share(len, from, size);
        let (send, recv) = if own.start < theirs.start {
            let (a, b) = out.split_at_mut(theirs.start);
            (&a[own.clone()], &mut b[..theirs.len()])
        } else {
            let (a, b) = out.split_at_mut(own.start);
            (&b[..own.len()], &mut a[theirs.clone()])
        };
        in_pieces(group, Some((to, send)), Some((from, recv)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::LocalGroup;
    use std::time::Duration;

    /// One process's sum of `terms` (the order of `Optimizer::step_sum`).
    fn one_process(terms: &[Vec<f32>]) -> Vec<f32> {
        let refs: Vec<&[f32]> = terms.iter().map(Vec::as_slice).collect();
        let mut out = vec![0.0; terms[0].len()];
        prefix(&mut out, &refs);
        out
    }

    /// Values whose sum depends on the order of addition.
    fn terms(k: usize, len: usize) -> Vec<Vec<f32>> {
        (0..k)
            .map(|t| {
                (0..len)
                    .map(|i| {
                        let x = ((i * 7919 + t * 104_729) % 1000) as f32 - 500.0;
                        x * 10f32.powi(((i + 3 * t) % 13) as i32 - 6)
                    })
                    .collect()
            })
            .collect()
    }

    fn sum_over(size: usize, counts: &[usize], all: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let members = LocalGroup::new(size, Duration::from_secs(10));
        let handles: Vec<_> = members
            .into_iter()
            .map(|mut m| {
                let counts = counts.to_vec();
                let start: usize = counts[..m.rank()].iter().sum();
                let mine: Vec<Vec<f32>> = all[start..start + counts[m.rank()]].to_vec();
                let len = all[0].len();
                std::thread::spawn(move || {
                    let refs: Vec<&[f32]> = mine.iter().map(Vec::as_slice).collect();
                    let mut out = vec![f32::NAN; len];
                    let mut reducer = Reducer::new();
                    // Twice: the second sum reuses the buffer.
                    for _ in 0..2 {
                        reducer.sum(&mut m, &refs, &counts, &mut out).unwrap();
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn every_plan_gives_the_one_process_sum_bit_for_bit() {
        let plans: &[&[usize]] = &[
            &[1, 1],
            &[2, 1],
            &[3, 3],
            &[4, 4],
            &[1, 0],
            &[1, 1, 1, 1],
            &[1, 1, 0, 0],
            &[2, 2, 2, 2],
            &[2, 1, 1],
            &[1, 1, 1],
            &[3],
        ];
        for &counts in plans {
            let k: usize = counts.iter().sum();
            for len in [1, 2, 5, 1000, 4099] {
                let all = terms(k, len);
                let want: Vec<u32> = one_process(&all).iter().map(|v| v.to_bits()).collect();
                for (rank, got) in sum_over(counts.len(), counts, &all).iter().enumerate() {
                    let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                    assert!(got == want, "plan {counts:?}, {len} values, rank {rank}");
                }
            }
        }
    }

    #[test]
    fn the_order_matters_for_these_values() {
        let all = terms(4, 1000);
        let forward = one_process(&all);
        let reversed: Vec<Vec<f32>> = all.iter().rev().cloned().collect();
        assert_ne!(forward, one_process(&reversed));
    }

    #[test]
    fn the_direct_scheme_is_used_only_when_it_takes_no_longer() {
        let big = 8 * CHUNK;
        assert!(direct_pays(&[1, 1], big));
        assert!(direct_pays(&[4, 3], big));
        assert!(!direct_pays(&[4, 4], big));
        assert!(!direct_pays(&[4, 4], 100) && direct_pays(&[4, 3], 100));
        assert!(direct_pays(&[1, 1, 1, 1], big));
        assert!(direct_pays(&[1, 1, 0, 0], big));
        assert!(direct_pays(&[5, 1, 1, 1], big));
        // 4 ranks of 2 terms: 2.25 × the tensor against the chain's 2 + 4/8.
        assert!(direct_pays(&[2, 2, 2, 2], big));
        assert!(direct_pays(&[2, 2, 2, 2, 2, 2, 2, 2], big));
        assert!(!direct_pays(&[2, 2, 2, 2, 2, 2, 2, 2], 64 * CHUNK));
        assert!(direct_pays(&[2, 2, 2, 2, 2, 2, 2, 2], 1000));
        assert!(!direct_pays(&[0, 0], big));
        assert!(!direct_pays(&[3], big));
    }

    #[test]
    fn a_wrong_plan_is_refused() {
        let mut m = LocalGroup::new(2, Duration::from_secs(1)).remove(0);
        let t = [1.0f32; 4];
        let mut out = [0.0; 4];
        let err = Reducer::new()
            .sum(&mut m, &[&t], &[2, 1], &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("plan"), "{err}");
    }
}
