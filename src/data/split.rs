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

#[cfg(test)]
mod tests {
    use super::*;

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
