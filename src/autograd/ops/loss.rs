//! Losses, each a `1 × 1` value averaged over the batch.
//!
//! Cross-entropy from logits, fused with softmax: `L = (1/B) Σ_r [log Σ_k e^(z_rk) − z_r,y_r]`,
//! stable through log-sum-exp; backward `∂L/∂z = G · (p − onehot(y)) / B` with `p = softmax(z)`.
//! Mean squared error: `L = (1/n) Σ (p − t)²`; backward `∂L/∂p = G · 2(p − t)/n = −∂L/∂t`.

use super::{Op, shape_error, write};
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
use crate::error::NablaError;
use crate::kernels::softmax::{cross_entropy, softmax_rows};
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Mean cross-entropy of `logits` (`B × classes`) against class indices `labels` (`B`).
    /// The softmax probabilities are kept for backward and can be read with
    /// [`Tape::probabilities`].
    pub fn softmax_cross_entropy(
        &mut self,
        logits: Var,
        labels: &[u32],
    ) -> Result<Var, NablaError> {
        let (rows, cols) = self.shape(logits);
        if labels.len() != rows {
            return Err(NablaError::Shape(format!(
                "cross-entropy: {rows} rows of logits but {} labels",
                labels.len()
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= cols) {
            return Err(NablaError::Shape(format!(
                "cross-entropy: label {bad} out of range for {cols} classes"
            )));
        }
        let labels_start = self.ws.labels.len();
        self.ws.labels.extend_from_slice(labels);
        let needs = self.needs_grad(logits);
        let out = self.push(
            Op::SoftmaxCrossEntropy {
                logits,
                labels_start,
            },
            1,
            1,
            needs,
        );
        let (z, node) = self.io1(logits, out);
        node.aux.reshape_for_overwrite(rows, cols);
        softmax_rows(z.data(), cols, node.aux.data_mut());
        let mut total = 0.0f64;
        if cols > 0 {
            for (zrow, &y) in z.data().chunks_exact(cols).zip(labels) {
                total += cross_entropy(zrow, y as usize) as f64;
            }
        }
        node.value.data_mut()[0] = (total / rows.max(1) as f64) as f32;
        Ok(out)
    }

    /// The softmax probabilities computed by the cross-entropy node `loss`, if it is one.
    pub fn probabilities(&self, loss: Var) -> Option<&Tensor> {
        match self.ws.nodes.get(loss.0)?.op {
            Op::SoftmaxCrossEntropy { .. } if loss.0 < self.len => Some(&self.ws.nodes[loss.0].aux),
            _ => None,
        }
    }

    /// Mean squared error `(1/n) Σ (pred − target)²` over every element.
    pub fn mse(&mut self, pred: Var, target: Var) -> Result<Var, NablaError> {
        let (sp, st) = (self.shape(pred), self.shape(target));
        if sp != st {
            return Err(shape_error("mse", sp, st));
        }
        let needs = self.needs_grad(pred) || self.needs_grad(target);
        let out = self.push(Op::Mse { pred, target }, 1, 1, needs);
        let (p, t, node) = self.io2(pred, target, out);
        let sum: f64 = p
            .data()
            .iter()
            .zip(t.data())
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum();
        node.value.data_mut()[0] = (sum / p.len().max(1) as f64) as f32;
        Ok(out)
    }
}

pub(super) fn cross_entropy_backward(
    logits: Var,
    labels_start: usize,
    node: &Node,
    g: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let probs = &node.aux;
    let (rows, cols) = probs.shape();
    let labels = &ctx.labels[labels_start..labels_start + rows];
    let scale = g.data()[0] / rows.max(1) as f32;
    if let Some((d, acc)) = sink.slot(ctx, logits) {
        let p = probs.data();
        write(d.data_mut(), acc, |i| scale * p[i]);
        // Subtract the one-hot target: one element per row.
        for (r, &y) in labels.iter().enumerate() {
            d.data_mut()[r * cols + y as usize] -= scale;
        }
    }
}

pub(super) fn mse_backward(pred: Var, target: Var, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let (p, t) = (ctx.value(pred).data(), ctx.value(target).data());
    let k = 2.0 * g.data()[0] / p.len().max(1) as f32;
    if let Some((d, acc)) = sink.slot(ctx, pred) {
        write(d.data_mut(), acc, |i| k * (p[i] - t[i]));
    }
    if let Some((d, acc)) = sink.slot(ctx, target) {
        write(d.data_mut(), acc, |i| -k * (p[i] - t[i]));
    }
}
