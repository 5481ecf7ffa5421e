//! 2-D convolution of a batch `N × (C·H·W)` (each row one image in C,H,W order) with a weight
//! `[O, C·k·k]` (PyTorch's `[O, C, k, k]`, row-major) and a bias `[O]`, giving `N × (O·oh·ow)`.
//!
//! Forward, per sample `n`: `cols_n = im2col(x_n)` (`C·k·k × P`, `P = oh·ow`), then
//! `y_n = W · cols_n + b` (one GEMM, `O × P`, already in C,H,W order). When a gradient will
//! be needed the `N` patch matrices are kept in the node for backward; otherwise one sample's
//! is reused.
//! Backward, with `G_n = ∂L/∂y_n` (`O × P`):
//! `∂L/∂W = Σ_n G_n · cols_nᵀ` (GEMMs accumulating in sample order), `∂L/∂b_o = Σ_n Σ_p
//! G_n[o, p]`, `∂L/∂x_n = col2im(Wᵀ · G_n)`.
//!
//! One GEMM per sample rather than one per batch (`W · [cols_0 … cols_{N−1}]`) by measurement:
//! a sample's patch matrix (`288 × 196` floats for the MNIST CNN's second layer, 225 KB) stays
//! in L2 between im2col and its GEMM, the batch-wide one (14 MB) does not, and the batch-wide
//! GEMM was slower on this machine (see `cargo bench --bench conv_phases`, BENCHMARKS.md).

use super::Op;
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
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
        let kp = g.patch() * p;
        node.aux
            .reshape_for_overwrite(1, if needs { n * kp } else { kp });
        let aux = node.aux.data_mut();
        let xs = xv.data().chunks_exact(cols.max(1));
        let ys = node.value.data_mut().chunks_exact_mut(o * p);
        for (s, (y, xn)) in ys.zip(xs).enumerate() {
            let col = &mut aux[if needs { s * kp } else { 0 }..][..kp];
            im2col(xn, &g, col);
            for (yrow, &bias) in y.chunks_exact_mut(p).zip(bv.data()) {
                yrow.fill(bias);
            }
            let wd = wv.data();
            matmul(
                o,
                p,
                g.patch(),
                wd,
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

/// Grows `v` to at least `len` values (never shrinks, so a steady state allocates nothing).
fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    x: Var,
    w: Var,
    b: Var,
    g: ConvGeometry,
    node: &Node,
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
    grow(&mut scratch, g.patch() * p);
    let cols = &node.aux.data()[..g.patch() * p * n];
    weight_and_input(x, w, g, gd, cols, &mut scratch[..g.patch() * p], ctx, sink);
    *sink.scratch = scratch;
}

/// `∂L/∂W` and `∂L/∂x` from the upstream gradient `gd` (`N × O·P`) and the forward's patch
/// matrices `cols` (`N × C·k·k·P`); `dcols` holds one sample's `Wᵀ · G_n`.
#[allow(clippy::too_many_arguments)]
fn weight_and_input(
    x: Var,
    w: Var,
    g: ConvGeometry,
    gd: &[f32],
    cols: &[f32],
    dcols: &mut [f32],
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
            let (gs, cs) = (&gd[s * o * p..][..o * p], &cols[s * k * p..][..k * p]);
            matmul(
                o,
                k,
                p,
                gs,
                Transpose::No,
                cs,
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
            dcols,
            false,
        );
        col2im(dcols, &g, dxs, acc);
    }
}
