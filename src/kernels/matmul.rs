//! `C = op(A)·op(B)` (or `C += ...`) over the `faer` crate, with transposes expressed as strides
//! (faer views), never materialised. The crate was chosen by measurement: see BENCHMARKS.md.

use faer::{Accum, MatMut, MatRef, Par};

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Use the operand as stored.
    No,
    /// Use the operand's transpose (read through swapped strides).
    Yes,
}

/// Computes `C ← op(A)·op(B)`, or `C ← C + op(A)·op(B)` when `accumulate` is true.
///
/// `op(A)` is `m × k` and `op(B)` is `k × n`; `C` is `m × n`, all row-major. With
/// `Transpose::Yes` the operand is stored transposed (`A` as `k × m`, `B` as `n × k`).
///
/// Runs on the calling thread (`Par::Seq`): parallelism is decided above the kernels.
///
/// # Panics
/// Panics if a slice is shorter than its shape requires: shapes are checked by the callers
/// (the tape's ops), so this is an internal invariant, not something user input can reach.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: Transpose,
    b: &[f32],
    tb: Transpose,
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    let a = MatRef::from_row_major_slice(
        &a[..m * k],
        if ta == Transpose::No { m } else { k },
        if ta == Transpose::No { k } else { m },
    );
    let b = MatRef::from_row_major_slice(
        &b[..k * n],
        if tb == Transpose::No { k } else { n },
        if tb == Transpose::No { n } else { k },
    );
    let a = if ta == Transpose::No {
        a
    } else {
        a.transpose()
    };
    let b = if tb == Transpose::No {
        b
    } else {
        b.transpose()
    };
    let c = MatMut::from_row_major_slice_mut(&mut c[..m * n], m, n);
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(c, accum, a, b, 1.0f32, Par::Seq);
}

/// Runs one small product on the calling thread so the GEMM crate sets up its per-thread
/// packing buffers now (faer keeps them in a thread-local, made on first use). Worker threads
/// call this when they start, so no training step pays for it or allocates.
pub fn warm_up_thread() {
    const N: usize = 96;
    let a = vec![0.0f32; N * N];
    let mut c = vec![0.0f32; N * N];
    matmul(
        N,
        N,
        N,
        &a,
        Transpose::No,
        &a,
        Transpose::Yes,
        &mut c,
        false,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], ta: bool, b: &[f32], tb: bool) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, n, k) = (7, 5, 13);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) / 5.0)
            .collect();
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let expected = naive(m, n, k, &a, ta, &b, tb);
            let t = |f| if f { Transpose::Yes } else { Transpose::No };
            let mut c = vec![f32::NAN; m * n];
            matmul(m, n, k, &a, t(ta), &b, t(tb), &mut c, false);
            for (x, y) in c.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-4, "ta={ta} tb={tb}: {x} vs {y}");
            }
            // Accumulate adds on top of what is there.
            matmul(m, n, k, &a, t(ta), &b, t(tb), &mut c, true);
            for (x, y) in c.iter().zip(&expected) {
                assert!((x - 2.0 * y).abs() < 2e-4);
            }
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let mut c = vec![5.0; 6];
        matmul(
            2,
            3,
            0,
            &[],
            Transpose::No,
            &[],
            Transpose::No,
            &mut c,
            false,
        );
        assert_eq!(c, vec![0.0; 6]);
    }
}
