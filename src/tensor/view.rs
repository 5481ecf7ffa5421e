//! `TensorView`: a shape and strides over a tensor's buffer, borrowed, never copied.
//!
//! `transpose`, `permute`, `narrow`, `unsqueeze`, `squeeze`, `broadcast_to` and (when the
//! elements are contiguous) `reshape` only change the [`Layout`]; `contiguous()` copies the
//! elements into a new row-major [`Tensor`]. Axes may be negative (`-1` is the last).
//!
//! ```
//! use nabla::Tensor;
//! let t = Tensor::from_shape(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
//! let tt = t.view().transpose(0, 1).unwrap();          // 3×2, no copy
//! assert_eq!(tt.dims(), &[3, 2]);
//! assert_eq!(tt.get(&[2, 1]).unwrap(), 6.0);
//! assert_eq!(tt.contiguous().data(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
//! let row = t.view().narrow(0, 1, 1).unwrap().squeeze(0).unwrap();
//! assert_eq!(row.contiguous().data(), &[4.0, 5.0, 6.0]);
//! ```

use super::Tensor;
use super::layout::{Dims, Layout, MAX_RANK, resolve_axis};
use crate::error::NablaError;

/// A strided, borrowed view of a tensor's elements.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    data: &'a [f32],
    layout: Layout,
}

impl<'a> TensorView<'a> {
    /// The whole of `t`, row-major.
    pub fn of(t: &'a Tensor) -> Self {
        Self {
            data: t.data(),
            layout: Layout::contiguous(t.dims_value()),
        }
    }

    /// The shape seen through the view.
    pub fn dims(&self) -> &[usize] {
        self.layout.dims.as_slice()
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.layout.dims.rank()
    }

    /// The view's layout: shape, strides (0 on broadcast axes) and offset.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The strides, in elements, of the axes in use.
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// True when the elements are one row-major run of the buffer.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The buffer the view reads (shared with the tensor it came from).
    pub fn storage(&self) -> &'a [f32] {
        self.data
    }

    fn axis(&self, axis: isize, op: &str) -> Result<usize, NablaError> {
        resolve_axis(axis, self.rank(), op, self.dims())
    }

    fn with(&self, sizes: &[usize], strides: &[usize], offset: usize) -> Result<Self, NablaError> {
        let dims = Dims::new(sizes)?;
        let mut s = [0; MAX_RANK];
        s[..strides.len()].copy_from_slice(strides);
        Ok(Self {
            data: self.data,
            layout: Layout {
                dims,
                strides: s,
                offset,
            },
        })
    }

    /// Axes reordered: axis `i` of the result is axis `order[i]` of `self`.
    pub fn permute(&self, order: &[usize]) -> Result<Self, NablaError> {
        let r = self.rank();
        let mut seen = [false; MAX_RANK];
        if order.len() != r
            || order
                .iter()
                .any(|&a| a >= r || std::mem::replace(&mut seen[a], true))
        {
            return Err(NablaError::Shape(format!(
                "permute: {order:?} is not an order of the {r} axes of shape {:?}",
                self.dims()
            )));
        }
        let sizes: Vec<usize> = order.iter().map(|&a| self.dims()[a]).collect();
        let strides: Vec<usize> = order.iter().map(|&a| self.strides()[a]).collect();
        self.with(&sizes, &strides, self.layout.offset)
    }

    /// Axes `a` and `b` swapped.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Self, NablaError> {
        let (a, b) = (self.axis(a, "transpose")?, self.axis(b, "transpose")?);
        let mut order: Vec<usize> = (0..self.rank()).collect();
        order.swap(a, b);
        self.permute(&order)
    }

    /// Elements `start..start + len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Self, NablaError> {
        let ax = self.axis(axis, "narrow")?;
        let size = self.dims()[ax];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(NablaError::Shape(format!(
                "narrow: {start}..{start}+{len} along axis {ax} is outside shape {:?}",
                self.dims()
            )));
        }
        let mut sizes = self.dims().to_vec();
        sizes[ax] = len;
        let offset = self.layout.offset + start * self.strides()[ax];
        self.with(&sizes, self.strides(), offset)
    }

    /// A new axis of size 1 at `axis` (`0..=rank`; negative counts from the end).
    pub fn unsqueeze(&self, axis: isize) -> Result<Self, NablaError> {
        let ax = resolve_axis(axis, self.rank() + 1, "unsqueeze", self.dims())?;
        let mut sizes = self.dims().to_vec();
        let mut strides = self.strides().to_vec();
        sizes.insert(ax, 1);
        strides.insert(ax, 0);
        self.with(&sizes, &strides, self.layout.offset)
    }

    /// Axis `axis`, which must have size 1, removed.
    pub fn squeeze(&self, axis: isize) -> Result<Self, NablaError> {
        let ax = self.axis(axis, "squeeze")?;
        if self.dims()[ax] != 1 {
            return Err(NablaError::Shape(format!(
                "squeeze: axis {ax} of shape {:?} has size {}, not 1",
                self.dims(),
                self.dims()[ax]
            )));
        }
        let mut sizes = self.dims().to_vec();
        let mut strides = self.strides().to_vec();
        sizes.remove(ax);
        strides.remove(ax);
        self.with(&sizes, &strides, self.layout.offset)
    }

    /// The view repeated along new leading axes and size-1 axes to `shape` (stride 0).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Self, NablaError> {
        let to = Dims::new(shape)?;
        Ok(Self {
            data: self.data,
            layout: self.layout.broadcast_to(to, "broadcast_to")?,
        })
    }

    /// The same elements as `shape` (one size may be `usize::MAX`, meaning "the rest").
    /// Only a contiguous view reshapes without a copy; otherwise call [`contiguous`] first.
    ///
    /// [`contiguous`]: TensorView::contiguous
    pub fn reshape(&self, shape: &[usize]) -> Result<Self, NablaError> {
        let dims = infer_shape(self.layout.dims.len(), shape, self.dims())?;
        if !self.is_contiguous() {
            return Err(NablaError::Shape(format!(
                "reshape: a view of shape {:?} with strides {:?} is not contiguous; \
                 call contiguous() before reshaping to {:?}",
                self.dims(),
                self.strides(),
                dims
            )));
        }
        Ok(Self {
            data: self.data,
            layout: Layout {
                offset: self.layout.offset,
                ..Layout::contiguous(dims)
            },
        })
    }

    /// The element at `index` (one index per axis).
    pub fn get(&self, index: &[usize]) -> Result<f32, NablaError> {
        if index.len() != self.rank() || index.iter().zip(self.dims()).any(|(&i, &d)| i >= d) {
            return Err(NablaError::Shape(format!(
                "index {index:?} is outside shape {:?}",
                self.dims()
            )));
        }
        let pos: usize = index.iter().zip(self.strides()).map(|(i, s)| i * s).sum();
        Ok(self.data[self.layout.offset + pos])
    }

    /// The elements copied, in row-major order of the view's shape, into a new tensor.
    pub fn contiguous(&self) -> Tensor {
        let mut out = Tensor::zeros_dims(self.layout.dims);
        self.copy_into(out.data_mut());
        out
    }

    /// Writes the elements, row-major, into `dst` (which must hold exactly that many).
    pub(crate) fn copy_into(&self, dst: &mut [f32]) {
        if self.is_contiguous() {
            let start = self.layout.offset;
            dst.copy_from_slice(&self.data[start..start + dst.len()]);
        } else {
            self.layout.for_each_index(|i, p| dst[i] = self.data[p]);
        }
    }
}

/// `shape` checked to hold `len` elements; one `usize::MAX` entry is inferred.
pub(crate) fn infer_shape(len: usize, shape: &[usize], from: &[usize]) -> Result<Dims, NablaError> {
    let mut sizes = shape.to_vec();
    let holes = sizes.iter().filter(|&&s| s == usize::MAX).count();
    let known: Option<usize> = sizes
        .iter()
        .filter(|&&s| s != usize::MAX)
        .try_fold(1usize, |a, &s| a.checked_mul(s));
    let bad = || {
        NablaError::Shape(format!(
            "reshape: {from:?} ({len} elements) cannot become {}",
            describe(shape)
        ))
    };
    match (holes, known) {
        (0, Some(k)) if k == len => {}
        (1, Some(k)) if k > 0 && len.is_multiple_of(k) => {
            for s in sizes.iter_mut().filter(|s| **s == usize::MAX) {
                *s = len / k;
            }
        }
        _ => return Err(bad()),
    }
    Dims::new(&sizes)
}

fn describe(shape: &[usize]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|&s| {
            if s == usize::MAX {
                "-1".into()
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}
