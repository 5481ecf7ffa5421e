//! Helpers shared by the library's integration tests (`mod common;` in each test file).

#![allow(dead_code)]

use nabla::{NablaError, Tape, Tensor, Var};

/// Deterministic values in `[-1, 1)` for a tensor of `shape` (a small LCG: no dependency).
pub fn values(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_shape(shape, data).unwrap()
}

/// Positive values in `[0.5, 1.5)`.
pub fn positive(shape: &[usize], seed: u64) -> Tensor {
    let t = values(shape, seed);
    Tensor::from_shape(shape, t.data().iter().map(|v| 1.0 + v / 2.0).collect()).unwrap()
}

/// `Σ w ⊙ y` with fixed weights, so every output element's gradient differs.
pub fn weighted_sum(tape: &mut Tape, y: Var, seed: u64) -> Result<Var, NablaError> {
    let w = tape.input(&values(tape.dims(y), seed));
    let p = tape.mul(y, w)?;
    Ok(tape.sum(p))
}
