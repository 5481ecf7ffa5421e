//! Batch normalisation over the channels of images stored one per row in C,H,W order
//! (PyTorch's `BatchNorm2d`, training mode), and the per-channel affine map `x·s_c + t_c` that
//! evaluation mode uses with the running statistics.
//!
//! Each channel `c` is normalised over its `M = N·H·W` values (every sample, every pixel):
//! `μ_c`, `σ²_c` (biased), `x̂ = (x − μ_c)/sqrt(σ²_c + ε)`, `y = γ_c·x̂ + β_c`. Backward, with
//! `d̂ = G·γ_c`: `∂L/∂x = (1/M)·(1/sqrt(σ²_c + ε))·(M·d̂ − Σ d̂ − x̂·Σ d̂·x̂)` (sums over the
//! channel's `M` values), `∂L/∂γ_c = Σ G·x̂`, `∂L/∂β_c = Σ G`.

use super::Op;
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
use crate::error::NablaError;
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Batch norm of `x` (`N × C·H·W`) over its `C` channels, with scale `gamma` and shift
    /// `beta` (`1 × C`), using this batch's statistics (read them with
    /// [`Tape::batch_statistics`]).
    pub fn batch_norm2d(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    ) -> Result<Var, NablaError> {
        let (n, cols, c) = channel_shapes(self, x, gamma, beta, "batch_norm2d")?;
        if n == 0 {
            return Err(NablaError::Shape("batch_norm2d of an empty batch".into()));
        }
        let hw = cols / c;
        let needs = self.needs_grad(x) || self.needs_grad(gamma) || self.needs_grad(beta);
        let op = Op::BatchNorm2d {
            x,
            gamma,
            beta,
            eps,
        };
        let out = self.push(op, n, cols, needs);
        let (xv, gv, bv, node) = self.io3(x, gamma, beta, out);
        // aux: x̂ (N·C·H·W values), then the C means, then the C variances.
        node.aux.reshape_for_overwrite(1, n * cols + 2 * c);
        let (xhat, stats) = node.aux.data_mut().split_at_mut(n * cols);
        let (mean, var) = stats.split_at_mut(c);
        let m = (n * hw) as f32;
        for ch in 0..c {
            let planes = || xv.data().chunks_exact(hw).skip(ch).step_by(c);
            let mu = planes().map(|p| p.iter().sum::<f32>()).sum::<f32>() / m;
            let v = planes()
                .map(|p| p.iter().map(|x| (x - mu) * (x - mu)).sum::<f32>())
                .sum::<f32>()
                / m;
            (mean[ch], var[ch]) = (mu, v);
        }
        let planes = xhat
            .chunks_exact_mut(hw)
            .zip(node.value.data_mut().chunks_exact_mut(hw));
        for (i, ((h, y), xp)) in planes.zip(xv.data().chunks_exact(hw)).enumerate() {
            let ch = i % c;
            let inv = 1.0 / (var[ch] + eps).sqrt();
            let (g, b) = (gv.data()[ch], bv.data()[ch]);
            for ((h, y), &x) in h.iter_mut().zip(y.iter_mut()).zip(xp) {
                *h = (x - mean[ch]) * inv;
                *y = g * *h + b;
            }
        }
        Ok(out)
    }

    /// `x·scale_c + shift_c` for every value of channel `c` of every row of `x` (`N × C·H·W`);
    /// `scale` and `shift` are `1 × C`. Backward: `∂L/∂x = G·s_c`,
    /// `∂L/∂s_c = Σ G·x`, `∂L/∂t_c = Σ G` over the channel.
    pub fn affine_channels(&mut self, x: Var, scale: Var, shift: Var) -> Result<Var, NablaError> {
        let (n, cols, c) = channel_shapes(self, x, scale, shift, "affine_channels")?;
        let hw = cols / c;
        let needs = self.needs_grad(x) || self.needs_grad(scale) || self.needs_grad(shift);
        let out = self.push(Op::AffineChannels { x, scale, shift }, n, cols, needs);
        let (xv, sv, tv, node) = self.io3(x, scale, shift, out);
        let planes = node.value.data_mut().chunks_exact_mut(hw);
        for (i, (y, xp)) in planes.zip(xv.data().chunks_exact(hw)).enumerate() {
            let (s, t) = (sv.data()[i % c], tv.data()[i % c]);
            for (y, &x) in y.iter_mut().zip(xp) {
                *y = x * s + t;
            }
        }
        Ok(out)
    }
}

/// `(N, C·H·W, C)` after checking that `a` and `b` are `1 × C` and `C` divides the row.
fn channel_shapes(
    tape: &Tape,
    x: Var,
    a: Var,
    b: Var,
    op: &str,
) -> Result<(usize, usize, usize), NablaError> {
    let (n, cols) = tape.shape(x);
    let c = tape.shape(a).1;
    if c == 0 || tape.shape(a) != (1, c) || tape.shape(b) != (1, c) || cols % c != 0 || cols == 0 {
        return Err(NablaError::Shape(format!(
            "{op}: {n}×{cols} input with per-channel vectors {:?} and {:?}",
            tape.shape(a),
            tape.shape(b)
        )));
    }
    Ok((n, cols, c))
}

/// Per channel, `Σ f(plane value index)` over every plane of that channel.
fn channel_sums(dst: &mut [f32], acc: bool, hw: usize, len: usize, f: impl Fn(usize) -> f32) {
    let c = dst.len();
    for (ch, d) in dst.iter_mut().enumerate() {
        let s: f32 = (ch..len / hw)
            .step_by(c)
            .map(|plane| (plane * hw..(plane + 1) * hw).map(&f).sum::<f32>())
            .sum();
        if acc { *d += s } else { *d = s }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn batch_norm2d_backward(
    x: Var,
    gamma: Var,
    beta: Var,
    eps: f32,
    node: &Node,
    up: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let (n, cols) = node.value.shape();
    let gam = ctx.value(gamma).data();
    let c = gam.len();
    let hw = cols / c;
    let (xhat, stats) = node.aux.data().split_at(n * cols);
    let var = &stats[c..2 * c];
    let gd = up.data();
    if let Some((dx, acc)) = sink.slot(ctx, x) {
        let m = (n * hw) as f32;
        let dx = dx.data_mut();
        for ch in 0..c {
            let planes = || (ch..n * c).step_by(c).map(|p| p * hw..(p + 1) * hw);
            let (mut sd, mut sdx) = (0.0f32, 0.0f32);
            for r in planes() {
                for i in r {
                    sd += gd[i] * gam[ch];
                    sdx += gd[i] * gam[ch] * xhat[i];
                }
            }
            let k = 1.0 / (var[ch] + eps).sqrt() / m;
            for r in planes() {
                for i in r {
                    let v = k * (m * gd[i] * gam[ch] - sd - xhat[i] * sdx);
                    if acc { dx[i] += v } else { dx[i] = v }
                }
            }
        }
    }
    let len = n * cols;
    if let Some((d, acc)) = sink.slot(ctx, gamma) {
        channel_sums(d.data_mut(), acc, hw, len, |i| gd[i] * xhat[i]);
    }
    if let Some((d, acc)) = sink.slot(ctx, beta) {
        channel_sums(d.data_mut(), acc, hw, len, |i| gd[i]);
    }
}

pub(super) fn affine_channels_backward(
    x: Var,
    scale: Var,
    shift: Var,
    up: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let xv = ctx.value(x);
    let (sd, gd, xd) = (ctx.value(scale).data(), up.data(), xv.data());
    let c = sd.len();
    let hw = xv.cols() / c;
    if let Some((d, acc)) = sink.slot(ctx, x) {
        super::write(d.data_mut(), acc, |i| gd[i] * sd[(i / hw) % c]);
    }
    if let Some((d, acc)) = sink.slot(ctx, scale) {
        channel_sums(d.data_mut(), acc, hw, xd.len(), |i| gd[i] * xd[i]);
    }
    if let Some((d, acc)) = sink.slot(ctx, shift) {
        channel_sums(d.data_mut(), acc, hw, gd.len(), |i| gd[i]);
    }
}
