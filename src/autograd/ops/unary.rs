//! Elementwise functions of one tensor of any rank, `y = f(x)`: backward is
//! `∂L/∂x = G ⊙ f'(x)`, with each `f'` written beside its `f` below.
//!
//! | op | `f(x)` | `f'(x)` |
//! |---|---|---|
//! | neg | −x | −1 |
//! | exp | eˣ | y |
//! | log | ln x | 1/x |
//! | sqrt | √x | 1/(2y) |
//! | abs | \|x\| | sign x (0 at 0) |
//! | clamp | min(max(x, lo), hi) | 1 for lo ≤ x ≤ hi, else 0 (PyTorch's rule) |
//! | powf | xᵖ | p·xᵖ⁻¹ |
//! | gelu_tanh | ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³) | ½(1 + tanh u) + ½x(1 − tanh²u)·u' |
//! | gelu_erf | x·Φ(x) | Φ(x) + x·φ(x) |
//! | silu | x·σ(x) | σ(x)(1 + x(1 − σ(x))) |
//!
//! ReLU, leaky ReLU, sigmoid and tanh are [`Tape::activation`]s, which take any rank too.

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::kernels::activation::normal_cdf;
use crate::tensor::Tensor;

/// Which function a [`Unary`] op applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind {
    /// `−x`
    Neg,
    /// `eˣ`
    Exp,
    /// `ln x`
    Log,
    /// `√x`
    Sqrt,
    /// `|x|`
    Abs,
    /// `x` clamped to `[min, max]`.
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `xᵖ` for a constant `p`.
    Powf(f32),
    /// GELU with the tanh approximation (PyTorch's `approximate="tanh"`).
    GeluTanh,
    /// GELU with the exact normal CDF, `x·Φ(x)`.
    GeluErf,
    /// SiLU (swish), `x·σ(x)`.
    Silu,
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl UnaryKind {
    fn name(self) -> &'static str {
        match self {
            Self::Neg => "neg",
            Self::Exp => "exp",
            Self::Log => "log",
            Self::Sqrt => "sqrt",
            Self::Abs => "abs",
            Self::Clamp { .. } => "clamp",
            Self::Powf(_) => "powf",
            Self::GeluTanh => "gelu_tanh",
            Self::GeluErf => "gelu_erf",
            Self::Silu => "silu",
        }
    }

    /// `f(x)`.
    fn forward(self, x: f32) -> f32 {
        match self {
            Self::Neg => -x,
            Self::Exp => x.exp(),
            Self::Log => x.ln(),
            Self::Sqrt => x.sqrt(),
            Self::Abs => x.abs(),
            Self::Clamp { min, max } => x.max(min).min(max),
            Self::Powf(p) => x.powf(p),
            Self::GeluTanh => 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + GELU_C * x * x * x)).tanh()),
            Self::GeluErf => x * normal_cdf(x),
            Self::Silu => x * sigmoid(x),
        }
    }

    /// `f'(x)`, given `y = f(x)`.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Self::Neg => -1.0,
            Self::Exp => y,
            Self::Log => 1.0 / x,
            Self::Sqrt => 0.5 / y,
            Self::Abs => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Self::Clamp { min, max } => f32::from((min..=max).contains(&x)),
            Self::Powf(p) => p * x.powf(p - 1.0),
            Self::GeluTanh => {
                let t = (SQRT_2_OVER_PI * (x + GELU_C * x * x * x)).tanh();
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
            }
            Self::GeluErf => {
                let pdf = (-0.5 * x * x).exp() * 0.398_942_3;
                normal_cdf(x) + x * pdf
            }
            Self::Silu => {
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }
        }
    }
}

/// An elementwise function of one tensor (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Unary(pub UnaryKind);

impl CustomOp for Unary {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        out.reset_for_overwrite(x[0].dims_value());
        let f = self.0;
        for (y, &v) in out.data_mut().iter_mut().zip(x[0].data()) {
            *y = f.forward(v);
        }
        Ok(())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let (x, y, g) = (b.inputs[0], b.output.data(), b.upstream.data());
        let mut d = Tensor::zeros_dims(x.dims_value());
        let f = self.0;
        for (i, (dv, &xv)) in d.data_mut().iter_mut().zip(x.data()).enumerate() {
            *dv = g[i] * f.derivative(xv, y[i]);
        }
        Ok(vec![Some(d)])
    }
}

impl Tape<'_> {
    /// Applies `kind` elementwise (any rank).
    pub fn unary(&mut self, a: Var, kind: UnaryKind) -> Result<Var, NablaError> {
        if let UnaryKind::Clamp { min, max } = kind
            && (min.is_nan() || max.is_nan() || min > max)
        {
            return Err(NablaError::Usage(format!(
                "clamp: the lower bound {min} must not exceed the upper bound {max}"
            )));
        }
        self.custom(Unary(kind), &[a])
    }

    /// `−a`.
    pub fn neg(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Neg)
    }

    /// `eᵃ`.
    pub fn exp(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Exp)
    }

    /// `ln a`.
    pub fn log(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Log)
    }

    /// `√a`.
    pub fn sqrt(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Sqrt)
    }

    /// `|a|`.
    pub fn abs(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Abs)
    }

    /// `a` clamped to `[min, max]`.
    pub fn clamp(&mut self, a: Var, min: f32, max: f32) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Clamp { min, max })
    }

    /// `aᵖ` for a constant `p` (for a tensor exponent, [`Tape::pow`]).
    pub fn powf(&mut self, a: Var, p: f32) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Powf(p))
    }

    /// GELU, tanh approximation.
    pub fn gelu_tanh(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::GeluTanh)
    }

    /// GELU, exact (`a·Φ(a)`).
    pub fn gelu_erf(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::GeluErf)
    }

    /// SiLU, `a·σ(a)`.
    pub fn silu(&mut self, a: Var) -> Result<Var, NablaError> {
        self.unary(a, UnaryKind::Silu)
    }
}
