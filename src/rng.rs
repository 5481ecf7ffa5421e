//! Every random number in nabla flows from one user seed through named, independent streams
//! (weight init, data split, shuffling, ...), so changing how one consumer draws never shifts
//! another, and any epoch's shuffle can be recreated from `(seed, epoch)` alone.

pub use rand::RngExt;
use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; each gets its own ChaCha stream under the same seed.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// Weight initialisation.
    Init = 1,
    /// Train / validation / test split.
    Split = 2,
    /// Mini-batch order, one sub-stream per epoch.
    Shuffle = 3,
    /// Dropout masks, one sub-stream per epoch.
    Dropout = 4,
    /// Image augmentation, one sub-stream per epoch (a fixed position per sample in it).
    Augment = 5,
}

/// The generator for `stream` under `seed`.
pub fn stream(seed: u64, stream: Stream) -> ChaCha8Rng {
    sub_stream(seed, stream, 0)
}

/// The generator for `stream` under `seed`, sub-stream `index` (an epoch number, say).
pub fn sub_stream(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((stream as u64) << 40) | (index & ((1 << 40) - 1)));
    rng
}

/// A standard normal sample (Box–Muller), from two uniform draws.
pub fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // u1 in (0, 1] so ln(u1) is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// A uniform sample in `[-a, a)`.
pub fn uniform(rng: &mut ChaCha8Rng, a: f32) -> f32 {
    (rng.random::<f32>() * 2.0 - 1.0) * a
}

/// Fisher–Yates shuffle of `items` in place.
pub fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u32> = (0..4).map(|_| stream(7, Stream::Init).random()).collect();
        let mut s1 = stream(7, Stream::Init);
        let mut s2 = stream(7, Stream::Shuffle);
        let x: u64 = s1.random();
        let y: u64 = s2.random();
        assert_ne!(x, y);
        assert_eq!(a[0], a[1]);
        let mut e1 = sub_stream(7, Stream::Shuffle, 1);
        let mut e2 = sub_stream(7, Stream::Shuffle, 2);
        assert_ne!(e1.random::<u64>(), e2.random::<u64>());
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut r = stream(1, Stream::Init);
        let n = 20000;
        let xs: Vec<f64> = (0..n).map(|_| normal(&mut r) as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
