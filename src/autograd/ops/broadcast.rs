//! Elementwise binary ops with NumPy broadcasting: `a + b`, `a − b`, `a ⊙ b`, `a / b`,
//! `max(a, b)`, `min(a, b)`, `a^b`, on tensors of any rank.
//!
//! Both operands are walked through stride-0 views of the output's shape ([`walk2`]), so no
//! broadcast copy is made. Broadcasting is undone in one place: backward walks the same views
//! and adds each output element's local gradient into the operand element it came from, in
//! row-major order of the output (a fixed summation order, whatever the thread count).
//!
//! | op | `∂out/∂a` | `∂out/∂b` |
//! |---|---|---|
//! | add | 1 | 1 |
//! | sub | 1 | −1 |
//! | mul | b | a |
//! | div | 1/b | −a/b² |
//! | maximum | 1 where a > b (½ on ties) | 1 where b > a (½ on ties) |
//! | minimum | 1 where a < b (½ on ties) | 1 where b < a (½ on ties) |
//! | pow | b·a^(b−1) | a^b·ln a (0 where a ≤ 0) |

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::tensor::{Layout, Tensor, broadcast_shapes, walk2};

/// Which binary function a [`Broadcast`] op computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// `a + b`
    Add,
    /// `a − b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`
    Maximum,
    /// `min(a, b)`
    Minimum,
    /// `a^b`
    Pow,
}

impl BinaryKind {
    fn name(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Sub => "sub",
            Self::Mul => "mul",
            Self::Div => "div",
            Self::Maximum => "maximum",
            Self::Minimum => "minimum",
            Self::Pow => "pow",
        }
    }

    /// `f(a, b)`.
    fn forward(self, a: f32, b: f32) -> f32 {
        match self {
            Self::Add => a + b,
            Self::Sub => a - b,
            Self::Mul => a * b,
            Self::Div => a / b,
            Self::Maximum => a.max(b),
            Self::Minimum => a.min(b),
            Self::Pow => a.powf(b),
        }
    }

    /// `(∂f/∂a, ∂f/∂b)` at `(a, b)` with output `y`.
    fn local(self, a: f32, b: f32, y: f32) -> (f32, f32) {
        let pick = |first: bool, tie: bool| match (tie, first) {
            (true, _) => (0.5, 0.5),
            (false, true) => (1.0, 0.0),
            (false, false) => (0.0, 1.0),
        };
        match self {
            Self::Add => (1.0, 1.0),
            Self::Sub => (1.0, -1.0),
            Self::Mul => (b, a),
            Self::Div => (1.0 / b, -a / (b * b)),
            Self::Maximum => pick(a > b, a == b),
            Self::Minimum => pick(a < b, a == b),
            Self::Pow => {
                let db = if a > 0.0 { y * a.ln() } else { 0.0 };
                (b * a.powf(b - 1.0), db)
            }
        }
    }
}

/// An elementwise binary op with NumPy broadcasting (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Broadcast(pub BinaryKind);

/// The layouts of `a` and `b` broadcast to their common shape.
fn layouts(a: &Tensor, b: &Tensor, op: &str) -> Result<(Layout, Layout), NablaError> {
    let dims = broadcast_shapes(a.dims(), b.dims(), op)?;
    let la = Layout::contiguous(a.dims_value()).broadcast_to(dims, op)?;
    let lb = Layout::contiguous(b.dims_value()).broadcast_to(dims, op)?;
    Ok((la, lb))
}

impl CustomOp for Broadcast {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let (a, b) = (x[0], x[1]);
        let (la, lb) = layouts(a, b, self.name())?;
        out.reset_for_overwrite(la.dims);
        let (ad, bd, o) = (a.data(), b.data(), out.data_mut());
        let f = self.0;
        walk2(&la, &lb, |i, pa, pb| o[i] = f.forward(ad[pa], bd[pb]));
        Ok(())
    }

    fn backward(&self, g: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let (a, b) = (g.inputs[0], g.inputs[1]);
        let (la, lb) = layouts(a, b, self.name())?;
        let mut ga = Tensor::zeros_dims(a.dims_value());
        let mut gb = Tensor::zeros_dims(b.dims_value());
        let (ad, bd, y, up) = (a.data(), b.data(), g.output.data(), g.upstream.data());
        let (da, db) = (ga.data_mut(), gb.data_mut());
        let f = self.0;
        walk2(&la, &lb, |i, pa, pb| {
            let (la, lb) = f.local(ad[pa], bd[pb], y[i]);
            da[pa] += up[i] * la;
            db[pb] += up[i] * lb;
        });
        Ok(vec![g.wanted[0].then_some(ga), g.wanted[1].then_some(gb)])
    }
}

impl Tape<'_> {
    /// `f(a, b)` elementwise with NumPy broadcasting, for any ranks (the error names both
    /// shapes when they do not broadcast).
    ///
    /// ```
    /// use nabla::{Params, Tape, Tensor, Workspace};
    /// use nabla::autograd::ops::broadcast::BinaryKind;
    /// let params = Params::new();
    /// let mut ws = Workspace::new();
    /// let mut tape = Tape::new(&params, &mut ws);
    /// let a = tape.input(&Tensor::from_shape(&[2, 1], vec![1.0, 2.0]).unwrap());
    /// let b = tape.input(&Tensor::from_shape(&[3], vec![10.0, 20.0, 30.0]).unwrap());
    /// let c = tape.broadcast(a, b, BinaryKind::Add).unwrap();
    /// assert_eq!(tape.dims(c), &[2, 3]);
    /// assert_eq!(tape.value(c).data(), &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    /// ```
    pub fn broadcast(&mut self, a: Var, b: Var, kind: BinaryKind) -> Result<Var, NablaError> {
        self.custom(Broadcast(kind), &[a, b])
    }

    /// `a / b` elementwise, broadcasting.
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.broadcast(a, b, BinaryKind::Div)
    }

    /// `max(a, b)` elementwise, broadcasting.
    pub fn maximum(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.broadcast(a, b, BinaryKind::Maximum)
    }

    /// `min(a, b)` elementwise, broadcasting.
    pub fn minimum(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.broadcast(a, b, BinaryKind::Minimum)
    }

    /// `a^b` elementwise, broadcasting (`∂/∂b` is 0 where `a ≤ 0`).
    pub fn pow(&mut self, a: Var, b: Var) -> Result<Var, NablaError> {
        self.broadcast(a, b, BinaryKind::Pow)
    }
}
