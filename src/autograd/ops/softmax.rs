//! Row-wise softmax `y_j = e^(z_j) / Σ_k e^(z_k)` and log-softmax `y_j = z_j − log Σ_k e^(z_k)`.
//!
//! Backward (per row, `u = ∂L/∂y`): softmax `∂L/∂z_j = y_j (u_j − Σ_k u_k y_k)`;
//! log-softmax `∂L/∂z_j = u_j − softmax(z)_j Σ_k u_k`.

use super::Op;
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
use crate::kernels::softmax::{log_softmax_rows, softmax_rows};
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Softmax of each row (along the last axis, for any rank): probabilities that sum to 1.
    pub fn softmax(&mut self, a: Var) -> Var {
        let c = self.shape(a).1;
        let needs = self.needs_grad(a);
        let out = self.push_like(Op::Softmax { a }, a, needs);
        let (x, node) = self.io1(a, out);
        softmax_rows(x.data(), c, node.value.data_mut());
        out
    }

    /// Log-softmax of each row (along the last axis), computed with the log-sum-exp shift.
    pub fn log_softmax(&mut self, a: Var) -> Var {
        let c = self.shape(a).1;
        let needs = self.needs_grad(a);
        let out = self.push_like(Op::LogSoftmax { a }, a, needs);
        let (x, node) = self.io1(a, out);
        log_softmax_rows(x.data(), c, node.value.data_mut());
        out
    }
}

pub(super) fn softmax_backward(a: Var, node: &Node, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let cols = node.value.cols();
    if let Some((d, acc)) = sink.slot(ctx, a) {
        if cols == 0 {
            return;
        }
        for ((drow, yrow), urow) in d
            .data_mut()
            .chunks_exact_mut(cols)
            .zip(node.value.data().chunks_exact(cols))
            .zip(g.data().chunks_exact(cols))
        {
            let dot: f32 = yrow.iter().zip(urow).map(|(y, u)| y * u).sum();
            for ((dv, &y), &u) in drow.iter_mut().zip(yrow).zip(urow) {
                let v = y * (u - dot);
                if acc { *dv += v } else { *dv = v }
            }
        }
    }
}

pub(super) fn log_softmax_backward(a: Var, node: &Node, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let cols = node.value.cols();
    if let Some((d, acc)) = sink.slot(ctx, a) {
        if cols == 0 {
            return;
        }
        for ((drow, yrow), urow) in d
            .data_mut()
            .chunks_exact_mut(cols)
            .zip(node.value.data().chunks_exact(cols))
            .zip(g.data().chunks_exact(cols))
        {
            let total: f32 = urow.iter().sum();
            for ((dv, &y), &u) in drow.iter_mut().zip(yrow).zip(urow) {
                let v = u - y.exp() * total;
                if acc { *dv += v } else { *dv = v }
            }
        }
    }
}
