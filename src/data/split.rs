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
    let mut rng = rng::stream(seed, Stream::Split);
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for mut members in by_class {
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
    Ok((kept, held))
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
