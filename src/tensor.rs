//! `Tensor`: a shape and a contiguous, row-major buffer of `f32`.
//!
//! A tensor owns numbers and nothing else: no gradient, no graph, no device. Everything that
//! differentiates lives in [`crate::autograd`]; everything that loops fast lives in
//! [`crate::kernels`]. Tensors here are matrices (`rows × cols`): a batch of samples is one row
//! each, a layer's weight is `[out, in]` as in PyTorch, a bias is `1 × out`, a scalar is `1 × 1`.

use crate::error::NablaError;

/// A dense row-major `rows × cols` matrix of `f32`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensor {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Tensor {
    /// A `rows × cols` tensor of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// A `1 × 1` tensor holding `value`.
    pub fn scalar(value: f32) -> Self {
        Self {
            rows: 1,
            cols: 1,
            data: vec![value],
        }
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
        Ok(Self { rows, cols, data })
    }

    /// Number of rows (the batch dimension for activations, `out` for weights).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
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
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The element at `(r, c)`.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// Sets the element at `(r, c)`.
    pub fn set(&mut self, r: usize, c: usize, value: f32) {
        self.data[r * self.cols + c] = value;
    }

    /// Consumes the tensor and returns its buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Reshapes in place to `rows × cols`, keeping the allocation when it is large enough.
    /// The contents are unspecified afterwards (callers overwrite them). This is how buffers are
    /// reused between training steps without allocating.
    pub fn reshape_for_overwrite(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, 0.0);
    }

    /// Fills every element with `value`.
    pub fn fill(&mut self, value: f32) {
        self.data.fill(value);
    }

    /// Copies `other`'s shape and values into `self`, reusing `self`'s allocation.
    pub fn copy_from(&mut self, other: &Tensor) {
        self.rows = other.rows;
        self.cols = other.cols;
        self.data.clear();
        self.data.extend_from_slice(&other.data);
    }

    /// True when every element is finite (no NaN, no ±inf).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}
