//! Reductions along one or more axes of a tensor of any rank, with or without `keepdim`:
//! sum, mean, max (gradient to the arg-max), log-sum-exp and variance.
//!
//! Every reduction walks the input in row-major order beside a stride-0 view of the kept-dims
//! output ([`walk2`]), so each output element sums its inputs in one fixed order (f64 for
//! sum, mean and variance), whatever the thread count. Backward walks the same pair.
//!
//! | op | `y` | `∂y/∂xᵢ` |
//! |---|---|---|
//! | sum | Σ x | 1 |
//! | mean | Σ x / n | 1/n |
//! | max | max x | 1 at the first arg-max, else 0 |
//! | logsumexp | m + ln Σ e^(x − m) | e^(xᵢ − y) |
//! | var | Σ (x − x̄)² / (n − c) | 2(xᵢ − x̄)/(n − c), `c` = 1 unbiased, 0 population |

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::tensor::{Dims, Layout, Tensor, walk2};

/// Which reduction a [`Reduce`] op computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// `Σ x`
    Sum,
    /// `Σ x / n`
    Mean,
    /// `max x`
    Max,
    /// `ln Σ eˣ`, computed with the max shift.
    LogSumExp,
    /// Variance; `unbiased` divides by `n − 1` (PyTorch's default), else by `n`.
    Var {
        /// Bessel's correction.
        unbiased: bool,
    },
}

/// A reduction over the axes marked in `axes` (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Reduce {
    kind: ReduceKind,
    axes: [bool; crate::tensor::MAX_RANK],
    keepdim: bool,
}

impl Reduce {
    /// The reduction `kind` over `axes` (negative counts from the end) of a tensor of shape
    /// `dims`; repeated axes are an error.
    pub fn new(
        kind: ReduceKind,
        dims: &[usize],
        axes: &[isize],
        keepdim: bool,
    ) -> Result<Self, NablaError> {
        let d = Dims::new(dims)?;
        let mut marked = [false; crate::tensor::MAX_RANK];
        for &a in axes {
            let ax = d.axis(a, "reduce")?;
            if std::mem::replace(&mut marked[ax], true) {
                return Err(NablaError::Shape(format!(
                    "reduce: axis {a} is named twice in {axes:?} for shape {dims:?}"
                )));
            }
        }
        Ok(Self {
            kind,
            axes: marked,
            keepdim,
        })
    }

    /// The input's layout and the output's kept-dims layout broadcast over the input.
    fn layouts(&self, x: &Tensor) -> Result<(Layout, Layout, Dims), NablaError> {
        let sizes: Vec<usize> = (x.dims().iter().enumerate())
            .map(|(i, &s)| if self.axes[i] { 1 } else { s })
            .collect();
        let kept = Dims::new(&sizes)?;
        let out_dims = if self.keepdim {
            kept
        } else {
            let left: Vec<usize> = (x.dims().iter().enumerate())
                .filter(|(i, _)| !self.axes[*i])
                .map(|(_, &s)| s)
                .collect();
            Dims::new(&left)?
        };
        let lin = Layout::contiguous(x.dims_value());
        let lout = Layout::contiguous(kept).broadcast_to(x.dims_value(), self.name())?;
        Ok((lin, lout, out_dims))
    }

    /// Elements reduced into each output element.
    fn group(&self, x: &Tensor, out_len: usize) -> usize {
        x.len().checked_div(out_len).unwrap_or(0)
    }
}

impl CustomOp for Reduce {
    fn name(&self) -> &str {
        match self.kind {
            ReduceKind::Sum => "sum_axes",
            ReduceKind::Mean => "mean_axes",
            ReduceKind::Max => "max_axes",
            ReduceKind::LogSumExp => "logsumexp",
            ReduceKind::Var { .. } => "var_axes",
        }
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        saved: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let x = x[0];
        let (lin, lout, out_dims) = self.layouts(x)?;
        if x.is_empty() && matches!(self.kind, ReduceKind::Max) {
            return Err(NablaError::Shape(format!(
                "max_axes: cannot take the maximum over an empty axis of shape {:?}",
                x.dims()
            )));
        }
        out.reset_for_overwrite(out_dims);
        let n = self.group(x, out.len());
        let xd = x.data();
        let mut acc = vec![0f64; out.len()];
        match self.kind {
            ReduceKind::Sum | ReduceKind::Mean | ReduceKind::Var { .. } => {
                walk2(&lin, &lout, |_, pi, po| acc[po] += xd[pi] as f64);
                if self.kind != ReduceKind::Sum {
                    acc.iter_mut().for_each(|a| *a /= n.max(1) as f64);
                }
                if let ReduceKind::Var { unbiased } = self.kind {
                    saved.push(Tensor::from_shape(
                        out_dims.as_slice(),
                        acc.iter().map(|&m| m as f32).collect(),
                    )?);
                    let mut sq = vec![0f64; acc.len()];
                    walk2(&lin, &lout, |_, pi, po| {
                        sq[po] += (xd[pi] as f64 - acc[po]).powi(2)
                    });
                    let denom = n as f64 - f64::from(u8::from(unbiased));
                    acc = sq.into_iter().map(|s| s / denom).collect();
                }
            }
            ReduceKind::Max | ReduceKind::LogSumExp => {
                acc.fill(f64::NEG_INFINITY);
                walk2(&lin, &lout, |_, pi, po| {
                    acc[po] = acc[po].max(xd[pi] as f64)
                });
                if self.kind == ReduceKind::LogSumExp {
                    let mut s = vec![0f64; acc.len()];
                    walk2(&lin, &lout, |_, pi, po| {
                        s[po] += (xd[pi] as f64 - acc[po]).exp()
                    });
                    for (a, s) in acc.iter_mut().zip(s) {
                        if a.is_finite() {
                            *a += s.ln();
                        }
                    }
                }
            }
        }
        for (o, a) in out.data_mut().iter_mut().zip(&acc) {
            *o = *a as f32;
        }
        Ok(())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let x = b.inputs[0];
        let (lin, lout, _) = self.layouts(x)?;
        let (xd, y, g) = (x.data(), b.output.data(), b.upstream.data());
        let n = self.group(x, y.len()).max(1) as f32;
        let mut d = Tensor::zeros_dims(x.dims_value());
        let dd = d.data_mut();
        match self.kind {
            ReduceKind::Sum => walk2(&lin, &lout, |_, pi, po| dd[pi] = g[po]),
            ReduceKind::Mean => walk2(&lin, &lout, |_, pi, po| dd[pi] = g[po] / n),
            ReduceKind::Var { unbiased } => {
                let mean = b.saved[0].data();
                let denom = n - f32::from(u8::from(unbiased));
                walk2(&lin, &lout, |_, pi, po| {
                    dd[pi] = g[po] * 2.0 * (xd[pi] - mean[po]) / denom;
                });
            }
            ReduceKind::Max => {
                let mut taken = vec![false; y.len()];
                walk2(&lin, &lout, |_, pi, po| {
                    if !taken[po] && xd[pi] == y[po] {
                        taken[po] = true;
                        dd[pi] = g[po];
                    }
                });
            }
            ReduceKind::LogSumExp => walk2(&lin, &lout, |_, pi, po| {
                dd[pi] = if y[po].is_finite() {
                    g[po] * (xd[pi] - y[po]).exp()
                } else {
                    0.0
                };
            }),
        }
        Ok(vec![Some(d)])
    }
}

impl Tape<'_> {
    /// Reduces `a` along `axes` (negative counts from the end) with `kind`; `keepdim` keeps
    /// the reduced axes with size 1 (so the result broadcasts against `a`).
    ///
    /// ```
    /// use nabla::{Params, Tape, Tensor, Workspace};
    /// let params = Params::new();
    /// let mut ws = Workspace::new();
    /// let mut tape = Tape::new(&params, &mut ws);
    /// let x = tape.input(&Tensor::from_shape(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
    /// let s = tape.sum_axes(x, &[-1], false).unwrap();
    /// assert_eq!((tape.dims(s), tape.value(s).data()), (&[2][..], &[6.0, 15.0][..]));
    /// let m = tape.max_axes(x, &[0], true).unwrap();
    /// assert_eq!((tape.dims(m), tape.value(m).data()), (&[1, 3][..], &[4.0, 5.0, 6.0][..]));
    /// ```
    pub fn reduce(
        &mut self,
        a: Var,
        kind: ReduceKind,
        axes: &[isize],
        keepdim: bool,
    ) -> Result<Var, NablaError> {
        self.check_var(a, "reduce")?;
        let op = Reduce::new(kind, self.dims(a), axes, keepdim)?;
        self.custom(op, &[a])
    }

    /// `Σ a` along `axes`.
    pub fn sum_axes(&mut self, a: Var, axes: &[isize], keepdim: bool) -> Result<Var, NablaError> {
        self.reduce(a, ReduceKind::Sum, axes, keepdim)
    }

    /// The mean of `a` along `axes`.
    pub fn mean_axes(&mut self, a: Var, axes: &[isize], keepdim: bool) -> Result<Var, NablaError> {
        self.reduce(a, ReduceKind::Mean, axes, keepdim)
    }

    /// The maximum of `a` along `axes`; the gradient goes to the first arg-max
    /// ([`Tape::argmax_axis`] gives the indices).
    pub fn max_axes(&mut self, a: Var, axes: &[isize], keepdim: bool) -> Result<Var, NablaError> {
        self.reduce(a, ReduceKind::Max, axes, keepdim)
    }

    /// `ln Σ eᵃ` along `axes`, stable for large values.
    pub fn logsumexp(&mut self, a: Var, axes: &[isize], keepdim: bool) -> Result<Var, NablaError> {
        self.reduce(a, ReduceKind::LogSumExp, axes, keepdim)
    }

    /// The variance of `a` along `axes` (`unbiased`: divide by `n − 1`, PyTorch's default).
    pub fn var_axes(
        &mut self,
        a: Var,
        axes: &[isize],
        keepdim: bool,
        unbiased: bool,
    ) -> Result<Var, NablaError> {
        self.reduce(a, ReduceKind::Var { unbiased }, axes, keepdim)
    }

    /// The index of the first maximum of `a` along `axis`, for every position of the other
    /// axes, in row-major order of the reduced shape (no gradient).
    pub fn argmax_axis(&self, a: Var, axis: isize) -> Result<Vec<usize>, NablaError> {
        self.check_var(a, "argmax_axis")?;
        let x = self.value(a);
        let ax = x.dims_value().axis(axis, "argmax_axis")?;
        let (size, inner) = (x.dims()[ax], x.dims()[ax + 1..].iter().product::<usize>());
        if size == 0 {
            return Err(NablaError::Shape(format!(
                "argmax_axis: axis {axis} of shape {:?} is empty",
                x.dims()
            )));
        }
        let outer = x.len() / (size * inner).max(1);
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for j in 0..inner {
                let at = |k: usize| x.data()[(o * size + k) * inner + j];
                let best = (1..size).fold(0, |b, k| if at(k) > at(b) { k } else { b });
                out.push(best);
            }
        }
        Ok(out)
    }
}
