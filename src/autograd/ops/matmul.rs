//! Matrix product `C = op(A)·op(B)`.
//!
//! Backward, with `G = ∂L/∂C`: `∂L/∂op(A) = G·op(B)ᵀ` and `∂L/∂op(B) = op(A)ᵀ·G`. When an operand
//! is stored transposed, its gradient is the transpose of that, computed directly by swapping
//! the product's operands, so no transpose is ever materialised.

use super::{Op, shape_error};
use crate::autograd::tape::{Ctx, Sink, Tape, Var};
use crate::error::NablaError;
use crate::kernels::{Transpose, matmul};
use crate::tensor::{Dims, Tensor};

impl Tape<'_> {
    /// `a · b`. Two matrices (rank 2) take the 2-D path below; any other ranks follow NumPy's
    /// `matmul` (batch axes broadcast, rank-1 operands as a row / a column) through
    /// [`Tape::batched_matmul`].
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.check_var(a, "matmul")?;
        self.check_var(b, "matmul")?;
        if self.value(a).rank() == 2 && self.value(b).rank() == 2 {
            self.matmul_t(a, Transpose::No, b, Transpose::No)
        } else {
            self.batched_matmul(a, b)
        }
    }

    /// `op(a) · op(b)` where `op` transposes an operand stored transposed. A linear layer with
    /// PyTorch's `[out, in]` weight computes `x · Wᵀ` as `matmul_t(x, No, w, Yes)`.
    pub fn matmul_t(
        &mut self,
        a: Var,
        ta: Transpose,
        b: Var,
        tb: Transpose,
    ) -> Result<Var, NablaError> {
        let (m, ka) = logical(self.shape(a), ta);
        let (kb, n) = logical(self.shape(b), tb);
        if ka != kb {
            return Err(shape_error("matmul", (m, ka), (kb, n)));
        }
        let needs = self.needs_grad(a) || self.needs_grad(b);
        let out = self.push(Op::MatMul { a, b, ta, tb }, m, n, needs);
        let (av, bv, node) = self.io2(a, b, out);
        matmul(
            m,
            n,
            ka,
            av.data(),
            ta,
            bv.data(),
            tb,
            node.value.data_mut(),
            false,
        );
        Ok(out)
    }

    /// `x · Wᵀ + b`, a linear layer as one node: `x` is `m × k` (or `[…, k]` of any rank, its
    /// leading axes kept in the output `[…, n]`), the weight `W` is stored
    /// `[n, k]` (PyTorch's `[out, in]`) and read through strides, the bias `b` is `1 × n`. The
    /// GEMM writes the product and the bias is added in the same buffer, so the values are
    /// those of [`Tape::matmul_t`] then [`Tape::add_row`] with one buffer and one pass fewer,
    /// and backward reads the upstream gradient directly (no copy into a node for `x · Wᵀ`).
    pub fn linear(&mut self, x: Var, w: Var, b: Var) -> Result<Var, NablaError> {
        let ((m, k), (n, kw)) = (self.shape(x), self.shape(w));
        if k != kw {
            return Err(shape_error("linear", (m, k), (kw, n)));
        }
        if self.shape(b) != (1, n) {
            return Err(shape_error(
                "linear (bias must be 1×out)",
                (m, n),
                self.shape(b),
            ));
        }
        let needs = self.needs_grad(x) || self.needs_grad(w) || self.needs_grad(b);
        // Any rank: every axis of `x` but the last is a batch axis, as in PyTorch's nn.Linear.
        let dims = match self.value(x).rank() {
            2 => Dims::matrix(m, n),
            0 | 1 => Dims::new(&[n])?,
            _ => self.value(x).dims_value().with_last(n)?,
        };
        let out = self.push_dims(Op::Linear { x, w, b }, dims, needs);
        let (xv, wv, bv, node) = self.io3(x, w, b, out);
        let z = node.value.data_mut();
        matmul(
            m,
            n,
            k,
            xv.data(),
            Transpose::No,
            wv.data(),
            Transpose::Yes,
            z,
            false,
        );
        if n > 0 {
            for row in z.chunks_exact_mut(n) {
                for (o, &bias) in row.iter_mut().zip(bv.data()) {
                    *o += bias;
                }
            }
        }
        Ok(out)
    }
}

/// Backward of [`Tape::linear`]: the product's rule for `x` and `W`, the bias's column sums.
pub(super) fn linear_backward(x: Var, w: Var, b: Var, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    super::arith::bias_backward(b, g, ctx, sink);
    backward(x, w, Transpose::No, Transpose::Yes, g, ctx, sink);
}

/// The logical shape of an operand used with transpose flag `t`.
fn logical((r, c): (usize, usize), t: Transpose) -> (usize, usize) {
    match t {
        Transpose::No => (r, c),
        Transpose::Yes => (c, r),
    }
}

fn flip(t: Transpose) -> Transpose {
    match t {
        Transpose::No => Transpose::Yes,
        Transpose::Yes => Transpose::No,
    }
}

pub(super) fn backward(
    a: Var,
    b: Var,
    ta: Transpose,
    tb: Transpose,
    g: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) {
    let (av, bv) = (ctx.value(a), ctx.value(b));
    let (m, k) = logical(av.shape(), ta);
    let n = logical(bv.shape(), tb).1;
    if let Some((da, acc)) = sink.slot(ctx, a) {
        match ta {
            // ∂L/∂A = G·op(B)ᵀ  (m×n · n×k)
            Transpose::No => matmul(
                m,
                k,
                n,
                g.data(),
                Transpose::No,
                bv.data(),
                flip(tb),
                da.data_mut(),
                acc,
            ),
            // A is stored k×m: ∂L/∂A = (G·op(B)ᵀ)ᵀ = op(B)·Gᵀ  (k×n · n×m)
            Transpose::Yes => matmul(
                k,
                m,
                n,
                bv.data(),
                tb,
                g.data(),
                Transpose::Yes,
                da.data_mut(),
                acc,
            ),
        }
    }
    if let Some((db, acc)) = sink.slot(ctx, b) {
        match tb {
            // ∂L/∂B = op(A)ᵀ·G  (k×m · m×n)
            Transpose::No => matmul(
                k,
                n,
                m,
                av.data(),
                flip(ta),
                g.data(),
                Transpose::No,
                db.data_mut(),
                acc,
            ),
            // B is stored n×k: ∂L/∂B = Gᵀ·op(A)  (n×m · m×k)
            Transpose::Yes => matmul(
                n,
                k,
                m,
                g.data(),
                Transpose::Yes,
                av.data(),
                ta,
                db.data_mut(),
                acc,
            ),
        }
    }
}
