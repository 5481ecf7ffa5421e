//! The open op API: a [`CustomOp`] is a differentiable operation written anywhere (in nabla or
//! in a user's crate) and recorded on the one [`Tape`] beside the built-in ops.
//!
//! An op says its forward (inputs → output, plus whatever its backward needs, kept in
//! `saved`) and its backward (the upstream gradient `∂L/∂out` → one downstream gradient
//! `∂L/∂inputᵢ` per input: upstream × local = downstream). The tape keeps the op, its inputs and
//! its saved tensors in the node's slot, checks each returned gradient has its input's shape,
//! and adds it where several ops read the same value. [`crate::gradcheck::check`] tests an op
//! against central differences exactly as nabla tests its own.
//!
//! ```
//! use nabla::autograd::{Backward, CustomOp};
//! use nabla::{NablaError, Tensor, gradcheck};
//!
//! /// `y = x³`, elementwise: `∂y/∂x = 3x²`.
//! struct Cube;
//!
//! impl CustomOp for Cube {
//!     fn name(&self) -> &str {
//!         "cube"
//!     }
//!     fn forward(&self, x: &[&Tensor], out: &mut Tensor, _: &mut Vec<Tensor>) -> Result<(), NablaError> {
//!         *out = Tensor::from_shape(x[0].dims(), x[0].data().iter().map(|v| v * v * v).collect())?;
//!         Ok(())
//!     }
//!     fn backward(&self, b: &Backward) -> Result<Vec<Option<Tensor>>, NablaError> {
//!         let x = b.inputs[0];
//!         let g = x.data().iter().zip(b.upstream.data()).map(|(v, g)| 3.0 * v * v * g);
//!         Ok(vec![Some(Tensor::from_shape(x.dims(), g.collect())?)])
//!     }
//! }
//!
//! let x = Tensor::from_shape(&[2, 3], vec![0.5, -1.0, 2.0, 0.1, 0.3, -0.7])?;
//! let check = gradcheck::check(&[x], 1e-3, |tape, v| {
//!     let y = tape.custom(Cube, &[v[0]])?;
//!     Ok(tape.sum(y))
//! })?;
//! assert!(check.max_error < 1e-2);
//! # Ok::<(), NablaError>(())
//! ```

use super::ops::Op;
use super::tape::{Ctx, Sink, Tape, Var, value_of};
use crate::error::NablaError;
use crate::tensor::Tensor;

/// A differentiable operation: forward beside backward, in one `impl`.
pub trait CustomOp: Send + Sync {
    /// The op's name, used in error messages.
    fn name(&self) -> &str;

    /// Computes the output from `inputs` into `out` (replace it or reshape and fill it; its
    /// buffer is reused from the previous step). Tensors the backward needs go in `saved`.
    fn forward(
        &self,
        inputs: &[&Tensor],
        out: &mut Tensor,
        saved: &mut Vec<Tensor>,
    ) -> Result<(), NablaError>;

    /// Given `∂L/∂out`, returns `∂L/∂inputᵢ` for each input, in order, each shaped like its
    /// input (`None`: no gradient flows into that input, e.g. integer indices).
    fn backward(&self, b: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError>;
}

/// What an op's backward reads.
pub struct Backward<'a> {
    /// The input values, as forward saw them.
    pub inputs: &'a [&'a Tensor],
    /// The output forward computed.
    pub output: &'a Tensor,
    /// What forward put in `saved`.
    pub saved: &'a [Tensor],
    /// `∂L/∂out`, shaped like the output.
    pub upstream: &'a Tensor,
    /// For each input, whether its gradient is wanted (a backward may skip the others).
    pub wanted: &'a [bool],
}

/// A recorded custom op: the op, its inputs and its saved state (buffers reused by slot).
#[derive(Default)]
pub(crate) struct CustomNode {
    op: Option<Box<dyn CustomOp>>,
    inputs: Vec<Var>,
    saved: Vec<Tensor>,
}

impl std::fmt::Debug for CustomNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.op.as_ref().map_or("(empty)", |o| o.name());
        write!(f, "CustomNode({name}, inputs {:?})", self.inputs)
    }
}

impl Tape<'_> {
    /// Records `op` applied to `inputs` and runs its forward.
    pub fn custom(
        &mut self,
        op: impl CustomOp + 'static,
        inputs: &[Var],
    ) -> Result<Var, NablaError> {
        for &v in inputs {
            self.check_var(v, op.name())?;
        }
        let needs = inputs.iter().any(|&v| self.needs_grad(v));
        let slot = self.customs;
        if slot == self.ws.customs.len() {
            self.ws.customs.push(CustomNode::default());
        }
        let out = self.push_dims(Op::Custom { slot }, crate::tensor::Dims::default(), needs);
        let (lower, upper) = self.ws.nodes.split_at_mut(out.0);
        let values: Vec<&Tensor> = inputs
            .iter()
            .map(|&v| value_of(lower, self.params, v))
            .collect();
        let node = &mut self.ws.customs[slot];
        node.inputs.clear();
        node.inputs.extend_from_slice(inputs);
        node.saved.clear();
        if let Err(e) = op.forward(&values, &mut upper[0].value, &mut node.saved) {
            self.len -= 1;
            return Err(e);
        }
        node.op = Some(Box::new(op));
        self.customs += 1;
        Ok(out)
    }
}

/// The backward of custom node `slot`: asks the op, checks the shapes, adds into the sink.
pub(crate) fn backward(
    slot: usize,
    output: &Tensor,
    upstream: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) -> Result<(), NablaError> {
    let node = &ctx.customs[slot];
    let Some(op) = node.op.as_deref() else {
        return Ok(());
    };
    let inputs: Vec<&Tensor> = node.inputs.iter().map(|&v| ctx.value(v)).collect();
    let wanted: Vec<bool> = node
        .inputs
        .iter()
        .map(|&v| ctx.nodes[v.0].needs_grad)
        .collect();
    let grads = op.backward(&Backward {
        inputs: &inputs,
        output,
        saved: &node.saved,
        upstream,
        wanted: &wanted,
    })?;
    if grads.len() != inputs.len() {
        return Err(NablaError::Shape(format!(
            "{}: backward returned {} gradients for {} inputs",
            op.name(),
            grads.len(),
            inputs.len()
        )));
    }
    for ((&v, input), grad) in node.inputs.iter().zip(&inputs).zip(grads) {
        let Some(grad) = grad else { continue };
        if grad.dims() != input.dims() {
            return Err(NablaError::Shape(format!(
                "{}: backward gave a gradient of shape {:?} for an input of shape {:?}",
                op.name(),
                grad.dims(),
                input.dims()
            )));
        }
        if let Some((d, acc)) = sink.slot(ctx, v) {
            super::ops::write(d.data_mut(), acc, |i| grad.data()[i]);
        }
    }
    Ok(())
}
