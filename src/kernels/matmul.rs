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
    if m <= SMALL_BATCH && k > 0 && ta == Transpose::No && tb == Transpose::Yes && !accumulate {
        // x·Wᵀ for a few rows (single-sample prediction): matrix-vector products, since faer's
        // small-size path allocates on every call.
        for (crow, arow) in c[..m * n].chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (cv, brow) in crow.iter_mut().zip(b.chunks_exact(k)) {
                *cv = dot(brow, arow);
            }
        }
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

/// Products `x·Wᵀ` of up to this many rows use the matrix-vector loop instead of the GEMM.
const SMALL_BATCH: usize = 4;

/// `Σ a[i]·b[i]`: with AVX2 and FMA (checked at run time) 32 lanes of fused multiply-adds,
/// otherwise eight independent partial sums the compiler vectorises. Either way the partial
/// sums are combined in a fixed order, so a given machine always gives the same bits.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        #[allow(clippy::needless_range_loop)]
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The AVX2 + FMA dot product: four 8-lane accumulators (32 elements per iteration).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads 8 floats at offsets i..i+32 ≤ n inside both slices.
    unsafe {
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    let mut total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for k in i..n {
        total += a[k] * b[k];
    }
    total
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
