//! The classic teaching network (3 inputs → 2 sigmoid units → 2 softmax outputs, weights named
//! `w1..w10`, biases `b1..b4`), one training step of it traced on the engine's [`Tape`].

use serde::Serialize;

use super::WeightTrace;

use crate::autograd::{Grads, ParamId, Params, Tape, Var, Workspace};
use crate::error::NablaError;
use crate::kernels::Transpose;
use crate::optim::{Optimizer, Sgd};
use crate::tensor::Tensor;

/// A network with one sigmoid hidden layer and a softmax output, every weight and bias named.
///
/// Weights are stored `[out, in]` like everywhere else in nabla; `names` give each element the
/// name a learner reads in the classic figure.
#[derive(Clone, Debug)]
pub struct TinyNet {
    /// Input-to-hidden weights `[hidden, inputs]`.
    pub w_hidden: Tensor,
    /// Hidden biases `[1, hidden]`.
    pub b_hidden: Tensor,
    /// Hidden-to-output weights `[outputs, hidden]`.
    pub w_output: Tensor,
    /// Output biases `[1, outputs]`.
    pub b_output: Tensor,
    /// Names of the elements of `w_hidden`, row-major.
    pub w_hidden_names: Vec<String>,
    /// Names of the hidden biases.
    pub b_hidden_names: Vec<String>,
    /// Names of the elements of `w_output`, row-major.
    pub w_output_names: Vec<String>,
    /// Names of the output biases.
    pub b_output_names: Vec<String>,
}

impl TinyNet {
    /// The default network of `nabla explain`: 3 inputs, 2 sigmoid hidden units, 2 softmax
    /// outputs, weights named as in the classic figure — `z_h1 = w1·x1 + w3·x2 + w5·x3 + b1`,
    /// `z_h2 = w2·x1 + w4·x2 + w6·x3 + b2`, `z_o1 = w7·h1 + w9·h2 + b3`,
    /// `z_o2 = w8·h1 + w10·h2 + b4`.
    pub fn classic() -> Self {
        // Weight w_k connects input i to unit j with k = (number of units)·i + j + 1.
        let name_grid = |units: usize, inputs: usize, first: usize| -> Vec<String> {
            let mut names = vec![String::new(); units * inputs];
            for j in 0..units {
                for i in 0..inputs {
                    names[j * inputs + i] = format!("w{}", first + units * i + j);
                }
            }
            names
        };
        let t =
            |rows, cols, v: &[f32]| Tensor::from_vec(rows, cols, v.to_vec()).unwrap_or_default();
        Self {
            // Row j = hidden unit j: [w1 w3 w5], [w2 w4 w6].
            w_hidden: t(2, 3, &[0.15, 0.25, 0.35, 0.20, 0.30, 0.40]),
            b_hidden: t(1, 2, &[0.35, 0.35]),
            // Row k = output k: [w7 w9], [w8 w10].
            w_output: t(2, 2, &[0.40, 0.50, 0.45, 0.55]),
            b_output: t(1, 2, &[0.60, 0.60]),
            w_hidden_names: name_grid(2, 3, 1),
            b_hidden_names: vec!["b1".into(), "b2".into()],
            w_output_names: name_grid(2, 2, 7),
            b_output_names: vec!["b3".into(), "b4".into()],
        }
    }

    /// Inputs, hidden units and outputs.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.w_hidden.cols(),
            self.w_hidden.rows(),
            self.w_output.rows(),
        )
    }

    fn params(&self) -> (Params, [ParamId; 4]) {
        let mut p = Params::new();
        let ids = [
            p.add("hidden.weight", self.w_hidden.clone()),
            p.add("hidden.bias", self.b_hidden.clone()),
            p.add("output.weight", self.w_output.clone()),
            p.add("output.bias", self.b_output.clone()),
        ];
        (p, ids)
    }

    /// Every parameter element as `(name, tensor index, element index)` in the order
    /// w (input→hidden), b (hidden), w (hidden→output), b (output), sorted by name number
    /// within each group.
    fn elements(&self) -> Vec<(String, usize, usize)> {
        let mut out = Vec::new();
        for (t, names) in [
            &self.w_hidden_names,
            &self.b_hidden_names,
            &self.w_output_names,
            &self.b_output_names,
        ]
        .into_iter()
        .enumerate()
        {
            let mut group: Vec<(String, usize, usize)> = names
                .iter()
                .enumerate()
                .map(|(e, n)| (n.clone(), t, e))
                .collect();
            group.sort_by_key(|(n, _, _)| name_number(n));
            out.extend(group);
        }
        // Weights first, then biases, as a learner reads the figure.
        let (w, b): (Vec<_>, Vec<_>) = out.into_iter().partition(|(_, t, _)| t % 2 == 0);
        w.into_iter().chain(b).collect()
    }
}

fn name_number(name: &str) -> usize {
    name.trim_start_matches(|c: char| c.is_alphabetic())
        .parse()
        .unwrap_or(usize::MAX)
}

/// One unit: its pre-activation `z = Σ w·x + b` term by term, its output and `∂L/∂z`.
#[derive(Clone, Debug, Serialize)]
pub struct UnitTrace {
    /// `h1`, `o2`, ...
    pub name: String,
    /// `(weight name, weight value, input name, input value)` for each term of the sum.
    pub terms: Vec<(String, f32, String, f32)>,
    /// The bias's name.
    pub bias_name: String,
    /// The bias's value.
    pub bias: f32,
    /// The pre-activation `z`.
    pub z: f32,
    /// The unit's output: `σ(z)` for hidden units, the softmax probability for outputs.
    pub output: f32,
    /// `∂L/∂output`, read from the tape (hidden units only; outputs feed the fused loss).
    pub dl_doutput: Option<f32>,
    /// `∂L/∂z`, read from the tape.
    pub dl_dz: f32,
}

/// One training step of a [`TinyNet`] on one labelled sample, every number from the engine.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The sample's features `x1, x2, ...`.
    pub inputs: Vec<f32>,
    /// The true class (0-based).
    pub label: usize,
    /// Hidden units, in order.
    pub hidden: Vec<UnitTrace>,
    /// Output units, in order.
    pub outputs: Vec<UnitTrace>,
    /// Softmax probabilities of the outputs.
    pub probabilities: Vec<f32>,
    /// Cross-entropy loss `−log p_label`.
    pub loss: f32,
    /// Every weight and bias.
    pub weights: Vec<WeightTrace>,
    /// The learning rate of the update.
    pub learning_rate: f32,
    /// The step of the finite differences.
    pub epsilon: f32,
    /// The loss on the same sample after the update.
    pub loss_after: f32,
}

/// Records the forward pass and loss on `tape`; returns (z_hidden, h, z_output, loss).
fn record(
    tape: &mut Tape,
    ids: &[ParamId; 4],
    x: &Tensor,
    label: u32,
) -> Result<(Var, Var, Var, Var), NablaError> {
    let xv = tape.input(x);
    let (w1, b1, w2, b2) = (
        tape.param(ids[0]),
        tape.param(ids[1]),
        tape.param(ids[2]),
        tape.param(ids[3]),
    );
    let a = tape.matmul_t(xv, Transpose::No, w1, Transpose::Yes)?;
    let z_h = tape.add_row(a, b1)?;
    let h = tape.sigmoid(z_h);
    let a = tape.matmul_t(h, Transpose::No, w2, Transpose::Yes)?;
    let z_o = tape.add_row(a, b2)?;
    let loss = tape.softmax_cross_entropy(z_o, &[label])?;
    Ok((z_h, h, z_o, loss))
}

/// The loss of `params` on `(x, label)`: the forward pass on a fresh tape.
fn loss_of(params: &Params, ids: &[ParamId; 4], x: &Tensor, label: u32) -> Result<f32, NablaError> {
    let mut ws = Workspace::new();
    let mut tape = Tape::new(params, &mut ws);
    let (_, _, _, loss) = record(&mut tape, ids, x, label)?;
    Ok(tape.value(loss).data()[0])
}

/// Traces one SGD step (`w ← w − lr·∂L/∂w`, no momentum) of `net` on `inputs` with true class
/// `label`, with finite differences of step `epsilon`.
///
/// ```
/// use nabla::explain::{explain, TinyNet};
/// let e = explain(&TinyNet::classic(), &[0.5, 0.1, 0.9], 0, 0.5, 1e-3).unwrap();
/// let w7 = e.weights.iter().find(|w| w.name == "w7").unwrap();
/// // upstream × local = downstream, and the finite difference agrees.
/// assert!((w7.upstream * w7.local - w7.gradient).abs() < 1e-6);
/// assert!((w7.numeric_gradient - w7.gradient as f64).abs() < 1e-3);
/// ```
pub fn explain(
    net: &TinyNet,
    inputs: &[f32],
    label: usize,
    learning_rate: f32,
    epsilon: f32,
) -> Result<Explanation, NablaError> {
    check_sample(net, inputs, label)?;
    let x = Tensor::from_vec(1, inputs.len(), inputs.to_vec())?;
    let (mut params, ids) = net.params();
    let mut grads = Grads::zeros_like(&params);
    let probe = Probe {
        params: &params,
        ids: &ids,
        x: &x,
        label: label as u32,
    };
    let traced = trace_units(net, &probe, &mut grads)?;
    let mut weights = weight_traces(net, &probe, &grads, &traced, epsilon)?;

    let mut sgd = Optimizer::Sgd(Sgd::new(learning_rate as f64, 0.0));
    sgd.step(&mut params, &grads);
    for (w, (_, t, e)) in weights.iter_mut().zip(net.elements()) {
        w.updated = params.get(ids[t]).data()[e];
    }
    let loss_after = loss_of(&params, &ids, &x, label as u32)?;

    Ok(Explanation {
        inputs: inputs.to_vec(),
        label,
        hidden: traced.hidden,
        outputs: traced.outputs,
        probabilities: traced.probabilities,
        loss: traced.loss,
        weights,
        learning_rate,
        epsilon,
        loss_after,
    })
}

/// Refuses a sample the network cannot take: the wrong number of inputs, or a label beyond its
/// outputs.
fn check_sample(net: &TinyNet, inputs: &[f32], label: usize) -> Result<(), NablaError> {
    let (n_in, _, n_out) = net.sizes();
    if inputs.len() != n_in {
        return Err(NablaError::Usage(format!(
            "the network takes {n_in} inputs, the sample has {}",
            inputs.len()
        )));
    }
    if label >= n_out {
        return Err(NablaError::Usage(format!(
            "label {label} is out of range for {n_out} classes"
        )));
    }
    Ok(())
}

/// The parameters and the sample a step is traced on.
struct Probe<'a> {
    params: &'a Params,
    ids: &'a [ParamId; 4],
    x: &'a Tensor,
    label: u32,
}

impl Probe<'_> {
    /// The central finite difference `(L(w+ε) − L(w−ε)) / 2ε` of element `e` of parameter `id`.
    fn central_difference(&self, id: ParamId, e: usize, epsilon: f32) -> Result<f64, NablaError> {
        let value = self.params.get(id).data()[e];
        let mut probe = self.params.clone();
        probe.get_mut(id).data_mut()[e] = value + epsilon;
        let plus = loss_of(&probe, self.ids, self.x, self.label)? as f64;
        probe.get_mut(id).data_mut()[e] = value - epsilon;
        let minus = loss_of(&probe, self.ids, self.x, self.label)? as f64;
        Ok((plus - minus) / (2.0 * epsilon as f64))
    }
}

/// The forward and backward pass of one step, read off the tape unit by unit.
struct Traced {
    hidden: Vec<UnitTrace>,
    outputs: Vec<UnitTrace>,
    probabilities: Vec<f32>,
    loss: f32,
}

/// Records the step on a tape, runs the backward pass into `grads` and reads every unit's
/// values and gradients.
fn trace_units(net: &TinyNet, probe: &Probe, grads: &mut Grads) -> Result<Traced, NablaError> {
    let (n_in, n_hidden, _) = net.sizes();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(probe.params, &mut ws);
    let (z_h, h, z_o, loss) = record(&mut tape, probe.ids, probe.x, probe.label)?;
    tape.backward(loss, grads)?;
    let zero = Tensor::zeros(1, 1);
    let g = |v: Var| tape.grad(v).cloned().unwrap_or_else(|| zero.clone());
    let (g_zh, g_h, g_zo) = (g(z_h), g(h), g(z_o));
    let probabilities = tape
        .probabilities(loss)
        .map(|p| p.data().to_vec())
        .unwrap_or_default();
    let x_names: Vec<String> = (1..=n_in).map(|i| format!("x{i}")).collect();
    let h_names: Vec<String> = (1..=n_hidden).map(|j| format!("h{j}")).collect();
    let hv = tape.value(h).data().to_vec();
    let hidden = Layer {
        prefix: "h",
        weight: &net.w_hidden,
        weight_names: &net.w_hidden_names,
        bias: &net.b_hidden,
        bias_names: &net.b_hidden_names,
        input_names: &x_names,
        inputs: probe.x.data(),
        z: tape.value(z_h).data(),
        output: &hv,
        dl_doutput: Some(g_h.data()),
        dl_dz: g_zh.data(),
    }
    .units();
    let outputs = Layer {
        prefix: "o",
        weight: &net.w_output,
        weight_names: &net.w_output_names,
        bias: &net.b_output,
        bias_names: &net.b_output_names,
        input_names: &h_names,
        inputs: &hv,
        z: tape.value(z_o).data(),
        output: &probabilities,
        dl_doutput: None,
        dl_dz: g_zo.data(),
    }
    .units();
    let loss = tape.value(loss).data()[0];
    Ok(Traced {
        hidden,
        outputs,
        probabilities,
        loss,
    })
}

/// One layer of a [`TinyNet`] with the numbers the tape gave it, to be read as [`UnitTrace`]s.
struct Layer<'a> {
    /// `h` or `o`: unit `j` is named `{prefix}{j + 1}`.
    prefix: &'a str,
    weight: &'a Tensor,
    weight_names: &'a [String],
    bias: &'a Tensor,
    bias_names: &'a [String],
    input_names: &'a [String],
    inputs: &'a [f32],
    z: &'a [f32],
    output: &'a [f32],
    /// `∂L/∂output`, when the tape has it (not for outputs, which feed the fused loss).
    dl_doutput: Option<&'a [f32]>,
    dl_dz: &'a [f32],
}

impl Layer<'_> {
    /// Every unit: its sum term by term, its values and its gradients.
    fn units(&self) -> Vec<UnitTrace> {
        let (w, cols) = (self.weight, self.weight.cols());
        (0..w.rows())
            .map(|j| UnitTrace {
                name: format!("{}{}", self.prefix, j + 1),
                terms: (0..cols)
                    .map(|i| {
                        (
                            self.weight_names[j * cols + i].clone(),
                            w.data()[j * cols + i],
                            self.input_names[i].clone(),
                            self.inputs[i],
                        )
                    })
                    .collect(),
                bias_name: self.bias_names[j].clone(),
                bias: self.bias.data()[j],
                z: self.z[j],
                output: self.output[j],
                dl_doutput: self.dl_doutput.map(|g| g[j]),
                dl_dz: self.dl_dz.get(j).copied().unwrap_or(0.0),
            })
            .collect()
    }
}

/// Upstream × local for every element, next to the engine's gradient and a finite difference
/// (`updated` is filled in after the step).
fn weight_traces(
    net: &TinyNet,
    probe: &Probe,
    grads: &Grads,
    traced: &Traced,
    epsilon: f32,
) -> Result<Vec<WeightTrace>, NablaError> {
    let (n_in, n_hidden, _) = net.sizes();
    let mut weights = Vec::new();
    for (name, t, e) in net.elements() {
        let (units, cols) = match t {
            0 | 1 => (&traced.hidden, n_in),
            _ => (&traced.outputs, n_hidden),
        };
        // Weights (even tensors) multiply an input; biases multiply 1.
        let (unit, local_name, local) = if t % 2 == 0 {
            let u = &units[e / cols];
            let term = &u.terms[e % cols];
            (u, term.2.clone(), term.3)
        } else {
            (&units[e], "1".to_string(), 1.0)
        };
        let id = probe.ids[t];
        let value = probe.params.get(id).data()[e];
        weights.push(WeightTrace {
            name,
            value,
            unit: unit.name.clone(),
            upstream: unit.dl_dz,
            local_name,
            local,
            gradient: grads.get(id).data()[e],
            numeric_gradient: probe.central_difference(id, e, epsilon)?,
            updated: value,
        });
    }
    Ok(weights)
}
