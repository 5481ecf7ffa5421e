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

/// Softmax (or log-softmax) along any axis of a tensor of any rank: each lane of `axis`
/// (every other index fixed) is normalised on its own, with the max shift. Backward is the
/// row rule above, applied per lane.
#[derive(Clone, Copy, Debug)]
pub struct SoftmaxAxis {
    axis: usize,
    log: bool,
}

impl SoftmaxAxis {
    /// `(outer, size, inner)`: lanes are `outer × inner`, element `k` of a lane at
    /// `(o·size + k)·inner + j`.
    fn lanes(&self, x: &Tensor) -> (usize, usize, usize) {
        let d = x.dims();
        let inner: usize = d[self.axis + 1..].iter().product();
        let size = d[self.axis];
        (d[..self.axis].iter().product(), size, inner)
    }
}

impl crate::autograd::CustomOp for SoftmaxAxis {
    fn name(&self) -> &str {
        if self.log {
            "log_softmax_axis"
        } else {
            "softmax_axis"
        }
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), crate::NablaError> {
        let x = x[0];
        out.reset_for_overwrite(x.dims_value());
        let (outer, size, inner) = self.lanes(x);
        let (xd, y) = (x.data(), out.data_mut());
        for o in 0..outer {
            for j in 0..inner {
                let at = |k: usize| (o * size + k) * inner + j;
                let m = (0..size)
                    .map(|k| xd[at(k)])
                    .fold(f32::NEG_INFINITY, f32::max);
                let s: f32 = (0..size).map(|k| (xd[at(k)] - m).exp()).sum();
                for k in 0..size {
                    let z = xd[at(k)] - m;
                    y[at(k)] = if self.log { z - s.ln() } else { z.exp() / s };
                }
            }
        }
        Ok(())
    }

    fn backward(
        &self,
        b: &crate::autograd::Backward<'_>,
    ) -> Result<Vec<Option<Tensor>>, crate::NablaError> {
        let (outer, size, inner) = self.lanes(b.inputs[0]);
        let (y, u) = (b.output.data(), b.upstream.data());
        let mut d = Tensor::zeros_dims(b.output.dims_value());
        let dd = d.data_mut();
        for o in 0..outer {
            for j in 0..inner {
                let at = |k: usize| (o * size + k) * inner + j;
                if self.log {
                    let total: f32 = (0..size).map(|k| u[at(k)]).sum();
                    (0..size).for_each(|k| dd[at(k)] = u[at(k)] - y[at(k)].exp() * total);
                } else {
                    let dot: f32 = (0..size).map(|k| y[at(k)] * u[at(k)]).sum();
                    (0..size).for_each(|k| dd[at(k)] = y[at(k)] * (u[at(k)] - dot));
                }
            }
        }
        Ok(vec![Some(d)])
    }
}

impl Tape<'_> {
    /// Softmax along `axis` (negative counts from the end) of a tensor of any rank; the last
    /// axis takes the row kernel of [`Tape::softmax`].
    pub fn softmax_axis(&mut self, a: Var, axis: isize) -> Result<Var, crate::NablaError> {
        self.softmax_along(a, axis, false)
    }

    /// Log-softmax along `axis`; the last axis takes the row kernel of [`Tape::log_softmax`].
    pub fn log_softmax_axis(&mut self, a: Var, axis: isize) -> Result<Var, crate::NablaError> {
        self.softmax_along(a, axis, true)
    }

    fn softmax_along(&mut self, a: Var, axis: isize, log: bool) -> Result<Var, crate::NablaError> {
        self.check_var(a, "softmax_axis")?;
        let dims = self.value(a).dims_value();
        let axis = dims.axis(
            axis,
            if log {
                "log_softmax_axis"
            } else {
                "softmax_axis"
            },
        )?;
        match (axis + 1 == dims.rank(), log) {
            (true, false) => Ok(self.softmax(a)),
            (true, true) => Ok(self.log_softmax(a)),
            _ => self.custom(SoftmaxAxis { axis, log }, &[a]),
        }
    }
}
