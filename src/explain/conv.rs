//! One training step of a trained convolutional network on one sample, for
//! `nabla explain --model` on a model with image layers: for one convolution weight
//! `W[o,i,ky,kx]`, its gradient as the sum over output positions of an input patch value times
//! the upstream gradient there (every factor read off the tape), beside the engine's gradient
//! and a finite difference; and one max-pooling window, whose gradient goes to its arg-max
//! alone.
//!
//! As for flat networks ([`super::model`]), the step is taken in evaluation mode (dropout off,
//! batch norm on its running statistics) and every parameter tensor is checked whole along its
//! own gradient.

use serde::Serialize;

use super::model::{Sample, Target, TensorCheck, check_sample, loss_with, record, tensor_checks};
use crate::autograd::{Grads, Tape, Workspace};
use crate::error::{Message, NablaError, Setting};
use crate::nn::{Conv2dSpec, ImageShape, LayerSpec, Network, Sequential, Shape, Traced};
use crate::tensor::Tensor;

/// A convolution weight, picked by its model-file name `layers.N.weight[o,i,ky,kx]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvWeightRef {
    /// The convolution's index in the model (`layers.{layer}`).
    pub layer: usize,
    /// `[output channel, input channel, kernel row, kernel column]`.
    pub index: [usize; 4],
}

impl ConvWeightRef {
    /// Parses `layers.N.weight[o,i,ky,kx]`, checking that layer `N` of `net` is a convolution
    /// and the index is inside its weight.
    pub fn parse(net: &Network<Sequential>, name: &str) -> Result<Self, NablaError> {
        let usage = |why: String| {
            NablaError::Settings(Message::new().value(Setting::Weight, name).text(format!(
                ": {why}; name a convolution weight as layers.N.weight[o,i,ky,kx]"
            )))
        };
        let (head, index) = name
            .trim()
            .strip_suffix(']')
            .and_then(|s| s.split_once('['))
            .ok_or_else(|| usage("expected an index in brackets".into()))?;
        let layer = head
            .strip_prefix("layers.")
            .and_then(|r| r.strip_suffix(".weight"))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| usage(format!("{head:?} is not layers.N.weight")))?;
        let index: Vec<usize> = index
            .split(',')
            .map(|v| v.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| usage(format!("[{index}] is not a list of numbers")))?;
        let Some(LayerSpec::Conv2d(Conv2dSpec {
            in_channels,
            out_channels,
            kernel,
            ..
        })) = net.spec().layers.get(layer).cloned()
        else {
            return Err(usage(format!("layers.{layer} is not a convolution")));
        };
        let [o, i, ky, kx] = index[..] else {
            return Err(usage("a convolution weight takes four indices".into()));
        };
        if o >= out_channels || i >= in_channels || ky >= kernel || kx >= kernel {
            return Err(usage(format!(
                "out of range: this weight is {out_channels}×{in_channels}×{kernel}×{kernel}"
            )));
        }
        Ok(Self {
            layer,
            index: [o, i, ky, kx],
        })
    }
}

/// One layer of the forward pass: what it is and what it gave.
#[derive(Clone, Debug, Serialize)]
pub struct LayerStep {
    /// Its index in the model.
    pub layer: usize,
    /// `conv2d 1 → 4 3×3 pad 1`, `relu`, ...
    pub name: String,
    /// Its output shape (`4×8×8`, `10`).
    pub shape: String,
    /// `‖∂L/∂output‖`, from the tape.
    pub gradient_norm: f64,
}

/// One term of `∂L/∂W[o,i,ky,kx] = Σ_{y,x} a[i, y·s + ky·d − p, x·s + kx·d − p] · ∂L/∂c[o,y,x]`.
#[derive(Clone, Debug, Serialize)]
pub struct ConvTerm {
    /// The output position `[y, x]` in channel `o`.
    pub output: [usize; 2],
    /// The input position `[row, column]` in channel `i` the weight reads there.
    pub input: [usize; 2],
    /// The input value (the patch value).
    pub value: f32,
    /// `∂L/∂c[o,y,x]`: the upstream gradient.
    pub upstream: f32,
    /// `value · upstream`.
    pub product: f64,
}

/// The chosen convolution weight's gradient, term by term.
#[derive(Clone, Debug, Serialize)]
pub struct ConvWeight {
    /// `layers.0.weight[o,i,ky,kx]`.
    pub param: String,
    /// The convolution's index in the model.
    pub layer: usize,
    /// `[o, i, ky, kx]`.
    pub index: [usize; 4],
    /// The weight's value.
    pub value: f32,
    /// Kernel side.
    pub kernel: usize,
    /// Step between output positions.
    pub stride: usize,
    /// Zero rows and columns around the input.
    pub padding: usize,
    /// Spacing of the kernel's taps.
    pub dilation: usize,
    /// The input image `[C, H, W]`.
    pub input_shape: [usize; 3],
    /// The output image `[O, H', W']`.
    pub output_shape: [usize; 3],
    /// True when the convolution reads the network's input (`x`), else a layer's output.
    pub reads_input: bool,
    /// The largest terms by size (at most `limit`).
    pub terms: Vec<ConvTerm>,
    /// Output positions in all: one term each (those reading padding are 0).
    pub positions: usize,
    /// Positions whose tap falls on the padding (their term is 0).
    pub padding_terms: usize,
    /// Terms whose upstream gradient is 0 (ReLU off, or not picked by a max pool).
    pub zero_upstream: usize,
    /// The terms not shown, summed.
    pub rest: f64,
    /// The sum of every term (f64).
    pub sum: f64,
    /// `∂L/∂W[o,i,ky,kx]` from the engine's backward pass.
    pub gradient: f32,
    /// The central finite difference, at `numeric_epsilon`.
    pub numeric_gradient: f64,
    /// The step the finite difference was taken with: the requested ε, or a smaller one when
    /// the requested step crossed a kink of the loss (see [`settled_difference`]).
    pub numeric_epsilon: f32,
    /// The finite difference at the requested ε, when it disagreed with smaller steps: the
    /// step reached across a kink (a ReLU switching, a max pool changing its pick), where L
    /// has no single slope. `None` when the requested step was smooth.
    pub kinked_numeric_gradient: Option<f64>,
}

/// A central difference `d(ε) = (L(w+ε) − L(w−ε)) / 2ε` that is trusted only once two steps
/// agree: `d(ε)` against `d(ε/10)`, shrinking ε tenfold (at most [`KINK_SHRINKS`] times) while
/// they differ by more than [`KINK_TOLERANCE`] relatively. A ReLU or max pool makes L piecewise
/// smooth; a step that reaches past a kink averages two slopes and misses the gradient, which
/// is defined by the piece the weight sits on. Returns `(difference, step, the requested
/// step's difference when it was shrunk)`.
pub(super) fn settled_difference(
    mut loss: impl FnMut(f32) -> Result<f64, NablaError>,
    value: f32,
    epsilon: f32,
) -> Result<(f64, f32, Option<f64>), NablaError> {
    let mut central = |eps: f32| -> Result<f64, NablaError> {
        Ok((loss(value + eps)? - loss(value - eps)?) / (2.0 * f64::from(eps)))
    };
    let first = central(epsilon)?;
    let (mut step, mut d) = (epsilon, first);
    for _ in 0..KINK_SHRINKS {
        let next = step / 10.0;
        let smaller = central(next)?;
        if (smaller - d).abs() <= KINK_TOLERANCE * smaller.abs().max(d.abs()).max(1e-3) {
            break;
        }
        (step, d) = (next, smaller);
    }
    let kinked = (step != epsilon).then_some(first);
    Ok((d, step, kinked))
}

/// How many times [`settled_difference`] shrinks the step tenfold (below 1e-5 of a 1e-2 step,
/// f32 rounding of the loss would dominate the difference).
const KINK_SHRINKS: usize = 3;

/// The relative disagreement between two steps' differences that counts as a kink: f32 losses
/// agree to about 1e-4 between smooth steps of 1e-2 and 1e-3.
const KINK_TOLERANCE: f64 = 1e-2;

/// One cell of a max-pooling window.
#[derive(Clone, Debug, Serialize)]
pub struct PoolCell {
    /// `[row, column]` in the pool's input.
    pub at: [usize; 2],
    /// Its value.
    pub value: f32,
    /// `∂L/∂value` as the engine's backward pass left it (the whole gradient at that position).
    pub gradient: f32,
}

/// One window of a max-pooling layer: its values, its arg-max and where the gradient went.
#[derive(Clone, Debug, Serialize)]
pub struct PoolWindow {
    /// The pool's index in the model.
    pub layer: usize,
    /// Window side and stride.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// The channel.
    pub channel: usize,
    /// The output position `[row, column]`.
    pub output: [usize; 2],
    /// The output value (the window's largest).
    pub value: f32,
    /// `∂L/∂m[c, row, column]` of the pool's output.
    pub upstream: f32,
    /// The window's cells, row by row.
    pub cells: Vec<PoolCell>,
    /// Index into `cells` of the first largest value.
    pub argmax: usize,
    /// True when windows overlap (stride < kernel): a cell's gradient may then also hold what
    /// other windows passed it.
    pub overlapping: bool,
}

/// One step of a convolutional network on one sample, every number from the engine.
#[derive(Clone, Debug, Serialize)]
pub struct ConvTrace {
    /// The network's input (after the model's preprocessing).
    pub inputs: Vec<f32>,
    /// What the sample should give.
    pub target: Target,
    /// Every layer, in order.
    pub layers: Vec<LayerStep>,
    /// Softmax probabilities (classification).
    pub probabilities: Option<Vec<f32>>,
    /// The loss.
    pub loss: f32,
    /// The convolution weight explained.
    pub weight: ConvWeight,
    /// A max-pooling window (when the network has a max pool).
    pub pool: Option<PoolWindow>,
    /// Every parameter tensor's gradient, checked along its own direction.
    pub tensors: Vec<TensorCheck>,
    /// The finite differences' step.
    pub epsilon: f32,
}

/// Traces one step of the convolutional network `net` on `inputs` with `target`: the
/// convolution weight `also` (default: the first convolution's weight with the largest
/// gradient) term by term, showing the `limit` largest terms, and the first max pool's window
/// with the largest gradient (in the weight's channel when the pool follows that convolution).
pub fn explain_conv(
    net: &Network<Sequential>,
    inputs: &[f32],
    target: Target,
    limit: usize,
    also: Option<ConvWeightRef>,
    epsilon: f32,
) -> Result<ConvTrace, NablaError> {
    check_sample(net.inputs(), net.outputs(), inputs, target)?;
    let x = Tensor::from_vec(1, inputs.len(), inputs.to_vec())?;
    let mut grads = Grads::zeros_like(net.params());
    let mut ws = Workspace::new();
    let mut tape = Tape::new(net.params(), &mut ws);
    let (trace, loss) = record(net, &mut tape, &x, target)?;
    tape.backward(loss, &mut grads)?;
    let shapes = net.spec().shapes()?;
    let layers = layer_steps(net, &tape, &trace, &shapes);
    let sample = Sample {
        net,
        x: &x,
        target,
        grads: &grads,
        epsilon,
    };
    let chosen = match also {
        Some(r) => r,
        None => largest_gradient(net, &grads)?,
    };
    let weight = conv_weight(&sample, &tape, &trace, chosen, limit)?;
    let pool = pool_window(net, &tape, &trace, &weight)?;
    let probabilities = tape.probabilities(loss).map(|p| p.data().to_vec());
    let loss = tape.value(loss).data()[0];
    Ok(ConvTrace {
        inputs: inputs.to_vec(),
        target,
        layers,
        probabilities,
        loss,
        weight,
        pool,
        tensors: tensor_checks(&sample)?,
        epsilon,
    })
}

/// Every layer's name, output shape and gradient norm.
fn layer_steps(
    net: &Network<Sequential>,
    tape: &Tape,
    trace: &[Traced],
    shapes: &[Shape],
) -> Vec<LayerStep> {
    let spec = net.spec();
    trace
        .iter()
        .enumerate()
        .map(|(i, t)| LayerStep {
            layer: i,
            name: spec.layers.get(i).map_or_else(String::new, |l| l.summary()),
            shape: shapes.get(i).map_or_else(String::new, |s| s.to_string()),
            gradient_norm: tape.grad(t.output).map_or(0.0, |g| {
                g.data()
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    .sqrt()
            }),
        })
        .collect()
}

/// The first convolution's weight with the largest gradient.
fn largest_gradient(net: &Network<Sequential>, grads: &Grads) -> Result<ConvWeightRef, NablaError> {
    let spec = net.spec();
    let (layer, (i_ch, k)) = spec
        .layers
        .iter()
        .enumerate()
        .find_map(|(n, l)| {
            let LayerSpec::Conv2d(c) = l else {
                return None;
            };
            Some((n, (c.in_channels, c.kernel)))
        })
        .ok_or_else(|| NablaError::Usage("the model has no convolution".into()))?;
    let id = net
        .params()
        .find(&format!("layers.{layer}.weight"))
        .ok_or_else(|| NablaError::Shape(format!("layers.{layer} has no weight")))?;
    let g = grads.get(id).data();
    let e = (0..g.len())
        .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()).then(b.cmp(&a)))
        .unwrap_or(0);
    let per_out = i_ch * k * k;
    let (o, r) = (e / per_out, e % per_out);
    Ok(ConvWeightRef {
        layer,
        index: [o, r / (k * k), (r % (k * k)) / k, r % k],
    })
}

/// The chosen weight's gradient term by term, from the convolution's input and its output's
/// gradient on the tape, with the engine's value and a finite difference.
fn conv_weight(
    sample: &Sample<Sequential>,
    tape: &Tape,
    trace: &[Traced],
    r: ConvWeightRef,
    limit: usize,
) -> Result<ConvWeight, NablaError> {
    let net = sample.net;
    let (
        Some(t),
        Some(LayerSpec::Conv2d(Conv2dSpec {
            stride,
            padding,
            dilation,
            kernel,
            ..
        })),
    ) = (trace.get(r.layer), net.spec().layers.get(r.layer).cloned())
    else {
        return Err(NablaError::Usage(format!(
            "layers.{} is not a convolution",
            r.layer
        )));
    };
    let Some((s_in, s_out)) = images_around(net, r.layer)? else {
        return Err(NablaError::Shape(
            "a convolution without image shapes".into(),
        ));
    };
    let a = tape.value(t.input).data();
    let zeros = vec![0.0; s_out.len()];
    let g = tape.grad(t.output).map_or(&zeros[..], |g| g.data());
    let [o, i, ky, kx] = r.index;
    let (mut terms, padding_terms) =
        all_terms((a, g), (s_in, s_out), r.index, (stride, padding, dilation));
    let zero_upstream = terms.iter().filter(|t| t.upstream == 0.0).count();
    let sum: f64 = terms.iter().map(|t| t.product).sum();
    terms.sort_by(|a, b| b.product.abs().total_cmp(&a.product.abs()));
    let rest = terms.iter().skip(limit).map(|t| t.product).sum();
    terms.truncate(limit);
    let param = format!("layers.{}.weight", r.layer);
    let id = net
        .params()
        .find(&param)
        .ok_or_else(|| NablaError::Shape(format!("the model has no {param}")))?;
    let e = ((o * s_in.channels + i) * kernel + ky) * kernel + kx;
    let value = net.params().get(id).data()[e];
    let mut probe = net.params().clone();
    let (numeric_gradient, numeric_epsilon, kinked_numeric_gradient) = settled_difference(
        |w| loss_with(sample, &mut probe, id, e, w),
        value,
        sample.epsilon,
    )?;
    Ok(ConvWeight {
        param: format!("{param}[{o},{i},{ky},{kx}]"),
        layer: r.layer,
        index: r.index,
        value,
        kernel,
        stride,
        padding,
        dilation,
        input_shape: [s_in.channels, s_in.height, s_in.width],
        output_shape: [s_out.channels, s_out.height, s_out.width],
        reads_input: r.layer == 0,
        terms,
        positions: s_out.height * s_out.width,
        padding_terms,
        zero_upstream,
        rest,
        sum,
        gradient: sample.grads.get(id).data()[e],
        numeric_gradient,
        numeric_epsilon,
        kinked_numeric_gradient,
    })
}

/// The first max pool at or after layer `from` (else the first at all): its index, kernel and
/// stride.
fn first_max_pool(net: &Network<Sequential>, from: usize) -> Option<(usize, usize, usize)> {
    let layers = &net.spec().layers;
    let is_max = |l: &LayerSpec| matches!(l, LayerSpec::MaxPool2d { .. });
    let layer = (from..layers.len())
        .find(|&n| is_max(&layers[n]))
        .or_else(|| layers.iter().position(is_max))?;
    let LayerSpec::MaxPool2d(p) = layers[layer] else {
        return None;
    };
    Some((layer, p.kernel, p.stride))
}

/// The images a layer reads and gives (`None` when either is flat).
fn images_around(
    net: &Network<Sequential>,
    layer: usize,
) -> Result<Option<(ImageShape, ImageShape)>, NablaError> {
    let spec = net.spec();
    let shapes = spec.shapes()?;
    let before = match layer {
        0 => spec.input(),
        n => shapes[n - 1],
    };
    Ok(before.image().zip(shapes[layer].image()))
}

/// Every term `a[i, iy, ix] · ∂L/∂c[o, y, x]` of weight `[o, i, ky, kx]`'s gradient, from the
/// convolution's input `a` and output gradient `g`, and how many positions read the padding.
fn all_terms(
    (a, g): (&[f32], &[f32]),
    (s_in, s_out): (ImageShape, ImageShape),
    [o, i, ky, kx]: [usize; 4],
    (stride, padding, dilation): (usize, usize, usize),
) -> (Vec<ConvTerm>, usize) {
    let (mut terms, mut padding_terms) = (Vec::new(), 0);
    for y in 0..s_out.height {
        for xo in 0..s_out.width {
            let iy = (y * stride + ky * dilation) as i64 - padding as i64;
            let ix = (xo * stride + kx * dilation) as i64 - padding as i64;
            if !(0..s_in.height as i64).contains(&iy) || !(0..s_in.width as i64).contains(&ix) {
                padding_terms += 1;
                continue;
            }
            let (iy, ix) = (iy as usize, ix as usize);
            let value = a[(i * s_in.height + iy) * s_in.width + ix];
            let upstream = g[(o * s_out.height + y) * s_out.width + xo];
            terms.push(ConvTerm {
                output: [y, xo],
                input: [iy, ix],
                value,
                upstream,
                product: f64::from(value) * f64::from(upstream),
            });
        }
    }
    (terms, padding_terms)
}

/// The first max pool after the chosen convolution (else the first at all): a window that gets
/// a gradient and has one largest value, the largest gradient first, in the convolution's
/// output channel when the pool follows it with as many channels.
fn pool_window(
    net: &Network<Sequential>,
    tape: &Tape,
    trace: &[Traced],
    weight: &ConvWeight,
) -> Result<Option<PoolWindow>, NablaError> {
    let Some((layer, kernel, stride)) = first_max_pool(net, weight.layer) else {
        return Ok(None);
    };
    let (Some((s_in, s_out)), Some(t)) = (images_around(net, layer)?, trace.get(layer)) else {
        return Ok(None);
    };
    let (value, out) = (tape.value(t.input).data(), tape.value(t.output).data());
    let zeros_in = vec![0.0; s_in.len()];
    let zeros_out = vec![0.0; s_out.len()];
    let g_in = tape.grad(t.input).map_or(&zeros_in[..], |g| g.data());
    let g_out = tape.grad(t.output).map_or(&zeros_out[..], |g| g.data());
    let plane = s_out.height * s_out.width;
    let [o, ..] = weight.index;
    let follows = layer > weight.layer && s_out.channels == weight.output_shape[0];
    let mine = |best: usize| follows && best / plane == o;
    let at = |best: usize| {
        (
            best / plane,
            (best % plane) / s_out.width,
            best % s_out.width,
        )
    };
    let window = |best: usize| window_cells((value, g_in), s_in, at(best), (kernel, stride));
    // A window that passes a gradient, in the weight's channel, with one largest value (no tie
    // for the first-wins rule to break), then the largest gradient.
    let clear = |best: usize| {
        let cells = window(best);
        let top = cells
            .iter()
            .map(|c| c.value)
            .fold(f32::NEG_INFINITY, f32::max);
        cells.iter().filter(|c| c.value == top).count() == 1
    };
    let best = (0..s_out.len())
        .max_by(|&a, &b| {
            ((g_out[a] != 0.0).cmp(&(g_out[b] != 0.0)))
                .then(mine(a).cmp(&mine(b)))
                .then(clear(a).cmp(&clear(b)))
                .then(g_out[a].abs().total_cmp(&g_out[b].abs()))
                .then(b.cmp(&a))
        })
        .unwrap_or(0);
    let (c, oy, ox) = at(best);
    let cells = window(best);
    // The first largest value, as the engine's max pool picks it.
    let argmax = (0..cells.len())
        .reduce(|m, n| {
            if cells[n].value > cells[m].value {
                n
            } else {
                m
            }
        })
        .unwrap_or(0);
    Ok(Some(PoolWindow {
        layer,
        kernel,
        stride,
        channel: c,
        output: [oy, ox],
        value: out[best],
        upstream: g_out[best],
        cells,
        argmax,
        overlapping: stride < kernel,
    }))
}

/// The cells of the pooling window at channel `c`, output row `oy`, column `ox`: each input
/// value and the gradient the backward pass left there.
fn window_cells(
    (value, gradient): (&[f32], &[f32]),
    s_in: ImageShape,
    (c, oy, ox): (usize, usize, usize),
    (kernel, stride): (usize, usize),
) -> Vec<PoolCell> {
    let mut cells = Vec::new();
    for dy in 0..kernel {
        for dx in 0..kernel {
            let (y, x) = (oy * stride + dy, ox * stride + dx);
            let e = (c * s_in.height + y) * s_in.width + x;
            cells.push(PoolCell {
                at: [y, x],
                value: value[e],
                gradient: gradient[e],
            });
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModelSpec;

    #[test]
    fn a_step_across_a_kink_is_shrunk_until_two_steps_agree() {
        // L(w) = 3w + 10·max(0, w − 0.005): slope 3 at w = 0, but a step of 0.01 reaches the
        // ReLU's kink at 0.005 and averages in the slope 13: (0.06 + 0.05) / 0.02 = 5.5.
        let kinked = |w: f32| Ok(f64::from(3.0 * w + 10.0 * (w - 0.005).max(0.0)));
        let (d, step, first) = settled_difference(kinked, 0.0, 1e-2).unwrap();
        assert!((d - 3.0).abs() < 1e-3, "{d}");
        assert!((step - 1e-3).abs() < 1e-9, "{step}");
        assert!((first.unwrap() - 5.5).abs() < 1e-3, "{first:?}");
        // A smooth loss keeps the requested step: L(w) = w² + 3w, slope 3 at 0.
        let smooth = |w: f32| Ok(f64::from(w * w + 3.0 * w));
        let (d, step, first) = settled_difference(smooth, 0.0, 1e-2).unwrap();
        assert!((d - 3.0).abs() < 1e-4, "{d}");
        assert_eq!((step, first), (1e-2, None));
    }

    fn net() -> Network<Sequential> {
        let spec = ModelSpec::from_layers(
            "conv 3 3 pad 1, relu, maxpool 2, conv 2 2, tanh, flatten, dense 4",
            36,
            Some(crate::nn::ImageShape::new(1, 6, 6)),
        )
        .unwrap();
        Network::from_spec(&spec, 3).unwrap()
    }

    fn sample() -> Vec<f32> {
        (0..36).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect()
    }

    #[test]
    fn the_terms_add_up_to_the_engines_gradient_and_the_finite_difference() {
        let net = net();
        for also in [
            None,
            Some(ConvWeightRef {
                layer: 0,
                index: [2, 0, 0, 1],
            }),
            Some(ConvWeightRef {
                layer: 3,
                index: [1, 2, 1, 0],
            }),
        ] {
            let t = explain_conv(&net, &sample(), Target::Class(1), 100, also, 1e-2).unwrap();
            let w = &t.weight;
            assert_ne!(w.gradient, 0.0);
            assert!((w.sum - f64::from(w.gradient)).abs() < 1e-6, "{w:?}");
            assert!((w.numeric_gradient - w.sum).abs() < 2e-3, "{w:?}");
            assert_eq!(w.terms.len() + w.padding_terms, w.positions);
            for term in &w.terms {
                assert_eq!(
                    term.product,
                    f64::from(term.value) * f64::from(term.upstream)
                );
            }
        }
        // The default is the first convolution's largest gradient.
        let t = explain_conv(&net, &sample(), Target::Class(1), 2, None, 1e-2).unwrap();
        assert_eq!(t.weight.layer, 0);
        assert_eq!(t.weight.terms.len(), 2);
        let all = explain_conv(&net, &sample(), Target::Class(1), 100, None, 1e-2).unwrap();
        assert!(
            (t.weight.rest + t.weight.terms.iter().map(|x| x.product).sum::<f64>()
                - all.weight.sum)
                .abs()
                < 1e-9
        );
    }

    #[test]
    fn max_pooling_passes_the_gradient_to_the_arg_max_alone() {
        let net = net();
        let t = explain_conv(&net, &sample(), Target::Class(0), 3, None, 1e-2).unwrap();
        let p = t.pool.unwrap();
        assert_eq!((p.layer, p.kernel, p.cells.len()), (2, 2, 4));
        assert_ne!(p.upstream, 0.0);
        let best = &p.cells[p.argmax];
        assert_eq!(best.value, p.value);
        assert_eq!(best.gradient, p.upstream);
        for (n, c) in p.cells.iter().enumerate() {
            if n != p.argmax {
                assert_eq!(c.gradient, 0.0);
            }
        }
    }

    #[test]
    fn weight_names_are_checked() {
        let net = net();
        let ok = ConvWeightRef::parse(&net, "layers.3.weight[1,2,0,0]").unwrap();
        assert_eq!(ok.index, [1, 2, 0, 0]);
        for (name, why) in [
            ("layers.1.weight[0,0,0,0]", "not a convolution"),
            (
                "layers.0.weight[3,0,0,0]",
                "out of range: this weight is 3×1×3×3",
            ),
            ("layers.0.weight[0,0]", "four indices"),
            ("W1[0,0]", "is not layers.N.weight"),
        ] {
            let e = ConvWeightRef::parse(&net, name).unwrap_err().to_string();
            assert!(e.contains(why), "{name}: {e}");
        }
    }
}
