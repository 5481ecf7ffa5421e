//! `Tensor`: a shape of any rank (up to [`MAX_RANK`]) and a contiguous, row-major buffer of
//! `f32`; [`TensorView`] looks at the same buffer through strides.
//!
//! A tensor owns numbers and nothing else: no gradient, no graph, no device. Everything that
//! differentiates lives in [`crate::autograd`]; everything that loops fast lives in
//! [`crate::kernels`]. The layers of the MLP path work on matrices (`rows × cols`): a batch of
//! samples is one row each, a layer's weight is `[out, in]` as in PyTorch, a bias is `1 × out`,
//! a scalar is `1 × 1`. A tensor of another rank is seen by those kernels as
//! [`Tensor::rows`] `×` [`Tensor::cols`]: every axis but the last flattened into rows, as
//! PyTorch's `nn.Linear` and `softmax(dim=-1)` see it.

mod layout;
mod view;

pub(crate) use layout::resolve_axis;
pub use layout::{Dims, Layout, MAX_RANK, broadcast_shapes, walk, walk2};
pub use view::TensorView;
pub(crate) use view::infer_shape;

use crate::error::NablaError;

/// A dense row-major tensor of `f32` of any rank up to [`MAX_RANK`].
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    dims: Dims,
    /// The matrix view of `dims`, kept beside it so the 2-D kernels' `rows()`/`cols()` cost
    /// a field read, as they did when tensors were matrices.
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// `(rows, cols)` of the matrix view of `dims`: every axis but the last × the last.
fn matrix_view(dims: &Dims) -> (usize, usize) {
    match dims.as_slice() {
        [] => (1, 1),
        [n] => (1, *n),
        [lead @ .., last] => (lead.iter().product(), *last),
    }
}

impl Default for Tensor {
    /// An empty `0 × 0` matrix.
    fn default() -> Self {
        Self::zeros(0, 0)
    }
}

impl Tensor {
    fn make(dims: Dims, data: Vec<f32>) -> Self {
        let (rows, cols) = matrix_view(&dims);
        Self {
            dims,
            rows,
            cols,
            data,
        }
    }

    fn set_dims(&mut self, dims: Dims) {
        (self.rows, self.cols) = matrix_view(&dims);
        self.dims = dims;
    }

    /// A `rows × cols` tensor of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self::make(Dims::matrix(rows, cols), vec![0.0; rows * cols])
    }

    /// A tensor of zeros of shape `dims`.
    pub fn zeros_dims(dims: Dims) -> Self {
        Self::make(dims, vec![0.0; dims.len()])
    }

    /// A tensor of shape `shape` with every element `value`; fails for a rank above
    /// [`MAX_RANK`] or a shape whose size overflows.
    pub fn full(shape: &[usize], value: f32) -> Result<Self, NablaError> {
        let dims = Dims::new(shape)?;
        Ok(Self::make(dims, vec![value; dims.len()]))
    }

    /// A `1 × 1` tensor holding `value`.
    pub fn scalar(value: f32) -> Self {
        Self::make(Dims::matrix(1, 1), vec![value])
    }

    /// Wraps `data` as a tensor of shape `shape` (row-major); fails if the length does not
    /// match, naming both.
    ///
    /// ```
    /// use nabla::Tensor;
    /// let t = Tensor::from_shape(&[2, 1, 3], vec![0.0; 6]).unwrap();
    /// assert_eq!(t.dims(), &[2, 1, 3]);
    /// assert_eq!((t.rows(), t.cols()), (2, 3));
    /// assert!(Tensor::from_shape(&[4], vec![0.0; 3]).is_err());
    /// ```
    pub fn from_shape(shape: &[usize], data: Vec<f32>) -> Result<Self, NablaError> {
        let dims = Dims::new(shape)?;
        if dims.len() != data.len() {
            return Err(NablaError::Shape(format!(
                "a tensor of shape {shape:?} needs {} values, got {}",
                dims.len(),
                data.len()
            )));
        }
        Ok(Self::make(dims, data))
    }

    /// Wraps `data` as a `rows × cols` tensor; fails if the length does not match.
    ///
    /// ```
    /// use nabla::Tensor;
    /// let t = Tensor::from_vec(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    /// assert_eq!(t.get(1, 0), 4.0);
    /// assert!(Tensor::from_vec(2, 2, vec![1.0]).is_err());
    /// ```
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, NablaError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(NablaError::Shape(format!(
                "a {rows}×{cols} tensor needs {} values, got {}",
                rows.saturating_mul(cols),
                data.len()
            )));
        }
        Ok(Self::make(Dims::matrix(rows, cols), data))
    }

    /// Number of rows of the matrix view: the product of every axis but the last (the batch
    /// dimension for activations, `out` for weights; 1 for rank 0 and 1).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns of the matrix view: the size of the last axis (1 for rank 0).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)` of the matrix view.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows(), self.cols())
    }

    /// The shape, outermost axis first.
    pub fn dims(&self) -> &[usize] {
        self.dims.as_slice()
    }

    /// The shape as a [`Dims`] value.
    pub fn dims_value(&self) -> Dims {
        self.dims
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.rank()
    }

    /// A strided view of the whole tensor (no copy); see [`TensorView`].
    pub fn view(&self) -> TensorView<'_> {
        TensorView::of(self)
    }

    /// The same elements as shape `shape`, without copying (one entry may be `usize::MAX`
    /// for "the rest"); the error names both shapes.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self, NablaError> {
        let dims = infer_shape(self.data.len(), shape, self.dims())?;
        self.set_dims(dims);
        Ok(self)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[f32] {
        let c = self.cols();
        &self.data[r * c..(r + 1) * c]
    }

    /// The element at `(r, c)` of the matrix view.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols() + c]
    }

    /// Sets the element at `(r, c)` of the matrix view.
    pub fn set(&mut self, r: usize, c: usize, value: f32) {
        let cols = self.cols();
        self.data[r * cols + c] = value;
    }

    /// Consumes the tensor and returns its buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Reshapes in place to `rows × cols`, keeping the allocation when it is large enough.
    /// The contents are unspecified afterwards (callers overwrite them). This is how buffers are
    /// reused between training steps without allocating.
    pub fn reshape_for_overwrite(&mut self, rows: usize, cols: usize) {
        self.set_dims(Dims::matrix(rows, cols));
        self.data.resize(rows * cols, 0.0);
    }

    /// [`Tensor::reshape_for_overwrite`] to any shape.
    pub fn reset_for_overwrite(&mut self, dims: Dims) {
        self.set_dims(dims);
        self.data.resize(dims.len(), 0.0);
    }

    /// Fills every element with `value`.
    pub fn fill(&mut self, value: f32) {
        self.data.fill(value);
    }

    /// Copies `other`'s shape and values into `self`, reusing `self`'s allocation.
    pub fn copy_from(&mut self, other: &Tensor) {
        self.set_dims(other.dims);
        self.data.clear();
        self.data.extend_from_slice(&other.data);
    }

    /// True when every element is finite (no NaN, no ±inf).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}
