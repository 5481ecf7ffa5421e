//! Pooling over the windows of images stored one per row in C,H,W order: max pooling (the
//! gradient goes to each window's arg-max), average pooling, and global average pooling (one
//! mean per channel, PyTorch's `AdaptiveAvgPool2d(1)`).
//!
//! Backward: max: `∂L/∂x_i = Σ_{windows whose arg-max is i} G_window`; average:
//! `∂L/∂x_i = Σ_{windows holding i} G_window / k²`; global: `∂L/∂x_{c,p} = G_c / (H·W)`.

use super::Op;
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
use crate::error::NablaError;
use crate::kernels::conv::PoolGeometry;
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Max pooling of every row of `a` (an image `g.channels × g.height × g.width`).
    pub fn max_pool2d(&mut self, a: Var, g: PoolGeometry) -> Result<Var, NablaError> {
        let (n, len) = check(self, a, &g, "max_pool2d")?;
        let needs = self.needs_grad(a);
        let out = self.push(Op::MaxPool2d { a }, n, g.output_len(), needs);
        let (x, node) = self.io1(a, out);
        if !needs {
            // Evaluation: no gradient to route, so no arg-max to keep.
            let rows = node.value.data_mut().chunks_exact_mut(g.output_len());
            for (y, xs) in rows.zip(x.data().chunks_exact(len)) {
                g.max_values(xs, y);
            }
            return Ok(out);
        }
        // aux: the arg-max of every window, as an index inside its sample (exact in f32 below 2²⁴).
        node.aux.reshape_for_overwrite(n, g.output_len());
        let rows = node.value.data_mut().chunks_exact_mut(g.output_len());
        let arg = node.aux.data_mut().chunks_exact_mut(g.output_len());
        for ((y, am), xs) in rows.zip(arg).zip(x.data().chunks_exact(len)) {
            g.max(xs, y, am);
        }
        Ok(out)
    }

    /// Average pooling of every row of `a` (an image `g.channels × g.height × g.width`).
    pub fn avg_pool2d(&mut self, a: Var, g: PoolGeometry) -> Result<Var, NablaError> {
        let (n, len) = check(self, a, &g, "avg_pool2d")?;
        let out = self.push(
            Op::AvgPool2d { a, g },
            n,
            g.output_len(),
            self.needs_grad(a),
        );
        let (x, node) = self.io1(a, out);
        let inv = 1.0 / (g.kernel * g.kernel) as f32;
        let rows = node.value.data_mut().chunks_exact_mut(g.output_len());
        for (y, xs) in rows.zip(x.data().chunks_exact(len)) {
            y.fill(0.0);
            g.for_each_tap(|o, i| y[o] += xs[i]);
            y.iter_mut().for_each(|v| *v *= inv);
        }
        Ok(out)
    }

    /// The mean of each of the `channels` planes of every row of `a`: `N × C`.
    pub fn global_avg_pool(&mut self, a: Var, channels: usize) -> Result<Var, NablaError> {
        let (n, cols) = self.shape(a);
        if channels == 0 || cols % channels != 0 || cols == 0 {
            return Err(NablaError::Shape(format!(
                "global_avg_pool: {cols} values per row are not {channels} channels"
            )));
        }
        let hw = cols / channels;
        let out = self.push(Op::GlobalAvgPool { a }, n, channels, self.needs_grad(a));
        let (x, node) = self.io1(a, out);
        for (y, plane) in node
            .value
            .data_mut()
            .iter_mut()
            .zip(x.data().chunks_exact(hw))
        {
            *y = plane.iter().sum::<f32>() / hw as f32;
        }
        Ok(out)
    }
}

/// The batch size and row length of `a`, checked against the pooling geometry.
fn check(tape: &Tape, a: Var, g: &PoolGeometry, op: &str) -> Result<(usize, usize), NablaError> {
    let (n, cols) = tape.shape(a);
    if cols != g.input_len() || g.output_len() == 0 {
        return Err(NablaError::Shape(format!(
            "{op}: {cols} values per row for {}×{}×{}, window {k}×{k} stride {} gives {}×{}",
            g.channels,
            g.height,
            g.width,
            g.stride,
            g.out_height(),
            g.out_width(),
            k = g.kernel,
        )));
    }
    Ok((n, cols))
}

/// Scatters each output gradient to the input pixel `to(out_index)` picks, or spreads it.
fn scatter(
    dx: &mut Tensor,
    acc: bool,
    up: &Tensor,
    len: usize,
    mut each: impl FnMut(usize, &[f32], &mut [f32]),
) {
    if !acc {
        dx.fill(0.0);
    }
    let olen = up.cols();
    for (s, d) in dx.data_mut().chunks_exact_mut(len).enumerate() {
        each(s, &up.data()[s * olen..][..olen], d);
    }
}

pub(super) fn max_backward(a: Var, node: &Node, up: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let len = ctx.value(a).cols();
    let olen = up.cols();
    let arg = node.aux.data();
    if let Some((dx, acc)) = sink.slot(ctx, a) {
        scatter(dx, acc, up, len, |s, g, d| {
            for (o, &gv) in g.iter().enumerate() {
                d[arg[s * olen + o] as usize] += gv;
            }
        });
    }
}

pub(super) fn avg_backward(a: Var, g: PoolGeometry, up: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let inv = 1.0 / (g.kernel * g.kernel) as f32;
    if let Some((dx, acc)) = sink.slot(ctx, a) {
        scatter(dx, acc, up, g.input_len(), |_, gr, d| {
            g.for_each_tap(|o, i| d[i] += gr[o] * inv);
        });
    }
}

pub(super) fn global_backward(a: Var, up: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let (cols, channels) = (ctx.value(a).cols(), up.cols());
    let hw = cols / channels.max(1);
    let inv = 1.0 / hw as f32;
    if let Some((dx, acc)) = sink.slot(ctx, a) {
        super::write(dx.data_mut(), acc, |i| up.data()[i / hw] * inv);
    }
}
