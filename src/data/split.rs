//! Seeded, stratified splits: each class is shuffled on its own and the same fraction of it is
//! held out, so a 20 % test set has 20 % of every class (not the tail of unshuffled data).

use crate::error::NablaError;
use crate::rng::{self, Stream};

/// Splits sample indices `0..labels.len()` into `(kept, held_out)` with about `fraction` of
/// every class held out. Both lists are sorted. Classes with a single sample stay in `kept`.
pub fn stratified(
    labels: &[u32],
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), NablaError> {
    stratified_stream(labels, num_classes, fraction, seed, 0).map(|s| (s.kept, s.held))
}

/// The outcome of a split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Indices kept (sorted).
    pub kept: Vec<usize>,
    /// Indices held out (sorted).
    pub held: Vec<usize>,
    /// Classes with too few samples to put one on each side (they stay in `kept`).
    pub too_small: Vec<u32>,
}

/// [`stratified`] on sub-stream `index` of the split stream (0: the test split, 1: the
/// validation split), also reporting the classes too small to stratify.
pub fn stratified_stream(
    labels: &[u32],
    num_classes: usize,
    fraction: f64,
    seed: u64,
    index: u64,
) -> Result<Split, NablaError> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(NablaError::Usage(format!(
            "a split fraction must be in [0, 1), got {fraction}"
        )));
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(class) = by_class.get_mut(l as usize) {
            class.push(i);
        }
    }
    let mut rng = rng::sub_stream(seed, Stream::Split, index);
    let (mut kept, mut held, mut too_small) = (Vec::new(), Vec::new(), Vec::new());
    for (class, mut members) in by_class.into_iter().enumerate() {
        if fraction > 0.0 && members.len() == 1 {
            too_small.push(class as u32);
        }
        rng::shuffle(&mut rng, &mut members);
        let mut take = (members.len() as f64 * fraction).round() as usize;
        if fraction > 0.0 && take == 0 && members.len() > 1 {
            take = 1;
        }
        take = take.min(members.len().saturating_sub(1));
        held.extend_from_slice(&members[..take]);
        kept.extend_from_slice(&members[take..]);
    }
    kept.sort_unstable();
    held.sort_unstable();
    Ok(Split {
        kept,
        held,
        too_small,
    })
}

/// Splits `0..n` into `(kept, held_out)` with `round(n · fraction)` held out (at least one when
/// `fraction > 0` and `n > 1`, never all), drawn from sub-stream `index` of the split stream.
/// For regression, where there are no classes to stratify by.
pub fn random(n: usize, fraction: f64, seed: u64, index: u64) -> Result<Split, NablaError> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(NablaError::Usage(format!(
            "a split fraction must be in [0, 1), got {fraction}"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = rng::sub_stream(seed, Stream::Split, index);
    rng::shuffle(&mut rng, &mut order);
    let mut take = (n as f64 * fraction).round() as usize;
    if fraction > 0.0 && take == 0 && n > 1 {
        take = 1;
    }
    take = take.min(n.saturating_sub(1));
    let mut held = order[..take].to_vec();
    let mut kept = order[take..].to_vec();
    kept.sort_unstable();
    held.sort_unstable();
    Ok(Split {
        kept,
        held,
        too_small: Vec::new(),
    })
}

/// Exactly `min(n, rows)` of the indices `0..rows`, sorted and seeded (sub-stream `index` of the
/// split stream): stratified by `labels` (about the same share of every class) when there are
/// labels, a random draw without (regression). The classes' rounded shares are topped up, or
/// trimmed, by a seeded draw so the count is exact.
pub fn sample_exactly(
    labels: &[u32],
    num_classes: usize,
    rows: usize,
    n: usize,
    seed: u64,
    index: u64,
) -> Result<Vec<usize>, NablaError> {
    if n >= rows {
        return Ok((0..rows).collect());
    }
    let fraction = n as f64 / rows as f64;
    let s = if labels.is_empty() {
        random(rows, fraction, seed, index)?
    } else {
        stratified_stream(labels, num_classes, fraction, seed, index)?
    };
    let (mut held, mut rest) = (s.held, s.kept);
    let mut rng = rng::sub_stream(seed, Stream::Split, index.wrapping_add(1 << 32));
    if held.len() > n {
        rng::shuffle(&mut rng, &mut held);
        held.truncate(n);
    } else {
        rng::shuffle(&mut rng, &mut rest);
        held.extend_from_slice(&rest[..n - held.len()]);
    }
    held.sort_unstable();
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_exactly_gives_exactly_n_stratified_rows() {
        // 3 classes of 7: a share of 500/…-style rounding leaves the stratified draw short.
        let labels: Vec<u32> = (0..21).map(|i| (i % 3) as u32).collect();
        for n in [1, 2, 4, 5, 10, 13, 20, 21, 30] {
            let got = sample_exactly(&labels, 3, 21, n, 42, 7).unwrap();
            assert_eq!(got.len(), n.min(21), "n = {n}");
            assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        }
        let labels: Vec<u32> = (0..1797).map(|i| (i % 10) as u32).collect();
        for n in [500, 6000, 999, 1000, 1796] {
            assert_eq!(
                sample_exactly(&labels, 10, 1797, n, 1, 7).unwrap().len(),
                n.min(1797)
            );
        }
        assert_eq!(sample_exactly(&[], 0, 1000, 499, 3, 7).unwrap().len(), 499);
        let a = sample_exactly(&labels, 10, 1797, 500, 1, 7).unwrap();
        assert_eq!(
            a,
            sample_exactly(&labels, 10, 1797, 500, 1, 7).unwrap(),
            "seeded"
        );
    }

    #[test]
    fn split_is_stratified_seeded_and_disjoint() {
        let labels: Vec<u32> = (0..1000).map(|i| (i % 4) as u32).collect();
        let (a, b) = stratified(&labels, 4, 0.2, 5).unwrap();
        assert_eq!(a.len() + b.len(), 1000);
        assert_eq!(b.len(), 200);
        for c in 0..4 {
            assert_eq!(b.iter().filter(|&&i| labels[i] == c).count(), 50);
        }
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1000);
        assert_eq!(stratified(&labels, 4, 0.2, 5).unwrap().1, b);
        assert_ne!(stratified(&labels, 4, 0.2, 6).unwrap().1, b);
        assert!(stratified(&labels, 4, 1.0, 5).is_err());
    }
}
