//! The loops of 2-D convolution and pooling on one sample stored in C,H,W order (PyTorch's
//! contiguous layout, so a batch is `batch × (C·H·W)` rows and flatten is free).
//!
//! Convolution is lowered to a matrix product by `im2col`: the patch under every output
//! position becomes a column of `cols` (`C·k·k` rows × `out_h·out_w` columns, row index
//! `(c·k + ky)·k + kx` like PyTorch's weight `[out, in, kh, kw]`), so `W · cols` is the
//! output `[out, out_h·out_w]` of the sample. `col2im` is its adjoint: it adds every column
//! back onto the pixels it was read from.

/// The geometry of a square-kernel 2-D convolution over one `channels × height × width` input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConvGeometry {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Kernel side `k` (the kernel is `k × k`).
    pub kernel: usize,
    /// Step between output positions.
    pub stride: usize,
    /// Zero rows/columns added on every side.
    pub padding: usize,
    /// Spacing between kernel taps (1: contiguous).
    pub dilation: usize,
}

impl ConvGeometry {
    /// The kernel's extent on the input: `dilation·(k − 1) + 1`.
    pub fn span(&self) -> usize {
        self.dilation * (self.kernel.max(1) - 1) + 1
    }

    /// Output height: `(H + 2p − span) / stride + 1`, or 0 when the kernel does not fit.
    pub fn out_height(&self) -> usize {
        out_len(self.height, self.padding, self.span(), self.stride)
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        out_len(self.width, self.padding, self.span(), self.stride)
    }

    /// Rows of the patch matrix: `C·k·k`.
    pub fn patch(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// Output positions per channel: `out_h·out_w`.
    pub fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Input values per sample: `C·H·W`.
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// `(n + 2p − span) / stride + 1`, 0 when the span does not fit or the stride is 0.
pub fn out_len(n: usize, padding: usize, span: usize, stride: usize) -> usize {
    let padded = n + 2 * padding;
    if stride == 0 || span > padded {
        0
    } else {
        (padded - span) / stride + 1
    }
}

/// The output columns `[lo, hi)` whose tap at offset `t` lands inside a row of `len` pixels,
/// and the input index of output column 0 plus padding: `ix = ox·stride + t·dilation − pad`.
#[inline]
fn valid(t: usize, g: &ConvGeometry, outs: usize, len: usize) -> (usize, usize, usize) {
    let off = t * g.dilation;
    // ox·s + off ≥ p  ⇔  ox ≥ ceil((p − off)/s)
    let lo = g.padding.saturating_sub(off).div_ceil(g.stride).min(outs);
    // ox·s + off − p < len  ⇔  ox·s < len + p − off
    let hi = (len + g.padding)
        .checked_sub(off)
        .map_or(0, |room| room.div_ceil(g.stride))
        .clamp(lo, outs);
    (lo, hi, off)
}

/// Writes the patch matrix of one sample `x` (`C·H·W`) into `cols` (`patch × positions`).
pub fn im2col(x: &[f32], g: &ConvGeometry, cols: &mut [f32]) {
    im2col_strided(x, g, cols, g.positions());
}

/// [`im2col`] into a wider matrix: row `r` of the sample's patch matrix goes to
/// `cols[r·ld ..][.. positions]`, so the samples of a batch can sit side by side as the column
/// blocks of one `patch × (N·positions)` matrix (sample `s` starting at `cols[s·positions..]`).
pub fn im2col_strided(x: &[f32], g: &ConvGeometry, cols: &mut [f32], ld: usize) {
    let (oh, ow, k) = (g.out_height(), g.out_width(), g.kernel);
    let p = oh * ow;
    let hw = g.height * g.width;
    for c in 0..g.channels {
        let plane = &x[c * hw..(c + 1) * hw];
        for ky in 0..k {
            let (ylo, yhi, yoff) = valid(ky, g, oh, g.height);
            for kx in 0..k {
                let (xlo, xhi, xoff) = valid(kx, g, ow, g.width);
                let row = &mut cols[((c * k + ky) * k + kx) * ld..][..p];
                row[..ylo * ow].fill(0.0);
                row[yhi * ow..].fill(0.0);
                for oy in ylo..yhi {
                    let iy = oy * g.stride + yoff - g.padding;
                    let line = &plane[iy * g.width..(iy + 1) * g.width];
                    let out = &mut row[oy * ow..(oy + 1) * ow];
                    out[..xlo].fill(0.0);
                    out[xhi..].fill(0.0);
                    if xlo == xhi {
                        continue;
                    }
                    let first = xlo * g.stride + xoff - g.padding;
                    if g.stride == 1 {
                        out[xlo..xhi].copy_from_slice(&line[first..first + (xhi - xlo)]);
                    } else {
                        let src = line[first..].iter().step_by(g.stride);
                        for (o, &v) in out[xlo..xhi].iter_mut().zip(src) {
                            *o = v;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every entry of `cols` onto the input pixel it was read from
/// in `dx` (`C·H·W`), after zeroing `dx` unless `accumulate`.
pub fn col2im(cols: &[f32], g: &ConvGeometry, dx: &mut [f32], accumulate: bool) {
    col2im_strided(cols, g.positions(), g, dx, accumulate);
}

/// [`col2im`] reading row `r` of the sample's patch matrix from `cols[r·ld ..]` (the adjoint of
/// [`im2col_strided`]).
pub fn col2im_strided(cols: &[f32], ld: usize, g: &ConvGeometry, dx: &mut [f32], accumulate: bool) {
    if !accumulate {
        dx.fill(0.0);
    }
    let (oh, ow, k) = (g.out_height(), g.out_width(), g.kernel);
    let p = oh * ow;
    let hw = g.height * g.width;
    for c in 0..g.channels {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for ky in 0..k {
            let (ylo, yhi, yoff) = valid(ky, g, oh, g.height);
            for kx in 0..k {
                let (xlo, xhi, xoff) = valid(kx, g, ow, g.width);
                let row = &cols[((c * k + ky) * k + kx) * ld..][..p];
                for oy in ylo..yhi {
                    let iy = oy * g.stride + yoff - g.padding;
                    let line = &mut plane[iy * g.width..(iy + 1) * g.width];
                    let src = &row[oy * ow + xlo..oy * ow + xhi];
                    if src.is_empty() {
                        continue;
                    }
                    let first = xlo * g.stride + xoff - g.padding;
                    if g.stride == 1 {
                        for (d, &v) in line[first..first + src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in line[first..].iter_mut().step_by(g.stride).zip(src) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// The geometry of a pooling window `k × k` moved by `stride` over `channels × height × width`
/// (no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PoolGeometry {
    /// Channels (pooled independently).
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Window side.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
}

impl PoolGeometry {
    /// Output height `(H − k) / stride + 1` (0 when the window does not fit).
    pub fn out_height(&self) -> usize {
        out_len(self.height, 0, self.kernel, self.stride)
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        out_len(self.width, 0, self.kernel, self.stride)
    }

    /// Output values per sample: `C·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.channels * self.out_height() * self.out_width()
    }

    /// Input values per sample: `C·H·W`.
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The largest value of every window of one sample `x` into `y`, and its index in `x` into
    /// `arg` (the first maximum; NaN wins, so it propagates).
    pub fn max(&self, x: &[f32], y: &mut [f32], arg: &mut [f32]) {
        if self.kernel == 2 && self.stride == 2 {
            return self.max_2x2(x, y, arg);
        }
        let (oh, ow, k, s) = (
            self.out_height(),
            self.out_width(),
            self.kernel,
            self.stride,
        );
        let hw = self.height * self.width;
        let mut o = 0;
        for c in 0..self.channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, c * hw);
                    for ky in 0..k {
                        let base = c * hw + (oy * s + ky) * self.width + ox * s;
                        for (i, &v) in x[base..base + k].iter().enumerate() {
                            // Non-short-circuit `|`/`&` and selects, not branches: a window's
                            // arg-max is data-dependent and would mispredict half the time.
                            let take = (v > best) | (v.is_nan() & !best.is_nan());
                            best = if take { v } else { best };
                            at = if take { base + i } else { at };
                        }
                    }
                    y[o] = best;
                    arg[o] = at as f32;
                    o += 1;
                }
            }
        }
    }

    /// [`PoolGeometry::max`] for 2×2 windows with stride 2, two input rows at a time, with the
    /// same order of comparisons (so the same results).
    fn max_2x2(&self, x: &[f32], y: &mut [f32], arg: &mut [f32]) {
        let (oh, ow, w) = (self.out_height(), self.out_width(), self.width);
        let hw = self.height * w;
        let pick = |(best, at): (f32, usize), v: f32, i: usize| {
            let take = (v > best) | (v.is_nan() & !best.is_nan());
            (if take { v } else { best }, if take { i } else { at })
        };
        let rows = y.chunks_exact_mut(ow).zip(arg.chunks_exact_mut(ow));
        for (r, (yr, ar)) in rows.enumerate() {
            let (c, oy) = (r / oh, r % oh);
            let top = c * hw + 2 * oy * w;
            let (r0, r1) = (&x[top..top + 2 * ow], &x[top + w..top + w + 2 * ow]);
            let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            for (ox, ((yv, av), (a, b))) in yr.iter_mut().zip(ar.iter_mut()).zip(pairs).enumerate()
            {
                let i = top + 2 * ox;
                let m = pick((f32::NEG_INFINITY, i), a[0], i);
                let m = pick(m, a[1], i + 1);
                let m = pick(m, b[0], i + w);
                let (best, at) = pick(m, b[1], i + w + 1);
                *yv = best;
                *av = at as f32;
            }
        }
    }

    /// The largest value of every window of one sample `x` into `y`, as [`PoolGeometry::max`]
    /// gives it but without the arg-max (evaluation: no gradient will be routed).
    pub fn max_values(&self, x: &[f32], y: &mut [f32]) {
        if self.kernel != 2 || self.stride != 2 {
            return self.max_general_values(x, y);
        }
        let (oh, ow, w) = (self.out_height(), self.out_width(), self.width);
        let hw = self.height * w;
        for (r, yr) in y.chunks_exact_mut(ow).enumerate() {
            let (c, oy) = (r / oh, r % oh);
            let top = c * hw + 2 * oy * w;
            let (r0, r1) = (&x[top..top + 2 * ow], &x[top + w..top + w + 2 * ow]);
            let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            for (yv, (a, b)) in yr.iter_mut().zip(pairs) {
                *yv = max_nan(max_nan(max_nan(a[0], a[1]), b[0]), b[1]);
            }
        }
    }

    /// Window maxima for any window and stride (value only).
    fn max_general_values(&self, x: &[f32], y: &mut [f32]) {
        let (oh, ow, k, s) = (
            self.out_height(),
            self.out_width(),
            self.kernel,
            self.stride,
        );
        let hw = self.height * self.width;
        let mut o = 0;
        for c in 0..self.channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut best = f32::NEG_INFINITY;
                    for ky in 0..k {
                        let base = c * hw + (oy * s + ky) * self.width + ox * s;
                        for &v in &x[base..base + k] {
                            best = max_nan(best, v);
                        }
                    }
                    y[o] = best;
                    o += 1;
                }
            }
        }
    }

    /// Calls `f(out_index, in_index)` for every input pixel of every window, window by window
    /// in output order, pixels in row-major order inside a window.
    #[inline]
    pub fn for_each_tap(&self, mut f: impl FnMut(usize, usize)) {
        let (oh, ow, k, s) = (
            self.out_height(),
            self.out_width(),
            self.kernel,
            self.stride,
        );
        let hw = self.height * self.width;
        let mut o = 0;
        for c in 0..self.channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ky in 0..k {
                        let base = c * hw + (oy * s + ky) * self.width + ox * s;
                        for kx in 0..k {
                            f(o, base + kx);
                        }
                    }
                    o += 1;
                }
            }
        }
    }
}

/// `max(best, v)` as the arg-max scan takes it: `v` wins when larger, and a NaN wins over a
/// number (so NaN propagates), the first NaN staying.
#[inline]
fn max_nan(best: f32, v: f32) -> f32 {
    let take = (v > best) | (v.is_nan() & !best.is_nan());
    if take { v } else { best }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn im2col_of_a_padded_3x3_input() {
        let g = ConvGeometry {
            channels: 1,
            height: 2,
            width: 2,
            kernel: 3,
            stride: 1,
            padding: 1,
            dilation: 1,
        };
        assert_eq!((g.out_height(), g.out_width(), g.patch()), (2, 2, 9));
        let x = [1.0, 2.0, 3.0, 4.0];
        let mut cols = vec![f32::NAN; 36];
        im2col(&x, &g, &mut cols);
        // Tap (1, 1) is the centre: it reads every pixel where it is.
        assert_eq!(&cols[4 * 4..5 * 4], &[1.0, 2.0, 3.0, 4.0]);
        // Tap (0, 0) reads up-left: only output (1, 1) sees pixel (0, 0).
        assert_eq!(&cols[0..4], &[0.0, 0.0, 0.0, 1.0]);
        let mut dx = vec![0.0; 4];
        col2im(&[1.0; 36], &g, &mut dx, false);
        // Every pixel of a 2×2 input is under 4 taps of a 3×3 kernel with padding 1.
        assert_eq!(dx, vec![4.0; 4]);
    }

    #[test]
    fn strided_dilated_im2col_matches_the_definition() {
        for (stride, padding, dilation) in [(2, 1, 1), (1, 2, 2), (3, 0, 1), (2, 3, 2)] {
            let g = ConvGeometry {
                channels: 2,
                height: 7,
                width: 6,
                kernel: 3,
                stride,
                padding,
                dilation,
            };
            let x: Vec<f32> = (0..g.input_len()).map(|i| i as f32 + 1.0).collect();
            let mut cols = vec![f32::NAN; g.patch() * g.positions()];
            im2col(&x, &g, &mut cols);
            let (ow, p) = (g.out_width(), g.positions());
            for (r, row) in cols.chunks(p).enumerate() {
                let (c, ky, kx) = (r / 9, r / 3 % 3, r % 3);
                for (q, &v) in row.iter().enumerate() {
                    let iy = (q / ow * stride + ky * dilation) as isize - padding as isize;
                    let ix = (q % ow * stride + kx * dilation) as isize - padding as isize;
                    let inside = (0..7).contains(&iy) && (0..6).contains(&ix);
                    let want = if inside {
                        x[c * 42 + iy as usize * 6 + ix as usize]
                    } else {
                        0.0
                    };
                    assert_eq!(v, want, "{g:?} row {r} position {q}");
                }
            }
            // col2im is im2col's adjoint: <im2col(x), c> = <x, col2im(c)>.
            let cv: Vec<f32> = (0..cols.len()).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut dx = vec![0.0; x.len()];
            col2im(&cv, &g, &mut dx, false);
            let lhs: f64 = cols.iter().zip(&cv).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| (a * b) as f64).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }

    #[test]
    fn max_values_match_the_arg_max_scan() {
        for (kernel, stride) in [(2, 2), (3, 2), (2, 1)] {
            let g = PoolGeometry {
                channels: 2,
                height: 6,
                width: 7,
                kernel,
                stride,
            };
            let mut x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37) % 11) as f32).collect();
            x[9] = f32::NAN;
            let (mut y, mut arg) = (vec![0.0; g.output_len()], vec![0.0; g.output_len()]);
            g.max(&x, &mut y, &mut arg);
            let mut v = vec![0.0; g.output_len()];
            g.max_values(&x, &mut v);
            let bits = |a: &[f32]| a.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&v), "{g:?}");
        }
    }

    #[test]
    fn sizes_that_do_not_fit_are_zero() {
        assert_eq!(out_len(2, 0, 3, 1), 0);
        assert_eq!(out_len(5, 0, 2, 2), 2);
        assert_eq!(out_len(28, 1, 3, 1), 28);
    }
}
