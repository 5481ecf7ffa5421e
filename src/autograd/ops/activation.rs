//! Activations `y = f(x)`, elementwise. Backward: `∂L/∂x = G ⊙ f'(x)`, with the local
//! derivatives in [`crate::kernels::activation`] next to the functions themselves.

use super::Op;
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
use crate::kernels::activation::Activation;
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Applies activation `f` elementwise.
    pub fn activation(&mut self, a: Var, f: Activation) -> Var {
        let needs = self.needs_grad(a);
        let out = self.push_like(Op::Activation { a, f }, a, needs);
        let (x, node) = self.io1(a, out);
        f.forward(x.data(), node.value.data_mut());
        out
    }

    /// `max(0, a)`.
    pub fn relu(&mut self, a: Var) -> Var {
        self.activation(a, Activation::Relu)
    }

    /// `1 / (1 + e^(−a))`.
    pub fn sigmoid(&mut self, a: Var) -> Var {
        self.activation(a, Activation::Sigmoid)
    }

    /// `tanh(a)`.
    pub fn tanh(&mut self, a: Var) -> Var {
        self.activation(a, Activation::Tanh)
    }

    /// `a` where positive, `slope · a` elsewhere.
    pub fn leaky_relu(&mut self, a: Var, slope: f32) -> Var {
        self.activation(a, Activation::LeakyRelu { slope })
    }
}

pub(super) fn backward(a: Var, f: Activation, node: &Node, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let x = ctx.value(a);
    if let Some((d, acc)) = sink.slot(ctx, a) {
        f.backward(x.data(), node.value.data(), g.data(), d.data_mut(), acc);
    }
}
