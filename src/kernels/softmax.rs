//! Row-wise softmax and log-softmax with the log-sum-exp shift, so large logits never overflow:
//! `log_softmax(z)_j = z_j − (m + log Σ_k e^(z_k − m))` with `m = max_k z_k`.

/// `out` row `r` = softmax of `logits` row `r`; both `rows × cols`.
pub fn softmax_rows(logits: &[f32], cols: usize, out: &mut [f32]) {
    if cols == 0 {
        return;
    }
    for (z, p) in logits.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (pv, &zv) in p.iter_mut().zip(z) {
            *pv = (zv - m).exp();
            sum += *pv;
        }
        let inv = 1.0 / sum;
        for pv in p.iter_mut() {
            *pv *= inv;
        }
    }
}

/// `out` row `r` = log-softmax of `logits` row `r`; both `rows × cols`.
pub fn log_softmax_rows(logits: &[f32], cols: usize, out: &mut [f32]) {
    if cols == 0 {
        return;
    }
    for (z, o) in logits.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let lse = log_sum_exp(z);
        for (ov, &zv) in o.iter_mut().zip(z) {
            *ov = zv - lse;
        }
    }
}

/// `log Σ e^(z_k)`, shifted by the maximum for stability.
pub fn log_sum_exp(z: &[f32]) -> f32 {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !m.is_finite() {
        return m;
    }
    let s: f32 = z.iter().map(|&v| (v - m).exp()).sum();
    m + s.ln()
}

/// Cross-entropy of one row of scores against class `y`: `−log softmax(z)_y`, computed as
/// `(m − z_y) + ln(1 + Σ_{k≠k*} e^(z_k − m))` with `m = z_k*` the largest score. Keeping the
/// `1 +` out of the sum (`ln_1p`) gives a confident prediction's small loss to full relative
/// precision, where `log Σ e^z − z_y` would lose it to the cancellation of two large numbers
/// (that precision is what lets finite differences check gradients of trained models).
/// An empty row or an out-of-range `y` gives NaN.
pub fn cross_entropy(z: &[f32], y: usize) -> f32 {
    let top = argmax(z);
    let (Some(&m), Some(&zy)) = (z.get(top), z.get(y)) else {
        return f32::NAN;
    };
    if !m.is_finite() {
        return m - zy;
    }
    let rest: f32 = z
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != top)
        .map(|(_, &v)| (v - m).exp())
        .sum();
    (m - zy) + rest.ln_1p()
}

/// Index of the largest value of a row (the first one on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `−log softmax(z)_y` in f64.
    fn reference(z: &[f32], y: usize) -> f64 {
        let m = z
            .iter()
            .map(|&v| f64::from(v))
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|&v| (f64::from(v) - m).exp()).sum();
        m + s.ln() - f64::from(z[y])
    }

    #[test]
    fn cross_entropy_matches_f64_and_keeps_small_losses_precise() {
        let rows: [(&[f32], usize); 5] = [
            (&[0.1, -0.4, 2.0], 0),
            (&[0.1, -0.4, 2.0], 2),
            (&[3.0, 3.0], 1),
            // Confident and right: the loss ≈ e^(−12) + e^(−15) ≈ 6.5e-6.
            (&[14.0, 2.0, -1.0], 0),
            (&[-30.0, 30.0], 0),
        ];
        for (z, y) in rows {
            let (got, want) = (f64::from(cross_entropy(z, y)), reference(z, y));
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-30),
                "{z:?} class {y}: {got} vs {want}"
            );
        }
        assert!(cross_entropy(&[], 0).is_nan());
        assert!(cross_entropy(&[1.0], 3).is_nan());
        assert!(cross_entropy(&[f32::NAN, 1.0], 1).is_nan());
        assert_eq!(cross_entropy(&[f32::INFINITY, 1.0], 1), f32::INFINITY);
    }

    #[test]
    fn softmax_rows_sum_to_one_even_for_huge_logits() {
        let z = [1000.0, 1001.0, 999.0, -5.0, 0.0, 5.0];
        let mut p = [0.0; 6];
        softmax_rows(&z, 3, &mut p);
        for row in p.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(row.iter().all(|v| v.is_finite()));
        }
        let mut l = [0.0; 6];
        log_softmax_rows(&z, 3, &mut l);
        // z − lse is computed at the logits' magnitude: one f32 ulp at 1000 is 6e-5.
        for (lv, pv) in l.iter().zip(&p) {
            assert!((lv.exp() - pv).abs() < 2e-4, "{lv} vs {pv}");
        }
    }
}
