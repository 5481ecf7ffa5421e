//! Shape ops on the tape: `reshape`, `permute`, `transpose`, `narrow`, `unsqueeze`,
//! `squeeze`, `broadcast_to`, `concat`, `stack`, `split`, `chunk`.
//!
//! A [`TensorView`](crate::tensor::TensorView) changes a shape without copying; on the tape an
//! op's output is its own contiguous tensor, so each of these ops copies the elements its view
//! selects (through the view's strides) into the output buffer, reused between steps. Axes are
//! `isize` as in the views: `-1` is the last axis.
//!
//! Every view op reads `out[i] = x[p(i)]` for a position map `p` (the view's layout), so one
//! backward serves them all: `∂L/∂x[p(i)] += ∂L/∂out[i]`, in row-major order of the output.
//! For `broadcast_to` several `i` share one `p(i)`: that is the sum back to the source shape,
//! in a fixed order whatever the thread count.
//!
//! | op | `∂L/∂x` |
//! |---|---|
//! | reshape, unsqueeze, squeeze | upstream, reshaped to `x`'s shape |
//! | permute, transpose | upstream with the inverse permutation |
//! | narrow | upstream in the narrowed range, 0 elsewhere |
//! | broadcast_to | upstream summed over the repeated axes |
//! | concat, stack | the input's slice of upstream |

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::tensor::{Dims, Tensor, TensorView, resolve_axis};

/// Which view a [`ViewOp`] records (axes as the views take them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewKind {
    /// `reshape(shape)`; one size may be `usize::MAX` ("the rest").
    Reshape(Vec<usize>),
    /// `permute(order)`: axis `i` of the output is axis `order[i]` of the input.
    Permute(Vec<isize>),
    /// `transpose(a, b)`.
    Transpose(isize, isize),
    /// `narrow(axis, start, len)`.
    Narrow(isize, usize, usize),
    /// `unsqueeze(axis)`.
    Unsqueeze(isize),
    /// `squeeze(axis)`.
    Squeeze(isize),
    /// `broadcast_to(shape)`.
    BroadcastTo(Vec<usize>),
}

/// A view of the input copied into a contiguous output (see the module docs).
#[derive(Clone, Debug)]
pub struct ViewOp(pub ViewKind);

impl ViewOp {
    /// The view of `x` this op selects.
    fn view<'a>(&self, x: &'a Tensor) -> Result<TensorView<'a>, NablaError> {
        let v = x.view();
        match &self.0 {
            ViewKind::Reshape(shape) => v.reshape(shape),
            ViewKind::Permute(order) => {
                let dims = x.dims_value();
                let order = order
                    .iter()
                    .map(|&a| dims.axis(a, "permute"))
                    .collect::<Result<Vec<_>, _>>()?;
                v.permute(&order)
            }
            &ViewKind::Transpose(a, b) => v.transpose(a, b),
            &ViewKind::Narrow(axis, start, len) => v.narrow(axis, start, len),
            &ViewKind::Unsqueeze(axis) => v.unsqueeze(axis),
            &ViewKind::Squeeze(axis) => v.squeeze(axis),
            ViewKind::BroadcastTo(shape) => v.broadcast_to(shape),
        }
    }
}

impl CustomOp for ViewOp {
    fn name(&self) -> &str {
        match self.0 {
            ViewKind::Reshape(_) => "reshape",
            ViewKind::Permute(_) => "permute",
            ViewKind::Transpose(..) => "transpose",
            ViewKind::Narrow(..) => "narrow",
            ViewKind::Unsqueeze(_) => "unsqueeze",
            ViewKind::Squeeze(_) => "squeeze",
            ViewKind::BroadcastTo(_) => "broadcast_to",
        }
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let view = self.view(x[0])?;
        out.reset_for_overwrite(view.layout().dims);
        view.copy_into(out.data_mut());
        Ok(())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let x = b.inputs[0];
        let layout = *self.view(x)?.layout();
        let up = b.upstream.data();
        let mut grad = Tensor::zeros_dims(x.dims_value());
        if layout.is_contiguous() {
            let start = layout.offset;
            grad.data_mut()[start..start + up.len()].copy_from_slice(up);
        } else {
            let g = grad.data_mut();
            layout.for_each_index(|i, p| g[p] += up[i]);
        }
        Ok(vec![Some(grad)])
    }
}

/// `concat` / `stack` of several inputs along one axis (see [`Tape::concat`]).
#[derive(Clone, Copy, Debug)]
pub struct Concat {
    /// The axis, negative from the end (of the output's rank for `stack`).
    pub axis: isize,
    /// `stack`: each input gets a new axis of size 1 at `axis` first.
    pub new_axis: bool,
}

/// How concat lays its inputs out: the output shape, the number of outer blocks, and for each
/// input the length of its run per outer block.
struct Plan {
    dims: Dims,
    outer: usize,
    runs: Vec<usize>,
}

impl Concat {
    fn op_name(&self) -> &'static str {
        if self.new_axis { "stack" } else { "concat" }
    }

    /// Checks that the shapes agree off the axis and plans the copy.
    fn plan(&self, x: &[&Tensor]) -> Result<Plan, NablaError> {
        let name = self.op_name();
        let Some(first) = x.first() else {
            return Err(NablaError::Shape(format!("{name}: no tensors given")));
        };
        let shape_of = |t: &Tensor| -> Result<Vec<usize>, NablaError> {
            let mut s = t.dims().to_vec();
            if self.new_axis {
                // A new axis may go anywhere in `0..=rank`.
                let ax = resolve_axis(self.axis, s.len() + 1, name, &s)?;
                s.insert(ax, 1);
            }
            Ok(s)
        };
        let base = shape_of(first)?;
        let ax = Dims::new(&base)?.axis(self.axis, name)?;
        let mut out = base.clone();
        out[ax] = 0;
        let mut runs = Vec::with_capacity(x.len());
        let inner: usize = base[ax + 1..].iter().product();
        for t in x {
            let s = shape_of(t)?;
            let agree = s.len() == base.len()
                && s.iter()
                    .zip(&base)
                    .enumerate()
                    .all(|(i, (a, b))| i == ax || a == b);
            if !agree {
                let shapes: Vec<&[usize]> = x.iter().map(|t| t.dims()).collect();
                return Err(NablaError::Shape(format!(
                    "{name}: shapes {shapes:?} differ off axis {} (every other size must match)",
                    self.axis
                )));
            }
            out[ax] += s[ax];
            runs.push(s[ax] * inner);
        }
        let outer = base[..ax].iter().product();
        Ok(Plan {
            dims: Dims::new(&out)?,
            outer,
            runs,
        })
    }
}

impl CustomOp for Concat {
    fn name(&self) -> &str {
        self.op_name()
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let plan = self.plan(x)?;
        out.reset_for_overwrite(plan.dims);
        let o = out.data_mut();
        let mut at = 0;
        for block in 0..plan.outer {
            for (t, &run) in x.iter().zip(&plan.runs) {
                o[at..at + run].copy_from_slice(&t.data()[block * run..(block + 1) * run]);
                at += run;
            }
        }
        Ok(())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let plan = self.plan(b.inputs)?;
        let up = b.upstream.data();
        let mut grads: Vec<Option<Tensor>> = b
            .inputs
            .iter()
            .zip(b.wanted)
            .map(|(t, &w)| w.then(|| Tensor::zeros_dims(t.dims_value())))
            .collect();
        let mut at = 0;
        for block in 0..plan.outer {
            for (g, &run) in grads.iter_mut().zip(&plan.runs) {
                if let Some(g) = g {
                    g.data_mut()[block * run..(block + 1) * run].copy_from_slice(&up[at..at + run]);
                }
                at += run;
            }
        }
        Ok(grads)
    }
}

impl Tape<'_> {
    /// Records `view` of `x`, copied into a contiguous output.
    fn view_op(&mut self, x: Var, view: ViewKind) -> Result<Var, NablaError> {
        self.custom(ViewOp(view), &[x])
    }

    /// `x` with shape `shape` (same elements, row-major); one size may be `usize::MAX`, meaning
    /// "the rest". The output is a contiguous copy; the error names both shapes.
    ///
    /// ```
    /// use nabla::{Params, Tape, Tensor, Workspace};
    /// let params = Params::new();
    /// let mut ws = Workspace::new();
    /// let mut tape = Tape::new(&params, &mut ws);
    /// let x = tape.input(&Tensor::from_shape(&[2, 6], (0..12).map(|i| i as f32).collect()).unwrap());
    /// let y = tape.reshape(x, &[3, usize::MAX, 2]).unwrap();
    /// assert_eq!(tape.dims(y), &[3, 2, 2]);
    /// let z = tape.transpose(y, 0, -1).unwrap();
    /// assert_eq!(tape.dims(z), &[2, 2, 3]);
    /// assert_eq!(&tape.value(z).data()[..3], &[0.0, 4.0, 8.0]);
    /// ```
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var, NablaError> {
        self.view_op(x, ViewKind::Reshape(shape.to_vec()))
    }

    /// `x` with its axes reordered: axis `i` of the output is axis `order[i]` of `x`
    /// (negative axes count from the end). The output is a contiguous copy.
    pub fn permute(&mut self, x: Var, order: &[isize]) -> Result<Var, NablaError> {
        self.view_op(x, ViewKind::Permute(order.to_vec()))
    }

    /// `x` with axes `a` and `b` swapped (`transpose(x, -2, -1)` transposes the matrices of a
    /// batch). The output is a contiguous copy.
    pub fn transpose(&mut self, x: Var, a: isize, b: isize) -> Result<Var, NablaError> {
        self.view_op(x, ViewKind::Transpose(a, b))
    }

    /// Elements `start..start + len` of `x` along `axis`, copied.
    pub fn narrow(
        &mut self,
        x: Var,
        axis: isize,
        start: usize,
        len: usize,
    ) -> Result<Var, NablaError> {
        self.view_op(x, ViewKind::Narrow(axis, start, len))
    }

    /// `x` with a new axis of size 1 at `axis` (`-1` appends one at the end).
    pub fn unsqueeze(&mut self, x: Var, axis: isize) -> Result<Var, NablaError> {
        self.view_op(x, ViewKind::Unsqueeze(axis))
    }

    /// `x` without axis `axis`, which must have size 1.
    pub fn squeeze(&mut self, x: Var, axis: isize) -> Result<Var, NablaError> {
        self.view_op(x, ViewKind::Squeeze(axis))
    }

    /// `x` repeated to `shape` by NumPy rules (new leading axes, size-1 axes repeated),
    /// materialised; backward sums the gradient back to `x`'s shape in row-major order.
    pub fn broadcast_to(&mut self, x: Var, shape: &[usize]) -> Result<Var, NablaError> {
        self.view_op(x, ViewKind::BroadcastTo(shape.to_vec()))
    }

    /// The inputs joined along `axis`: their shapes must agree on every other axis.
    pub fn concat(&mut self, xs: &[Var], axis: isize) -> Result<Var, NablaError> {
        self.custom(
            Concat {
                axis,
                new_axis: false,
            },
            xs,
        )
    }

    /// The inputs, all of one shape, joined along a new axis `axis` of the output (`0` puts
    /// them first; `-1` last).
    pub fn stack(&mut self, xs: &[Var], axis: isize) -> Result<Var, NablaError> {
        self.custom(
            Concat {
                axis,
                new_axis: true,
            },
            xs,
        )
    }

    /// `x` cut along `axis` into pieces of the given sizes, which must add up to the axis's
    /// size; each piece is its own node (a [`Tape::narrow`]).
    pub fn split(&mut self, x: Var, sizes: &[usize], axis: isize) -> Result<Vec<Var>, NablaError> {
        self.check_var(x, "split")?;
        let dims = self.value(x).dims_value();
        let ax = dims.axis(axis, "split")?;
        if sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s)) != Some(dims[ax]) {
            return Err(NablaError::Shape(format!(
                "split: sizes {sizes:?} do not add up to axis {axis} of shape {dims:?}"
            )));
        }
        let mut start = 0;
        let mut pieces = Vec::with_capacity(sizes.len());
        for &len in sizes {
            pieces.push(self.narrow(x, axis, start, len)?);
            start += len;
        }
        Ok(pieces)
    }

    /// `x` cut along `axis` into `n` pieces of `⌈size / n⌉` (the last may be smaller, and
    /// fewer than `n` pieces come back when the size is too small, as in PyTorch).
    pub fn chunk(&mut self, x: Var, n: usize, axis: isize) -> Result<Vec<Var>, NablaError> {
        self.check_var(x, "chunk")?;
        let dims = self.value(x).dims_value();
        let size = dims[dims.axis(axis, "chunk")?];
        if n == 0 {
            return Err(NablaError::Shape(format!(
                "chunk: 0 pieces asked of axis {axis} of shape {dims:?}"
            )));
        }
        let step = size.div_ceil(n).max(1);
        let mut sizes = vec![step; size / step];
        if !size.is_multiple_of(step) {
            sizes.push(size % step);
        }
        self.split(x, &sizes, axis)
    }
}
