//! Elementwise arithmetic: `a + b`, `a − b`, `a ⊙ b`, `c·a`, and `a + bias` with the bias row
//! broadcast over every row (the `+ b` of a linear layer).

use super::broadcast::BinaryKind;
use super::{Op, shape_error, write};
use crate::autograd::tape::{Ctx, Sink, Tape, Var};
use crate::error::NablaError;
use crate::tensor::Tensor;

impl Tape<'_> {
    /// `a + b`. Backward: `∂L/∂a = ∂L/∂b = G`. Shapes that differ are broadcast
    /// ([`Tape::broadcast`]); equal shapes take this one-pass path.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.binary(a, b, Op::Add { a, b }, BinaryKind::Add, |x, y| x + y)
    }

    /// `a − b`, broadcasting. Backward: `∂L/∂a = G`, `∂L/∂b = −G`.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.binary(a, b, Op::Sub { a, b }, BinaryKind::Sub, |x, y| x - y)
    }

    /// `a ⊙ b` (elementwise), broadcasting. Backward: `∂L/∂a = G ⊙ b`, `∂L/∂b = G ⊙ a`.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.binary(a, b, Op::Mul { a, b }, BinaryKind::Mul, |x, y| x * y)
    }

    /// `factor · a`. Backward: `∂L/∂a = factor · G`.
    pub fn scale(&mut self, a: Var, factor: f32) -> Var {
        let needs = self.needs_grad(a);
        let out = self.push_like(Op::Scale { a, factor }, a, needs);
        let (x, node) = self.io1(a, out);
        for (o, &v) in node.value.data_mut().iter_mut().zip(x.data()) {
            *o = factor * v;
        }
        out
    }

    /// `a + bias` where `bias` is `1 × cols`, added to every row of `a` (`rows × cols`).
    /// Backward: `∂L/∂a = G`, `∂L/∂bias = Σ_rows G` (the broadcast undone by summing).
    pub fn add_row(&mut self, a: Var, bias: Var) -> Result<Var, NablaError> {
        let (r, c) = self.shape(a);
        if self.shape(bias) != (1, c) {
            return Err(shape_error(
                "add_row (bias must be 1×cols)",
                (r, c),
                self.shape(bias),
            ));
        }
        let needs = self.needs_grad(a) || self.needs_grad(bias);
        let out = self.push(Op::AddRow { a, bias }, r, c, needs);
        let (x, b, node) = self.io2(a, bias, out);
        if c > 0 {
            for (orow, xrow) in node
                .value
                .data_mut()
                .chunks_exact_mut(c)
                .zip(x.data().chunks_exact(c))
            {
                for ((o, &xv), &bv) in orow.iter_mut().zip(xrow).zip(b.data()) {
                    *o = xv + bv;
                }
            }
        }
        Ok(out)
    }

    fn binary(
        &mut self,
        a: Var,
        b: Var,
        op: Op,
        kind: BinaryKind,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<Var, NablaError> {
        self.check_var(a, "binary op")?;
        self.check_var(b, "binary op")?;
        if self.dims(a) != self.dims(b) {
            return self.broadcast(a, b, kind);
        }
        let needs = self.needs_grad(a) || self.needs_grad(b);
        let out = self.push_like(op, a, needs);
        let (x, y, node) = self.io2(a, b, out);
        for ((o, &xv), &yv) in node.value.data_mut().iter_mut().zip(x.data()).zip(y.data()) {
            *o = f(xv, yv);
        }
        Ok(out)
    }
}

pub(super) fn add_backward(a: Var, b: Var, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let g = g.data();
    for v in [a, b] {
        if let Some((d, acc)) = sink.slot(ctx, v) {
            write(d.data_mut(), acc, |i| g[i]);
        }
    }
}

pub(super) fn sub_backward(a: Var, b: Var, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let g = g.data();
    if let Some((d, acc)) = sink.slot(ctx, a) {
        write(d.data_mut(), acc, |i| g[i]);
    }
    if let Some((d, acc)) = sink.slot(ctx, b) {
        write(d.data_mut(), acc, |i| -g[i]);
    }
}

pub(super) fn mul_backward(a: Var, b: Var, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let (g, av, bv) = (g.data(), ctx.value(a).data(), ctx.value(b).data());
    if let Some((d, acc)) = sink.slot(ctx, a) {
        write(d.data_mut(), acc, |i| g[i] * bv[i]);
    }
    if let Some((d, acc)) = sink.slot(ctx, b) {
        write(d.data_mut(), acc, |i| g[i] * av[i]);
    }
}

pub(super) fn scale_backward(a: Var, factor: f32, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let g = g.data();
    if let Some((d, acc)) = sink.slot(ctx, a) {
        write(d.data_mut(), acc, |i| factor * g[i]);
    }
}

pub(super) fn add_row_backward(a: Var, bias: Var, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    if let Some((d, acc)) = sink.slot(ctx, a) {
        let gd = g.data();
        write(d.data_mut(), acc, |i| gd[i]);
    }
    bias_backward(bias, g, ctx, sink);
}

/// `∂L/∂b` of a bias added to every row: the column sums of `g`, row after row.
pub(super) fn bias_backward(bias: Var, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    if let Some((d, acc)) = sink.slot(ctx, bias) {
        let d = d.data_mut();
        if !acc {
            d.fill(0.0);
        }
        if !d.is_empty() {
            for row in g.data().chunks_exact(d.len()) {
                for (dv, &gv) in d.iter_mut().zip(row) {
                    *dv += gv;
                }
            }
        }
    }
}
