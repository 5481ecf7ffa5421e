//! Matrix products of any rank with NumPy's `matmul` rules: `[…, m, k] @ […, k, n] →
//! […, m, n]`, the batch axes (all but the last two) broadcast against each other. A rank-1
//! left operand `[k]` is a row `[1, k]` and a rank-1 right operand `[k]` a column `[k, 1]`, the
//! added axis removed from the result, as in NumPy.
//!
//! Each batch is one call of [`crate::kernels::matmul`] (the GEMM on the calling thread) on
//! the operands' matrices in place: a broadcast batch axis is a stride of 0 over the operand's
//! matrices, so nothing is copied. [`Tape::matmul`] keeps its 2-D fast path (a node of its own,
//! transposes as strides) and records this op for any other ranks.
//!
//! Backward, with `G = ∂L/∂C` for each output batch `i` reading matrices `A[a(i)]` and
//! `B[b(i)]`: `∂L/∂A[a(i)] += G_i·B[b(i)]ᵀ` and `∂L/∂B[b(i)] += A[a(i)]ᵀ·G_i`. A matrix used by
//! several batches (a broadcast axis) gets their sum, in row-major order of the output batches.

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::kernels::{Transpose, matmul};
use crate::tensor::{Dims, Layout, MAX_RANK, Tensor, broadcast_shapes, walk2};

/// `a @ b` of any ranks with broadcast batch axes (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchedMatMul;

/// The product's sizes and where each output batch finds its operands' matrices.
struct Plan {
    m: usize,
    k: usize,
    n: usize,
    /// Over the output's batch shape: the offset of `a`'s (`b`'s) matrix for each batch.
    a: Layout,
    b: Layout,
    dims: Dims,
}

fn plan(a: &[usize], b: &[usize]) -> Result<Plan, NablaError> {
    let bad = |why: &str| NablaError::Shape(format!("matmul: {a:?} @ {b:?}: {why}"));
    let (a_batch, m, ka) = match a {
        [] => return Err(bad("an operand has rank 0")),
        [k] => (&[][..], 1, *k),
        [batch @ .., m, k] => (batch, *m, *k),
    };
    let (b_batch, kb, n) = match b {
        [] => return Err(bad("an operand has rank 0")),
        [k] => (&[][..], *k, 1),
        [batch @ .., k, n] => (batch, *k, *n),
    };
    if ka != kb {
        return Err(bad(&format!("the inner sizes {ka} and {kb} differ")));
    }
    let batch = broadcast_shapes(a_batch, b_batch, "matmul")
        .map_err(|_| bad("the batch axes do not broadcast"))?;
    let mut out = batch.as_slice().to_vec();
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(Plan {
        m,
        k: ka,
        n,
        a: batch_layout(a_batch, m * ka, batch)?,
        b: batch_layout(b_batch, ka * n, batch)?,
        dims: Dims::new(&out)?,
    })
}

/// The offsets of an operand's matrices (`matrix` elements each) over the output's batches.
fn batch_layout(batch: &[usize], matrix: usize, to: Dims) -> Result<Layout, NablaError> {
    let dims = Dims::new(batch)?;
    let mut strides = [0; MAX_RANK];
    for (s, c) in strides.iter_mut().zip(dims.contiguous_strides()) {
        *s = c * matrix;
    }
    let own = Layout {
        dims,
        strides,
        offset: 0,
    };
    own.broadcast_to(to, "matmul")
}

impl CustomOp for BatchedMatMul {
    fn name(&self) -> &str {
        "matmul"
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let p = plan(x[0].dims(), x[1].dims())?;
        out.reset_for_overwrite(p.dims);
        let (a, b, c) = (x[0].data(), x[1].data(), out.data_mut());
        let (m, k, n) = (p.m, p.k, p.n);
        walk2(&p.a, &p.b, |i, pa, pb| {
            matmul(
                m,
                n,
                k,
                &a[pa..pa + m * k],
                Transpose::No,
                &b[pb..pb + k * n],
                Transpose::No,
                &mut c[i * m * n..(i + 1) * m * n],
                false,
            );
        });
        Ok(())
    }

    fn backward(&self, g: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let (at, bt) = (g.inputs[0], g.inputs[1]);
        let p = plan(at.dims(), bt.dims())?;
        let (m, k, n) = (p.m, p.k, p.n);
        let mut ga = Tensor::zeros_dims(at.dims_value());
        let mut gb = Tensor::zeros_dims(bt.dims_value());
        let (a, b, up) = (at.data(), bt.data(), g.upstream.data());
        let (da, db) = (ga.data_mut(), gb.data_mut());
        let (want_a, want_b) = (g.wanted[0], g.wanted[1]);
        walk2(&p.a, &p.b, |i, pa, pb| {
            let gi = &up[i * m * n..(i + 1) * m * n];
            let (ai, bi) = (&a[pa..pa + m * k], &b[pb..pb + k * n]);
            if want_a {
                // ∂L/∂A += G·Bᵀ  (m×n · n×k)
                let dst = &mut da[pa..pa + m * k];
                matmul(m, k, n, gi, Transpose::No, bi, Transpose::Yes, dst, true);
            }
            if want_b {
                // ∂L/∂B += Aᵀ·G  (k×m · m×n)
                let dst = &mut db[pb..pb + k * n];
                matmul(k, n, m, ai, Transpose::Yes, gi, Transpose::No, dst, true);
            }
        });
        Ok(vec![want_a.then_some(ga), want_b.then_some(gb)])
    }
}

impl Tape<'_> {
    /// `a @ b` for operands of any rank other than two matrices: NumPy's `matmul` (batch axes
    /// broadcast, rank-1 operands as a row / a column). [`Tape::matmul`] calls this for them.
    ///
    /// ```
    /// use nabla::{Params, Tape, Tensor, Workspace};
    /// let params = Params::new();
    /// let mut ws = Workspace::new();
    /// let mut tape = Tape::new(&params, &mut ws);
    /// let q = tape.input(&Tensor::full(&[2, 4, 3, 5], 1.0).unwrap()); // batch, heads, t, d
    /// let k = tape.input(&Tensor::full(&[4, 5, 3], 0.5).unwrap()); //   heads, d, t
    /// let s = tape.matmul(q, k).unwrap();
    /// assert_eq!(tape.dims(s), &[2, 4, 3, 3]);
    /// assert_eq!(tape.value(s).data()[0], 2.5);
    /// ```
    pub fn batched_matmul(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.custom(BatchedMatMul, &[a, b])
    }
}
