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
