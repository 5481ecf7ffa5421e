//! Backpropagation by hand, on real numbers: one training step traced on the engine's own
//! [`Tape`](crate::Tape), for `nabla explain`.
//!
//! Two subjects: the classic teaching network with named weights ([`tiny`]) and a trained
//! model loaded from a file ([`model`]; [`conv`] for one with convolution layers). For both, every number comes from the engine: forward
//! values are read from the tape's nodes, `∂L/∂z` of every intermediate vector from
//! [`Tape::grad`](crate::Tape::grad), `∂L/∂W` from the [`Grads`](crate::Grads) that
//! [`Tape::backward`](crate::Tape::backward) fills, and the update from
//! [`Optimizer::step`](crate::optim::Optimizer::step). The only extra arithmetic is the central
//! finite difference `(L(w + ε) − L(w − ε)) / 2ε`, which re-runs the same forward pass with one
//! weight perturbed: an independent check of the chain rule.
//!
//! These modules format nothing; the binary prints them as text, markdown or JSON.

use serde::Serialize;

pub mod conv;
pub mod model;
pub mod tiny;

pub use conv::{ConvTrace, ConvWeightRef, explain_conv};
pub use model::{
    ModelTrace, ModelWeight, Stage, StageKind, Target, TensorCheck, WeightRef, explain_model,
};
pub use tiny::{Explanation, TinyNet, UnitTrace, explain};

/// One weight or bias: its gradient as upstream × local, checked by finite differences.
#[derive(Clone, Debug, Serialize)]
pub struct WeightTrace {
    /// `w1`, `b3`, ...
    pub name: String,
    /// Its value before the step.
    pub value: f32,
    /// The unit whose `z` it feeds (`h1`, `o2`).
    pub unit: String,
    /// `∂L/∂z` of that unit: the upstream gradient.
    pub upstream: f32,
    /// What it multiplies in `z` (`x2`, `h1`, or `1` for a bias).
    pub local_name: String,
    /// `∂z/∂w`: the local gradient.
    pub local: f32,
    /// `∂L/∂w` as computed by the engine's backward pass (the downstream gradient).
    pub gradient: f32,
    /// The central finite difference `(L(w+ε) − L(w−ε)) / 2ε`.
    pub numeric_gradient: f64,
    /// Its value after the update `w ← w − lr·∂L/∂w`.
    pub updated: f32,
}
