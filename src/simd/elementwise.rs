//! Elementwise kernels: gathering `u8` pixels into `f32` rows, sums of gradient slices, a
//! finiteness check, ReLU and its derivative. Each takes the [`super::Level`] to run at; none
//! fuses a multiply-add or reorders a sum, so every level gives the same bits.

multiversion! {
    /// `out[i] = src[i] as f32 · scale`.
    pub fn u8_to_f32(src: &[u8], scale: f32, out: &mut [f32]) => u8_to_f32_body
}

#[inline(always)]
fn u8_to_f32_body(src: &[u8], scale: f32, out: &mut [f32]) {
    for (o, &b) in out.iter_mut().zip(src) {
        *o = f32::from(b) * scale;
    }
}

multiversion! {
    /// `out[i] = (a[i] + b[i]) · scale` (the scale skipped when it is 1).
    pub fn add_scaled(a: &[f32], b: &[f32], scale: f32, out: &mut [f32]) => add_scaled_body
}

#[inline(always)]
fn add_scaled_body(a: &[f32], b: &[f32], scale: f32, out: &mut [f32]) {
    if scale == 1.0 {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    } else {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = (x + y) * scale;
        }
    }
}

multiversion! {
    /// `out[i] += x[i]`.
    pub fn add_assign(out: &mut [f32], x: &[f32]) => add_assign_body
}

#[inline(always)]
fn add_assign_body(out: &mut [f32], x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += *v;
    }
}

multiversion! {
    /// `out[i] = x[i] · scale`.
    pub fn scale_into(x: &[f32], scale: f32, out: &mut [f32]) => scale_into_body
}

#[inline(always)]
fn scale_into_body(x: &[f32], scale: f32, out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = v * scale;
    }
}

multiversion! {
    /// True when no element is NaN or ±inf. `v · 0` is NaN exactly for non-finite `v`, and a
    /// sum of zeros stays zero; sixteen independent partial sums (one AVX-512 vector, two AVX2
    /// ones) keep the pass vectorised, in the same order at every level.
    pub fn all_finite(g: &[f32]) -> bool => all_finite_body
}

#[inline(always)]
fn all_finite_body(g: &[f32]) -> bool {
    let mut acc = [0.0f32; 16];
    let chunks = g.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * 0.0;
        }
    }
    let tail: f32 = rest.iter().map(|&v| v * 0.0).sum();
    acc.iter().sum::<f32>() + tail == 0.0
}

multiversion! {
    /// ReLU: `y[i] = max(x[i], 0)`.
    pub fn relu(x: &[f32], y: &mut [f32]) => relu_body
}

#[inline(always)]
fn relu_body(x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.max(0.0);
    }
}

multiversion! {
    /// ReLU's chain rule: `d[i] (+)= u[i]` where `x[i] > 0`, else `(+)= 0`; accumulates when
    /// `accumulate`.
    pub fn relu_backward(x: &[f32], upstream: &[f32], downstream: &mut [f32], accumulate: bool)
        => relu_backward_body
}

#[inline(always)]
fn relu_backward_body(x: &[f32], upstream: &[f32], downstream: &mut [f32], accumulate: bool) {
    if accumulate {
        for ((d, &u), &xv) in downstream.iter_mut().zip(upstream).zip(x) {
            *d += if xv > 0.0 { u } else { 0.0 };
        }
    } else {
        for ((d, &u), &xv) in downstream.iter_mut().zip(upstream).zip(x) {
            *d = if xv > 0.0 { u } else { 0.0 };
        }
    }
}
