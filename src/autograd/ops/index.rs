//! Indexing on the tape: `index_select` (whole slices picked along an axis: the embedding
//! lookup `weight[ids]`), `gather` (one element per index, like `torch.gather`) and
//! `embedding`.
//!
//! Every index is checked before anything is read; one out of range is an error naming the
//! index, the axis and its size, never a panic. Backward is the scatter-add: each output
//! element's gradient is added into the element it was read from, in row-major order of the
//! output, so an index repeated (a word seen twice) gets the sum in a fixed order.
//!
//! | op | `∂L/∂x` |
//! |---|---|
//! | index_select | `∂L/∂x[…, j, …] = Σ_{p: ids[p] = j} ∂L/∂out[…, p, …]` |
//! | gather | `∂L/∂x[pos(i)] = Σ_{i reading pos} ∂L/∂out[i]` (none for the index) |

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::tensor::{Dims, Tensor};

/// Whole slices of the input picked along `axis` by `indices` (see [`Tape::index_select`]).
#[derive(Clone, Debug)]
pub struct IndexSelect {
    /// The axis indexed, negative from the end.
    pub axis: isize,
    /// The positions along `axis` to pick, in output order (repeats allowed).
    pub indices: Vec<usize>,
}

/// The output shape and the block sizes of an index select: `outer` blocks of `size` slices
/// of `inner` elements in the input.
struct Blocks {
    dims: Dims,
    outer: usize,
    size: usize,
    inner: usize,
}

impl IndexSelect {
    fn blocks(&self, x: &Tensor) -> Result<Blocks, NablaError> {
        let dims = x.dims_value();
        let ax = dims.axis(self.axis, "index_select")?;
        let size = dims[ax];
        if let Some((p, &i)) = self.indices.iter().enumerate().find(|(_, i)| **i >= size) {
            return Err(NablaError::Shape(format!(
                "index_select: index {i} (position {p}) is out of range for axis {ax} of size \
                 {size} (shape {dims:?})"
            )));
        }
        let mut out = dims.as_slice().to_vec();
        out[ax] = self.indices.len();
        Ok(Blocks {
            dims: Dims::new(&out)?,
            outer: dims.as_slice()[..ax].iter().product(),
            size,
            inner: dims.as_slice()[ax + 1..].iter().product(),
        })
    }
}

impl CustomOp for IndexSelect {
    fn name(&self) -> &str {
        "index_select"
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let b = self.blocks(x[0])?;
        out.reset_for_overwrite(b.dims);
        let (src, dst) = (x[0].data(), out.data_mut());
        let mut at = 0;
        for block in 0..b.outer {
            for &i in &self.indices {
                let from = (block * b.size + i) * b.inner;
                dst[at..at + b.inner].copy_from_slice(&src[from..from + b.inner]);
                at += b.inner;
            }
        }
        Ok(())
    }

    fn backward(&self, g: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let x = g.inputs[0];
        let b = self.blocks(x)?;
        let mut grad = Tensor::zeros_dims(x.dims_value());
        let (up, dst) = (g.upstream.data(), grad.data_mut());
        let mut at = 0;
        for block in 0..b.outer {
            for &i in &self.indices {
                let to = (block * b.size + i) * b.inner;
                for (d, u) in dst[to..to + b.inner].iter_mut().zip(&up[at..at + b.inner]) {
                    *d += u;
                }
                at += b.inner;
            }
        }
        Ok(vec![Some(grad)])
    }
}

/// `out[i] = x[i with its coordinate along axis replaced by index[i]]`, like `torch.gather`
/// (see [`Tape::gather`]).
#[derive(Clone, Copy, Debug)]
pub struct Gather {
    /// The axis indexed, negative from the end.
    pub axis: isize,
}

impl Gather {
    /// For each element of `index` (row-major), the position in `x` it reads; every index
    /// checked to be a whole number in range.
    fn positions(&self, x: &Tensor, index: &Tensor) -> Result<Vec<usize>, NablaError> {
        let (xd, id) = (x.dims_value(), index.dims_value());
        let ax = xd.axis(self.axis, "gather")?;
        let fits = id.rank() == xd.rank() && (0..xd.rank()).all(|d| d == ax || id[d] <= xd[d]);
        if !fits {
            return Err(NablaError::Shape(format!(
                "gather: an index of shape {id:?} does not fit an input of shape {xd:?} \
                 along axis {ax} (same rank, every other size at most the input's)"
            )));
        }
        let (xs, is) = (xd.contiguous_strides(), id.contiguous_strides());
        let mut out = Vec::with_capacity(index.len());
        for (i, &v) in index.data().iter().enumerate() {
            if !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < xd[ax]) {
                return Err(NablaError::Shape(format!(
                    "gather: index {v} (element {i}) is out of range for axis {ax} of size {} \
                     (shape {xd:?})",
                    xd[ax]
                )));
            }
            let pos: usize = (0..id.rank())
                .map(|d| {
                    let c = if d == ax {
                        v as usize
                    } else {
                        i / is[d] % id[d]
                    };
                    c * xs[d]
                })
                .sum();
            out.push(pos);
        }
        Ok(out)
    }
}

impl CustomOp for Gather {
    fn name(&self) -> &str {
        "gather"
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let pos = self.positions(x[0], x[1])?;
        out.reset_for_overwrite(x[1].dims_value());
        let src = x[0].data();
        for (o, &p) in out.data_mut().iter_mut().zip(&pos) {
            *o = src[p];
        }
        Ok(())
    }

    fn backward(&self, g: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let (x, index) = (g.inputs[0], g.inputs[1]);
        let pos = self.positions(x, index)?;
        let mut grad = Tensor::zeros_dims(x.dims_value());
        let dst = grad.data_mut();
        for (&p, &u) in pos.iter().zip(g.upstream.data()) {
            dst[p] += u;
        }
        Ok(vec![Some(grad), None])
    }
}

impl Tape<'_> {
    /// The slices of `x` at positions `indices` along `axis`, in that order (repeats allowed):
    /// the output's `axis` has `indices.len()` entries. With `axis = 0` on a `[vocab, dim]`
    /// weight this is the embedding lookup. An index out of range is an error naming it.
    ///
    /// ```
    /// use nabla::{Params, Tape, Tensor, Workspace};
    /// let params = Params::new();
    /// let mut ws = Workspace::new();
    /// let mut tape = Tape::new(&params, &mut ws);
    /// let w = tape.input(&Tensor::from_shape(&[3, 2], vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]).unwrap());
    /// let e = tape.index_select(w, 0, &[2, 0, 2]).unwrap();
    /// assert_eq!(tape.value(e).data(), &[20.0, 21.0, 0.0, 1.0, 20.0, 21.0]);
    /// assert!(tape.index_select(w, 0, &[3]).unwrap_err().to_string().contains("index 3"));
    /// ```
    pub fn index_select(
        &mut self,
        x: Var,
        axis: isize,
        indices: &[usize],
    ) -> Result<Var, NablaError> {
        let op = IndexSelect {
            axis,
            indices: indices.to_vec(),
        };
        self.custom(op, &[x])
    }

    /// `torch.gather`: `out[i] = x[i with its coordinate along axis replaced by index[i]]`.
    /// `index` has `x`'s rank, sizes at most `x`'s off the axis, and whole numbers in
    /// `0..size` (an index that is not is an error naming it); the output has `index`'s shape.
    /// No gradient flows into `index`.
    pub fn gather(&mut self, x: Var, axis: isize, index: Var) -> Result<Var, NablaError> {
        self.custom(Gather { axis }, &[x, index])
    }

    /// The embedding lookup: rows `ids` of `weight` (`[vocab, dim]`), shaped
    /// `batch_shape + [dim]` (`ids` holds `batch_shape`'s elements row-major, e.g.
    /// `[batch, time]`).
    pub fn embedding(
        &mut self,
        weight: Var,
        ids: &[usize],
        batch_shape: &[usize],
    ) -> Result<Var, NablaError> {
        self.check_var(weight, "embedding")?;
        let w = self.dims(weight).to_vec();
        let [_, dim] = w[..] else {
            return Err(NablaError::Shape(format!(
                "embedding: the weight must be [vocab, dim], got {w:?}"
            )));
        };
        if batch_shape.iter().product::<usize>() != ids.len() {
            return Err(NablaError::Shape(format!(
                "embedding: {} ids do not fill the batch shape {batch_shape:?}",
                ids.len()
            )));
        }
        let rows = self.index_select(weight, 0, ids)?;
        let mut shape = batch_shape.to_vec();
        shape.push(dim);
        if shape == [ids.len(), dim] {
            return Ok(rows);
        }
        self.reshape(rows, &shape)
    }
}
