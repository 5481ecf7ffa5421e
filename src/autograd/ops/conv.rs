//! 2-D convolution of a batch `N × (C·H·W)` (each row one image in C,H,W order) with a weight
//! `[O, C·k·k]` (PyTorch's `[O, C, k, k]`, row-major) and a bias `[O]`, giving `N × (O·oh·ow)`.
//!
//! Forward, per sample `n`: `cols_n = im2col(x_n)` (`C·k·k × P`, `P = oh·ow`), then
//! `y_n = W · cols_n + b` (one GEMM, `O × P`, already in C,H,W order).
//! Backward, with `G_n = ∂L/∂y_n` (`O × P`):
//! `∂L/∂W = Σ_n G_n · cols_nᵀ`, `∂L/∂b_o = Σ_n Σ_p G_n[o, p]`,
//! `∂L/∂x_n = col2im(Wᵀ · G_n)`. The patch matrix is rebuilt in backward (in the workspace's
//! scratch) rather than kept from forward, so memory stays one sample's patch matrix.

use super::Op;
use crate::autograd::tape::{Ctx, Sink, Tape, Var};
use crate::error::NablaError;
use crate::kernels::conv::{ConvGeometry, col2im, im2col};
use crate::kernels::{Transpose, matmul};
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Convolves every row of `x` (an image `g.channels × g.height × g.width`) with the weight
    /// `w` (`O × C·k·k`) and adds the bias `b` (`1 × O`).
    pub fn conv2d(&mut self, x: Var, w: Var, b: Var, g: ConvGeometry) -> Result<Var, NablaError> {
        let (n, cols) = self.shape(x);
        let (o, patch) = self.shape(w);
        let p = g.positions();
        if cols != g.input_len() || patch != g.patch() || self.shape(b) != (1, o) || p == 0 {
            return Err(NablaError::Shape(format!(
                "conv2d: input {n}×{cols} for {}×{}×{}, weight {o}×{patch} for a {k}×{k} kernel \
                 ({} wanted), bias {:?}, output {}×{}",
                g.channels,
                g.height,
                g.width,
                g.patch(),
                self.shape(b),
                g.out_height(),
                g.out_width(),
                k = g.kernel,
            )));
        }
        let needs = self.needs_grad(x) || self.needs_grad(w) || self.needs_grad(b);
        let out = self.push(Op::Conv2d { x, w, b, g }, n, o * p, needs);
        let (xv, wv, bv, node) = self.io3(x, w, b, out);
        node.aux.reshape_for_overwrite(1, g.patch() * p);
        let col = node.aux.data_mut();
        let xs = xv.data().chunks_exact(cols.max(1));
        for (y, xn) in node.value.data_mut().chunks_exact_mut(o * p).zip(xs) {
            im2col(xn, &g, col);
            for (yrow, &bias) in y.chunks_exact_mut(p).zip(bv.data()) {
                yrow.fill(bias);
            }
            matmul(
                o,
                p,
                g.patch(),
                wv.data(),
                Transpose::No,
                col,
                Transpose::No,
                y,
                true,
            );
        }
        Ok(out)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    x: Var,
    w: Var,
    b: Var,
    g: ConvGeometry,
    up: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let (o, p) = (ctx.value(w).rows(), g.positions());
    let n = ctx.value(x).rows();
    let gd = up.data();
    if let Some((db, acc)) = sink.slot(ctx, b) {
        for (ch, d) in db.data_mut().iter_mut().enumerate() {
            let s: f32 = (0..n)
                .map(|s| gd[(s * o + ch) * p..][..p].iter().sum::<f32>())
                .sum();
            if acc { *d += s } else { *d = s }
        }
    }
    // Taken out of the sink (no allocation: an empty Vec is left behind) and put back at the end.
    let mut scratch = std::mem::take(sink.scratch);
    if scratch.len() < g.patch() * p {
        scratch.resize(g.patch() * p, 0.0);
    }
    weight_and_input(x, w, g, gd, &mut scratch[..g.patch() * p], ctx, sink);
    *sink.scratch = scratch;
}

/// `∂L/∂W` and `∂L/∂x`, with `scratch` holding one sample's patch matrix at a time.
fn weight_and_input(
    x: Var,
    w: Var,
    g: ConvGeometry,
    gd: &[f32],
    scratch: &mut [f32],
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let (xv, wv) = (ctx.value(x), ctx.value(w));
    let (o, k, p, n) = (wv.rows(), g.patch(), g.positions(), xv.rows());
    if let Some((dw, acc)) = sink.slot(ctx, w) {
        if n == 0 && !acc {
            dw.fill(0.0);
        }
        let dw = dw.data_mut();
        for s in 0..n {
            im2col(
                &xv.data()[s * g.input_len()..][..g.input_len()],
                &g,
                scratch,
            );
            let gs = &gd[s * o * p..][..o * p];
            matmul(
                o,
                k,
                p,
                gs,
                Transpose::No,
                scratch,
                Transpose::Yes,
                dw,
                acc || s > 0,
            );
        }
    }
    let Some((dx, acc)) = sink.slot(ctx, x) else {
        return;
    };
    let len = g.input_len();
    for (s, dxs) in dx.data_mut().chunks_exact_mut(len.max(1)).enumerate() {
        let gs = &gd[s * o * p..][..o * p];
        matmul(
            k,
            p,
            o,
            wv.data(),
            Transpose::Yes,
            gs,
            Transpose::No,
            scratch,
            false,
        );
        col2im(scratch, &g, dxs, acc);
    }
}
