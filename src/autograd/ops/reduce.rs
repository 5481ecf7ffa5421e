//! Reductions to a `1 × 1` value: `sum(a) = Σ a_i` and `mean(a) = Σ a_i / n`.
//! Backward broadcasts the upstream scalar back: `∂L/∂a_i = G` (sum) or `G / n` (mean).

use super::{Op, write};
use crate::autograd::tape::{Ctx, Sink, Tape, Var};
use crate::tensor::Tensor;

impl Tape<'_> {
    /// `Σ a_i` as a `1 × 1` value (accumulated in f64).
    pub fn sum(&mut self, a: Var) -> Var {
        let needs = self.needs_grad(a);
        let out = self.push(Op::Sum { a }, 1, 1, needs);
        let (x, node) = self.io1(a, out);
        node.value.data_mut()[0] = x.data().iter().map(|&v| v as f64).sum::<f64>() as f32;
        out
    }

    /// `Σ a_i / n` as a `1 × 1` value (accumulated in f64; 0 for an empty input).
    pub fn mean(&mut self, a: Var) -> Var {
        let needs = self.needs_grad(a);
        let out = self.push(Op::Mean { a }, 1, 1, needs);
        let (x, node) = self.io1(a, out);
        let n = x.len().max(1) as f64;
        node.value.data_mut()[0] = (x.data().iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
        out
    }
}

/// `∂L/∂a_i = factor · G` for every `i` (factor 1 for sum, 1/n for mean).
pub(super) fn sum_backward(a: Var, factor: f32, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let up = g.data()[0] * factor;
    if let Some((d, acc)) = sink.slot(ctx, a) {
        write(d.data_mut(), acc, |_| up);
    }
}
