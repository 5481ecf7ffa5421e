//! Choosing elements by a mask: `where_cond(mask, a, b)` (NumPy's `where`, broadcasting all
//! three) and `masked_fill(a, mask, value)` (attention's causal and padding masks).
//!
//! A mask element is true when non-zero; the mask is data, never differentiated. Backward:
//! `∂L/∂a = G` where the mask chose `a`, 0 elsewhere; likewise for `b`; a broadcast operand
//! sums its gradients in row-major order of the output.

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::tensor::{Layout, Tensor, broadcast_shapes, walk};

/// `mask ? a : b`, elementwise with broadcasting.
#[derive(Clone, Copy, Debug)]
pub struct Where;

fn layouts(x: &[&Tensor]) -> Result<[Layout; 3], NablaError> {
    let ab = broadcast_shapes(x[1].dims(), x[2].dims(), "where")?;
    let dims = broadcast_shapes(x[0].dims(), ab.as_slice(), "where")?;
    let l = |t: &Tensor| Layout::contiguous(t.dims_value()).broadcast_to(dims, "where");
    Ok([l(x[0])?, l(x[1])?, l(x[2])?])
}

impl CustomOp for Where {
    fn name(&self) -> &str {
        "where"
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let [lm, la, lb] = layouts(x)?;
        out.reset_for_overwrite(lm.dims);
        let (m, a, b, o) = (x[0].data(), x[1].data(), x[2].data(), out.data_mut());
        walk([&lm, &la, &lb], |i, [pm, pa, pb]| {
            o[i] = if m[pm] != 0.0 { a[pa] } else { b[pb] };
        });
        Ok(())
    }

    fn backward(&self, g: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let [lm, la, lb] = layouts(g.inputs)?;
        let mut da = Tensor::zeros_dims(g.inputs[1].dims_value());
        let mut db = Tensor::zeros_dims(g.inputs[2].dims_value());
        let (m, up) = (g.inputs[0].data(), g.upstream.data());
        let (a, b) = (da.data_mut(), db.data_mut());
        walk([&lm, &la, &lb], |i, [pm, pa, pb]| {
            if m[pm] != 0.0 {
                a[pa] += up[i];
            } else {
                b[pb] += up[i];
            }
        });
        Ok(vec![
            None,
            g.wanted[1].then_some(da),
            g.wanted[2].then_some(db),
        ])
    }
}

impl Tape<'_> {
    /// `mask ? a : b` elementwise, all three broadcast to one shape (mask: non-zero = true).
    pub fn where_cond(&mut self, mask: Var, a: Var, b: Var) -> Result<Var, NablaError> {
        self.custom(Where, &[mask, a, b])
    }

    /// `a` with `value` wherever `mask` (broadcast to `a`'s shape) is non-zero: PyTorch's
    /// `masked_fill`, e.g. `-inf` above the diagonal of attention scores.
    pub fn masked_fill(&mut self, a: Var, mask: Var, value: f32) -> Result<Var, NablaError> {
        self.check_var(a, "masked_fill")?;
        self.check_var(mask, "masked_fill")?;
        let filled = self.input(&Tensor::scalar(value).reshape(&[])?);
        let out = self.where_cond(mask, filled, a)?;
        if self.dims(out) != self.dims(a) {
            return Err(NablaError::Shape(format!(
                "masked_fill: a mask of shape {:?} does not broadcast to {:?} without growing it",
                self.dims(mask),
                self.dims(a)
            )));
        }
        Ok(out)
    }
}
