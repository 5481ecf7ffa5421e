//! `Dims` (a shape of up to [`MAX_RANK`] dimensions, stored inline so it is `Copy`) and
//! `Layout` (a shape, strides and an offset into a buffer): the arithmetic every view and every
//! broadcasting op shares, with every product checked so no shape can wrap around.

use crate::error::NablaError;

/// The largest rank a tensor may have.
pub const MAX_RANK: usize = 6;

/// A shape: up to [`MAX_RANK`] sizes, stored inline (no allocation, `Copy`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dims {
    rank: u8,
    sizes: [usize; MAX_RANK],
}

impl Dims {
    /// The shape `sizes`; fails when there are more than [`MAX_RANK`] of them or their
    /// product overflows `usize`.
    pub fn new(sizes: &[usize]) -> Result<Self, NablaError> {
        if sizes.len() > MAX_RANK {
            return Err(NablaError::Shape(format!(
                "a tensor has at most {MAX_RANK} dimensions, got {} ({sizes:?})",
                sizes.len()
            )));
        }
        let mut d = Self {
            rank: sizes.len() as u8,
            sizes: [0; MAX_RANK],
        };
        d.sizes[..sizes.len()].copy_from_slice(sizes);
        d.checked_len()?;
        Ok(d)
    }

    /// `rows × cols` (always valid).
    pub(crate) fn matrix(rows: usize, cols: usize) -> Self {
        let mut sizes = [0; MAX_RANK];
        sizes[0] = rows;
        sizes[1] = cols;
        Self { rank: 2, sizes }
    }

    /// The sizes, outermost first.
    pub fn as_slice(&self) -> &[usize] {
        &self.sizes[..self.rank as usize]
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// Number of elements (the product of the sizes; 1 for rank 0).
    pub fn len(&self) -> usize {
        self.as_slice().iter().product()
    }

    /// True when some size is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The product of the sizes, or an error naming the shape when it overflows.
    pub fn checked_len(&self) -> Result<usize, NablaError> {
        self.as_slice()
            .iter()
            .try_fold(1usize, |acc, &s| acc.checked_mul(s))
            .ok_or_else(|| {
                NablaError::Shape(format!(
                    "the shape {:?} has more elements than fit in memory",
                    self.as_slice()
                ))
            })
    }

    /// This shape with its last axis set to `size` (a `[…, k]` input's `[…, n]` output);
    /// rank 0 becomes `[size]`.
    pub fn with_last(&self, size: usize) -> Result<Self, NablaError> {
        let mut d = *self;
        match d.rank() {
            0 => {
                d.rank = 1;
                d.sizes[0] = size;
            }
            r => d.sizes[r - 1] = size,
        }
        d.checked_len()?;
        Ok(d)
    }

    /// Row-major (C-order) strides of this shape.
    pub fn contiguous_strides(&self) -> [usize; MAX_RANK] {
        let mut strides = [0; MAX_RANK];
        let mut acc = 1;
        for i in (0..self.rank()).rev() {
            strides[i] = acc;
            acc *= self.sizes[i];
        }
        strides
    }

    /// Axis `axis` counted from the end when negative (`-1` is the last), checked against the
    /// rank; `op` names the operation in the error.
    pub fn axis(&self, axis: isize, op: &str) -> Result<usize, NablaError> {
        resolve_axis(axis, self.rank(), op, self.as_slice())
    }
}

impl std::fmt::Debug for Dims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_slice())
    }
}

impl std::ops::Index<usize> for Dims {
    type Output = usize;
    fn index(&self, i: usize) -> &usize {
        &self.as_slice()[i]
    }
}

/// `axis` (negative counts from the end) as an index below `rank`.
pub(crate) fn resolve_axis(
    axis: isize,
    rank: usize,
    op: &str,
    shape: &[usize],
) -> Result<usize, NablaError> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(0) {
        return Err(NablaError::Shape(format!(
            "{op}: axis {axis} is out of range for shape {shape:?} (rank {rank})"
        )));
    }
    Ok(a as usize)
}

/// The NumPy broadcast of two shapes: aligned at the last axis, each pair of sizes equal or
/// one of them 1. The error names both shapes and the op.
pub fn broadcast_shapes(a: &[usize], b: &[usize], op: &str) -> Result<Dims, NablaError> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(NablaError::Shape(format!(
                    "{op}: shapes {a:?} and {b:?} do not broadcast (axis {i}: {da} vs {db})"
                )));
            }
        };
    }
    Dims::new(&out)
}

/// A strided walk over a buffer: a shape, a stride per axis (0 for a broadcast axis) and the
/// offset of the first element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The shape seen through the layout.
    pub dims: Dims,
    /// Elements to step in the buffer per step along each axis.
    pub strides: [usize; MAX_RANK],
    /// Index of element `[0, 0, …]` in the buffer.
    pub offset: usize,
}

impl Layout {
    /// The row-major layout of `dims` from offset 0.
    pub fn contiguous(dims: Dims) -> Self {
        Self {
            dims,
            strides: dims.contiguous_strides(),
            offset: 0,
        }
    }

    /// The strides of the axes in use.
    pub fn strides(&self) -> &[usize] {
        &self.strides[..self.dims.rank()]
    }

    /// True when the elements are the row-major run `offset..offset + len`.
    pub fn is_contiguous(&self) -> bool {
        let want = self.dims.contiguous_strides();
        (0..self.dims.rank()).all(|i| self.dims[i] <= 1 || self.strides[i] == want[i])
    }

    /// This layout broadcast to `to` (NumPy rules: new axes in front, size-1 axes repeated
    /// with stride 0).
    pub fn broadcast_to(&self, to: Dims, op: &str) -> Result<Layout, NablaError> {
        let (from, r) = (self.dims.as_slice(), to.rank());
        if from.len() > r {
            return Err(broadcast_error(from, to.as_slice(), op));
        }
        let mut strides = [0; MAX_RANK];
        let lead = r - from.len();
        for (i, (&f, &s)) in from.iter().zip(self.strides()).enumerate() {
            strides[lead + i] = match (f, to[lead + i]) {
                (x, y) if x == y => s,
                (1, _) => 0,
                _ => return Err(broadcast_error(from, to.as_slice(), op)),
            };
        }
        Ok(Layout {
            dims: to,
            strides,
            offset: self.offset,
        })
    }

    /// Calls `f(i, buffer_index)` for every element in row-major order of the layout's shape.
    pub fn for_each_index(&self, mut f: impl FnMut(usize, usize)) {
        walk([self], |i, [p]| f(i, p));
    }
}

/// Walks two layouts of the same shape together in row-major order, calling
/// `f(i, position_in_a, position_in_b)`: how a broadcasting op pairs its operands.
pub fn walk2(a: &Layout, b: &Layout, mut f: impl FnMut(usize, usize, usize)) {
    walk([a, b], |i, [pa, pb]| f(i, pa, pb));
}

/// Walks `N` layouts of the same shape together in row-major order, calling
/// `f(i, positions)` with element `i`'s position in each buffer.
pub fn walk<const N: usize>(layouts: [&Layout; N], mut f: impl FnMut(usize, [usize; N])) {
    let Some(first) = layouts.first() else { return };
    let dims = first.dims;
    debug_assert!(layouts.iter().all(|l| l.dims == dims));
    let n = dims.len();
    let mut pos = layouts.map(|l| l.offset);
    if n == 0 {
        return;
    }
    let rank = dims.rank();
    if rank == 0 {
        f(0, pos);
        return;
    }
    let last = rank - 1;
    let inner_strides = layouts.map(|l| l.strides[last]);
    let mut idx = [0usize; MAX_RANK];
    let mut i = 0;
    while i < n {
        let mut q = pos;
        for _ in 0..dims[last] {
            f(i, q);
            for (q, s) in q.iter_mut().zip(&inner_strides) {
                *q += s;
            }
            i += 1;
        }
        // Advance the outer index like an odometer.
        let mut ax = last;
        while ax > 0 {
            ax -= 1;
            idx[ax] += 1;
            for (p, l) in pos.iter_mut().zip(&layouts) {
                *p += l.strides[ax];
            }
            if idx[ax] < dims[ax] {
                break;
            }
            for (p, l) in pos.iter_mut().zip(&layouts) {
                *p -= l.strides[ax] * dims[ax];
            }
            idx[ax] = 0;
        }
    }
}

fn broadcast_error(from: &[usize], to: &[usize], op: &str) -> NablaError {
    NablaError::Shape(format!(
        "{op}: shape {from:?} cannot be broadcast to {to:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_broadcast_like_numpy() {
        let d = broadcast_shapes(&[3, 1, 5], &[4, 1], "add").unwrap();
        assert_eq!(d.as_slice(), &[3, 4, 5]);
        let e = broadcast_shapes(&[3, 2], &[4], "add")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[3, 2]") && e.contains("[4]") && e.contains("add"),
            "{e}"
        );
    }

    #[test]
    fn overflowing_shapes_are_refused() {
        assert!(Dims::new(&[usize::MAX, 2]).is_err());
        assert!(Dims::new(&[1; 7]).is_err());
    }

    #[test]
    fn a_strided_walk_visits_in_row_major_order() {
        // The transpose of a 2×3 buffer.
        let l = Layout {
            dims: Dims::new(&[3, 2]).unwrap(),
            strides: [1, 3, 0, 0, 0, 0],
            offset: 0,
        };
        let mut seen = vec![];
        l.for_each_index(|_, p| seen.push(p));
        assert_eq!(seen, vec![0, 3, 1, 4, 2, 5]);
        assert!(!l.is_contiguous());
    }
}
