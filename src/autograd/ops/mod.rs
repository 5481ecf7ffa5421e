//! Differentiable operations. One file per family; in each, the public `Tape` method that
//! records the op (its forward) sits next to the `backward` rule that differentiates it.

pub mod activation;
pub mod arith;
pub mod axes;
pub mod batchnorm;
pub mod batchnorm2d;
pub mod bmm;
pub mod broadcast;
pub mod conv;
pub mod dropout;
pub mod index;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod select;
pub mod shape;
pub mod softmax;
pub mod unary;

use super::params::ParamId;
use super::tape::{Ctx, Node, Sink, Var};
use crate::kernels::Transpose;
use crate::kernels::activation::Activation;
use crate::kernels::conv::{ConvGeometry, PoolGeometry};
use crate::tensor::Tensor;

/// How a node was made: the op and its inputs. Small and `Copy`, so recording allocates nothing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) enum Op {
    #[default]
    Input,
    Param(ParamId),
    MatMul {
        a: Var,
        b: Var,
        ta: Transpose,
        tb: Transpose,
    },
    AddRow {
        a: Var,
        bias: Var,
    },
    Linear {
        x: Var,
        w: Var,
        b: Var,
    },
    Add {
        a: Var,
        b: Var,
    },
    Sub {
        a: Var,
        b: Var,
    },
    Mul {
        a: Var,
        b: Var,
    },
    Scale {
        a: Var,
        factor: f32,
    },
    Sum {
        a: Var,
    },
    Mean {
        a: Var,
    },
    Activation {
        a: Var,
        f: Activation,
    },
    Softmax {
        a: Var,
    },
    LogSoftmax {
        a: Var,
    },
    SoftmaxCrossEntropy {
        logits: Var,
        labels_start: usize,
    },
    Mse {
        pred: Var,
        target: Var,
    },
    Dropout {
        a: Var,
    },
    BatchNorm {
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    },
    AffineRows {
        x: Var,
        scale: Var,
        shift: Var,
    },
    Conv2d {
        x: Var,
        w: Var,
        b: Var,
        g: ConvGeometry,
    },
    MaxPool2d {
        a: Var,
    },
    AvgPool2d {
        a: Var,
        g: PoolGeometry,
    },
    GlobalAvgPool {
        a: Var,
    },
    BatchNorm2d {
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    },
    AffineChannels {
        x: Var,
        scale: Var,
        shift: Var,
    },
    /// An op recorded through [`Tape::custom`](crate::Tape::custom): slot `slot` of the
    /// workspace's custom nodes holds it.
    Custom {
        slot: usize,
    },
}

/// Dispatches node's backward rule: `upstream` is `∂L/∂node`. Only a custom op's backward can
/// fail (a user's rule returning a wrongly shaped gradient).
pub(crate) fn backward(
    node: &Node,
    upstream: &Tensor,
    ctx: &Ctx,
    sink: &mut Sink,
) -> Result<(), crate::NablaError> {
    match node.op {
        Op::Input | Op::Param(_) => {}
        Op::MatMul { a, b, ta, tb } => matmul::backward(a, b, ta, tb, upstream, ctx, sink),
        Op::AddRow { a, bias } => arith::add_row_backward(a, bias, upstream, ctx, sink),
        Op::Linear { x, w, b } => matmul::linear_backward(x, w, b, upstream, ctx, sink),
        Op::Add { a, b } => arith::add_backward(a, b, upstream, ctx, sink),
        Op::Sub { a, b } => arith::sub_backward(a, b, upstream, ctx, sink),
        Op::Mul { a, b } => arith::mul_backward(a, b, upstream, ctx, sink),
        Op::Scale { a, factor } => arith::scale_backward(a, factor, upstream, ctx, sink),
        Op::Sum { a } => reduce::sum_backward(a, 1.0, upstream, ctx, sink),
        Op::Mean { a } => {
            let n = ctx.value(a).len().max(1) as f32;
            reduce::sum_backward(a, 1.0 / n, upstream, ctx, sink)
        }
        Op::Activation { a, f } => activation::backward(a, f, node, upstream, ctx, sink),
        Op::Softmax { a } => softmax::softmax_backward(a, node, upstream, ctx, sink),
        Op::LogSoftmax { a } => softmax::log_softmax_backward(a, node, upstream, ctx, sink),
        Op::SoftmaxCrossEntropy {
            logits,
            labels_start,
        } => loss::cross_entropy_backward(logits, labels_start, node, upstream, ctx, sink),
        Op::Mse { pred, target } => loss::mse_backward(pred, target, upstream, ctx, sink),
        Op::Dropout { a } => dropout::backward(a, node, upstream, ctx, sink),
        Op::BatchNorm {
            x,
            gamma,
            beta,
            eps,
        } => batchnorm::batch_norm_backward(x, gamma, beta, eps, node, upstream, ctx, sink),
        Op::AffineRows { x, scale, shift } => {
            batchnorm::affine_rows_backward(x, scale, shift, upstream, ctx, sink)
        }
        Op::Conv2d { x, w, b, g } => conv::backward(x, w, b, g, node, upstream, ctx, sink),
        Op::MaxPool2d { a, .. } => pool::max_backward(a, node, upstream, ctx, sink),
        Op::AvgPool2d { a, g } => pool::avg_backward(a, g, upstream, ctx, sink),
        Op::GlobalAvgPool { a } => pool::global_backward(a, upstream, ctx, sink),
        Op::BatchNorm2d {
            x,
            gamma,
            beta,
            eps,
        } => batchnorm2d::batch_norm2d_backward(x, gamma, beta, eps, node, upstream, ctx, sink),
        Op::AffineChannels { x, scale, shift } => {
            batchnorm2d::affine_channels_backward(x, scale, shift, upstream, ctx, sink)
        }
        Op::Custom { slot } => {
            return crate::autograd::custom::backward(slot, &node.value, upstream, ctx, sink);
        }
    }
    Ok(())
}

/// `dst[i] = f(i)`, or `dst[i] += f(i)` when `accumulate`: how every elementwise rule writes.
#[inline]
pub(crate) fn write(dst: &mut [f32], accumulate: bool, f: impl Fn(usize) -> f32) {
    if accumulate {
        for (i, d) in dst.iter_mut().enumerate() {
            *d += f(i);
        }
    } else {
        for (i, d) in dst.iter_mut().enumerate() {
            *d = f(i);
        }
    }
}

/// An error for two operands whose shapes must agree.
pub(crate) fn shape_error(op: &str, a: (usize, usize), b: (usize, usize)) -> crate::NablaError {
    crate::NablaError::Shape(format!("{op}: {}×{} and {}×{}", a.0, a.1, b.0, b.1))
}
