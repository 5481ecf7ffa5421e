//! Batch normalisation over the rows of a `B × C` batch (training mode), and the per-column
//! affine map `x·s + t` that evaluation mode uses with the running statistics.
//!
//! Forward: `μ_c = mean_r x_rc`, `σ²_c = mean_r (x_rc − μ_c)²` (biased), `x̂ = (x − μ)/sqrt(σ² + ε)`,
//! `y = γ ⊙ x̂ + β`. Backward, with `d̂ = G ⊙ γ`:
//! `∂L/∂x = (1/B)·(1/sqrt(σ² + ε))·(B·d̂ − Σ_r d̂ − x̂ ⊙ Σ_r d̂ ⊙ x̂)`,
//! `∂L/∂γ = Σ_r G ⊙ x̂`, `∂L/∂β = Σ_r G`.

use super::{Op, shape_error, write};
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
use crate::error::NablaError;
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Batch normalisation of `x` (`B × C`) with scale `gamma` and shift `beta` (`1 × C`),
    /// using this batch's statistics. Its mean and (biased) variance can be read with
    /// [`Tape::batch_statistics`] to update running averages.
    pub fn batch_norm(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    ) -> Result<Var, NablaError> {
        let (b, c) = self.shape(x);
        for v in [gamma, beta] {
            if self.shape(v) != (1, c) {
                return Err(shape_error(
                    "batch_norm (gamma/beta must be 1×C)",
                    (b, c),
                    self.shape(v),
                ));
            }
        }
        if b == 0 {
            return Err(NablaError::Shape("batch_norm of an empty batch".into()));
        }
        let needs = self.needs_grad(x) || self.needs_grad(gamma) || self.needs_grad(beta);
        let out = self.push(
            Op::BatchNorm {
                x,
                gamma,
                beta,
                eps,
            },
            b,
            c,
            needs,
        );
        let (xv, gv, bv, node) = self.io3(x, gamma, beta, out);
        // aux rows: 0..B = x̂, B = mean, B+1 = variance.
        node.aux.reshape_for_overwrite(b + 2, c);
        let aux = node.aux.data_mut();
        let (xhat, stats) = aux.split_at_mut(b * c);
        let (mean, var) = stats.split_at_mut(c);
        mean.fill(0.0);
        var.fill(0.0);
        for row in xv.data().chunks_exact(c) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= b as f32);
        for row in xv.data().chunks_exact(c) {
            for ((s, &v), &m) in var.iter_mut().zip(row).zip(mean.iter()) {
                *s += (v - m) * (v - m);
            }
        }
        var.iter_mut().for_each(|s| *s /= b as f32);
        for (hrow, xrow) in xhat.chunks_exact_mut(c).zip(xv.data().chunks_exact(c)) {
            for (((h, &v), &m), &s) in hrow.iter_mut().zip(xrow).zip(mean.iter()).zip(var.iter()) {
                *h = (v - m) / (s + eps).sqrt();
            }
        }
        for (yrow, hrow) in node
            .value
            .data_mut()
            .chunks_exact_mut(c)
            .zip(xhat.chunks_exact(c))
        {
            for (((y, &h), &g), &t) in yrow.iter_mut().zip(hrow).zip(gv.data()).zip(bv.data()) {
                *y = g * h + t;
            }
        }
        Ok(out)
    }

    /// The batch mean and biased variance (each `C` values) computed by the batch-norm node `v`
    /// ([`Tape::batch_norm`] or [`Tape::batch_norm2d`]).
    pub fn batch_statistics(&self, v: Var) -> Option<(&[f32], &[f32])> {
        let node = self.ws.nodes.get(v.0).filter(|_| v.0 < self.len)?;
        match node.op {
            Op::BatchNorm { .. } => {
                let (rows, c) = node.value.shape();
                let stats = &node.aux.data()[rows * c..];
                Some(stats.split_at(c))
            }
            Op::BatchNorm2d { gamma, .. } => {
                let c = self.shape(gamma).1;
                let aux = node.aux.data();
                Some(aux[aux.len() - 2 * c..].split_at(c))
            }
            _ => None,
        }
    }

    /// `x · scale + shift` per column: `scale` and `shift` are `1 × C`, broadcast over rows.
    /// Backward: `∂L/∂x = G ⊙ scale`, `∂L/∂scale = Σ_r G ⊙ x`, `∂L/∂shift = Σ_r G`.
    pub fn affine_rows(&mut self, x: Var, scale: Var, shift: Var) -> Result<Var, NablaError> {
        let (b, c) = self.shape(x);
        for v in [scale, shift] {
            if self.shape(v) != (1, c) {
                return Err(shape_error(
                    "affine_rows (scale/shift must be 1×C)",
                    (b, c),
                    self.shape(v),
                ));
            }
        }
        let needs = self.needs_grad(x) || self.needs_grad(scale) || self.needs_grad(shift);
        let out = self.push(Op::AffineRows { x, scale, shift }, b, c, needs);
        let (xv, sv, tv, node) = self.io3(x, scale, shift, out);
        if c > 0 {
            for (yrow, xrow) in node
                .value
                .data_mut()
                .chunks_exact_mut(c)
                .zip(xv.data().chunks_exact(c))
            {
                for (((y, &v), &s), &t) in yrow.iter_mut().zip(xrow).zip(sv.data()).zip(tv.data()) {
                    *y = v * s + t;
                }
            }
        }
        Ok(out)
    }
}

/// `dst (+)= Σ_rows f(r, c)` for each column `c`.
fn column_sums(dst: &mut [f32], acc: bool, rows: usize, f: impl Fn(usize, usize) -> f32) {
    for (col, d) in dst.iter_mut().enumerate() {
        let s: f32 = (0..rows).map(|r| f(r, col)).sum();
        if acc { *d += s } else { *d = s }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn batch_norm_backward(
    x: Var,
    gamma: Var,
    beta: Var,
    eps: f32,
    node: &Node,
    g: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let (b, c) = node.value.shape();
    let aux = node.aux.data();
    let (xhat, stats) = aux.split_at(b * c);
    let var = &stats[c..2 * c];
    let gd = g.data();
    let gam = ctx.value(gamma).data();
    if let Some((d, acc)) = sink.slot(ctx, x) {
        let d = d.data_mut();
        let bf = b as f32;
        for col in 0..c {
            // Per column: Σ d̂ and Σ d̂ x̂, then the downstream gradient of the column.
            let (mut sum_d, mut sum_dx) = (0.0f32, 0.0f32);
            for r in 0..b {
                let i = r * c + col;
                let dh = gd[i] * gam[col];
                sum_d += dh;
                sum_dx += dh * xhat[i];
            }
            let k = 1.0 / (var[col] + eps).sqrt() / bf;
            for r in 0..b {
                let i = r * c + col;
                let v = k * (bf * gd[i] * gam[col] - sum_d - xhat[i] * sum_dx);
                if acc { d[i] += v } else { d[i] = v }
            }
        }
    }
    if let Some((d, acc)) = sink.slot(ctx, gamma) {
        column_sums(d.data_mut(), acc, b, |r, col| {
            gd[r * c + col] * xhat[r * c + col]
        });
    }
    if let Some((d, acc)) = sink.slot(ctx, beta) {
        column_sums(d.data_mut(), acc, b, |r, col| gd[r * c + col]);
    }
}

pub(super) fn affine_rows_backward(
    x: Var,
    scale: Var,
    shift: Var,
    g: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let (b, c) = ctx.value(x).shape();
    let (xd, sd, gd) = (ctx.value(x).data(), ctx.value(scale).data(), g.data());
    if let Some((d, acc)) = sink.slot(ctx, x) {
        write(d.data_mut(), acc, |i| gd[i] * sd[i % c]);
    }
    if let Some((d, acc)) = sink.slot(ctx, scale) {
        column_sums(d.data_mut(), acc, b, |r, col| {
            gd[r * c + col] * xd[r * c + col]
        });
    }
    if let Some((d, acc)) = sink.slot(ctx, shift) {
        column_sums(d.data_mut(), acc, b, |r, col| gd[r * c + col]);
    }
}
