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

/// The input index read by output position `o` at tap `t`, if it is inside the input.
#[inline]
fn source(o: usize, t: usize, g: &ConvGeometry, len: usize) -> Option<usize> {
    (o * g.stride + t * g.dilation)
        .checked_sub(g.padding)
        .filter(|&i| i < len)
}

/// Writes the patch matrix of one sample `x` (`C·H·W`) into `cols` (`patch × positions`).
pub fn im2col(x: &[f32], g: &ConvGeometry, cols: &mut [f32]) {
    let (oh, ow, k) = (g.out_height(), g.out_width(), g.kernel);
    let p = oh * ow;
    let hw = g.height * g.width;
    for c in 0..g.channels {
        let plane = &x[c * hw..(c + 1) * hw];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((c * k + ky) * k + kx) * p..][..p];
                for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                    let Some(iy) = source(oy, ky, g, g.height) else {
                        out.fill(0.0);
                        continue;
                    };
                    let line = &plane[iy * g.width..(iy + 1) * g.width];
                    for (ox, o) in out.iter_mut().enumerate() {
                        *o = source(ox, kx, g, g.width).map_or(0.0, |ix| line[ix]);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every entry of `cols` onto the input pixel it was read from
/// in `dx` (`C·H·W`), after zeroing `dx` unless `accumulate`.
pub fn col2im(cols: &[f32], g: &ConvGeometry, dx: &mut [f32], accumulate: bool) {
    if !accumulate {
        dx.fill(0.0);
    }
    let (oh, ow, k) = (g.out_height(), g.out_width(), g.kernel);
    let p = oh * ow;
    let hw = g.height * g.width;
    for c in 0..g.channels {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for ky in 0..k {
            for kx in 0..k {
                let row = &cols[((c * k + ky) * k + kx) * p..][..p];
                for (oy, src) in row.chunks_exact(ow).enumerate() {
                    let Some(iy) = source(oy, ky, g, g.height) else {
                        continue;
                    };
                    let line = &mut plane[iy * g.width..(iy + 1) * g.width];
                    for (ox, &v) in src.iter().enumerate() {
                        if let Some(ix) = source(ox, kx, g, g.width) {
                            line[ix] += v;
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

    /// Calls `f(out_index, in_index)` for every input pixel of every window, window by window
    /// in output order, pixels in row-major order inside a window.
    #[inline]
    pub fn for_each_tap(&self, mut f: impl FnMut(usize, usize)) {
        let (oh, ow, k, s) = (self.out_height(), self.out_width(), self.kernel, self.stride);
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
        col2im(&vec![1.0; 36], &g, &mut dx, false);
        // Every pixel of a 2×2 input is under 4 taps of a 3×3 kernel with padding 1.
        assert_eq!(dx, vec![4.0; 4]);
    }

    #[test]
    fn sizes_that_do_not_fit_are_zero() {
        assert_eq!(out_len(2, 0, 3, 1), 0);
        assert_eq!(out_len(5, 0, 2, 2), 2);
        assert_eq!(out_len(28, 1, 3, 1), 28);
    }
}
