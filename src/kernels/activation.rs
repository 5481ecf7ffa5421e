//! Elementwise activation functions `y = f(x)` and their local derivatives, written so each
//! backward rule can use whichever of `x` or `y` is cheaper: `σ'(x) = y(1 − y)`,
//! `tanh'(x) = 1 − y²`, `relu'(x) = [x > 0]`.

/// The activation functions nabla knows. A closed set, so an enum rather than a trait.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `1 / (1 + e^(−x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `x` for `x > 0`, `slope·x` otherwise.
    LeakyRelu {
        /// The slope for negative inputs (PyTorch's default is 0.01).
        slope: f32,
    },
    /// `x·Φ(x)` with `Φ` the standard normal CDF (PyTorch's exact GELU).
    Gelu,
}

impl Activation {
    /// The name used on the command line and in model files.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Gelu => "gelu",
        }
    }

    /// Applies the activation to every element: `y[i] = f(x[i])`.
    /// ReLU runs at the widest vectors in force ([`crate::simd`]); the same bits at every
    /// width.
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        match *self {
            Activation::Relu => crate::simd::elementwise::relu(crate::simd::level(), x, y),
            Activation::Sigmoid => map(x, y, sigmoid),
            Activation::Tanh => map(x, y, f32::tanh),
            Activation::LeakyRelu { slope } => map(x, y, |v| if v > 0.0 { v } else { slope * v }),
            Activation::Gelu => map(x, y, |v| v * normal_cdf(v)),
        }
    }

    /// Chain rule for the activation: `downstream[i] (+)= upstream[i] · f'(x[i])`, given the
    /// forward input `x` and output `y`. Accumulates when `accumulate` is true. ReLU runs at
    /// the widest vectors in force ([`crate::simd`]); the same bits at every width.
    pub fn backward(
        &self,
        x: &[f32],
        y: &[f32],
        upstream: &[f32],
        downstream: &mut [f32],
        accumulate: bool,
    ) {
        let rule = |local: &dyn Fn(usize) -> f32, downstream: &mut [f32]| {
            if accumulate {
                for (i, d) in downstream.iter_mut().enumerate() {
                    *d += upstream[i] * local(i);
                }
            } else {
                for (i, d) in downstream.iter_mut().enumerate() {
                    *d = upstream[i] * local(i);
                }
            }
        };
        match *self {
            // ReLU is the hot one: a branch-free select, vectorised at run-time width.
            Activation::Relu => crate::simd::elementwise::relu_backward(
                crate::simd::level(),
                x,
                upstream,
                downstream,
                accumulate,
            ),
            Activation::Sigmoid => rule(&|i| y[i] * (1.0 - y[i]), downstream),
            Activation::Tanh => rule(&|i| 1.0 - y[i] * y[i], downstream),
            Activation::LeakyRelu { slope } => {
                rule(&|i| if x[i] > 0.0 { 1.0 } else { slope }, downstream)
            }
            // d/dx x·Φ(x) = Φ(x) + x·φ(x)
            Activation::Gelu => rule(
                &|i| normal_cdf(x[i]) + x[i] * (-0.5 * x[i] * x[i]).exp() * FRAC_1_SQRT_2PI,
                downstream,
            ),
        }
    }
}

const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `Φ(x) = (1 + erf(x/√2)) / 2`, the standard normal CDF.
pub fn normal_cdf(x: f32) -> f32 {
    0.5 * (1.0 + erf(x as f64 * std::f64::consts::FRAC_1_SQRT_2) as f32)
}

/// The error function, from Numerical Recipes' Chebyshev fit of `erfc` (fractional error below
/// 1.2e-7 everywhere, finer than f32's resolution).
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { 1.0 - r } else { r - 1.0 }
}

/// The logistic function, computed without overflow for large `|x|`.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn map(x: &[f32], y: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f(v);
    }
}
