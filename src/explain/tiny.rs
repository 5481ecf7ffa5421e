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
    let (n_in, n_hidden, n_out) = net.sizes();
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
    let x = Tensor::from_vec(1, n_in, inputs.to_vec())?;
    let (mut params, ids) = net.params();
    let mut grads = Grads::zeros_like(&params);
    let mut ws = Workspace::new();

    let (hidden, outputs, probabilities, loss) = {
        let mut tape = Tape::new(&params, &mut ws);
        let (z_h, h, z_o, loss) = record(&mut tape, &ids, &x, label as u32)?;
        tape.backward(loss, &mut grads)?;
        let zero = Tensor::zeros(1, 1);
        let g = |v: Var| tape.grad(v).cloned().unwrap_or_else(|| zero.clone());
        let (g_zh, g_h, g_zo) = (g(z_h), g(h), g(z_o));
        let probs = tape
            .probabilities(loss)
            .map(|p| p.data().to_vec())
            .unwrap_or_default();
        let x_names: Vec<String> = (1..=n_in).map(|i| format!("x{i}")).collect();
        let h_names: Vec<String> = (1..=n_hidden).map(|j| format!("h{j}")).collect();
        let units = |prefix: &str,
                     w: &Tensor,
                     w_names: &[String],
                     b: &Tensor,
                     b_names: &[String],
                     in_names: &[String],
                     in_values: &[f32],
                     z: &[f32],
                     out: &[f32],
                     g_out: Option<&[f32]>,
                     g_z: &[f32]| {
            (0..w.rows())
                .map(|j| UnitTrace {
                    name: format!("{prefix}{}", j + 1),
                    terms: (0..w.cols())
                        .map(|i| {
                            (
                                w_names[j * w.cols() + i].clone(),
                                w.data()[j * w.cols() + i],
                                in_names[i].clone(),
                                in_values[i],
                            )
                        })
                        .collect(),
                    bias_name: b_names[j].clone(),
                    bias: b.data()[j],
                    z: z[j],
                    output: out[j],
                    dl_doutput: g_out.map(|g| g[j]),
                    dl_dz: g_z.get(j).copied().unwrap_or(0.0),
                })
                .collect::<Vec<_>>()
        };
        let hv = tape.value(h).data().to_vec();
        let hidden = units(
            "h",
            &net.w_hidden,
            &net.w_hidden_names,
            &net.b_hidden,
            &net.b_hidden_names,
            &x_names,
            inputs,
            tape.value(z_h).data(),
            &hv,
            Some(g_h.data()),
            g_zh.data(),
        );
        let outputs = units(
            "o",
            &net.w_output,
            &net.w_output_names,
            &net.b_output,
            &net.b_output_names,
            &h_names,
            &hv,
            tape.value(z_o).data(),
            &probs,
            None,
            g_zo.data(),
        );
        (hidden, outputs, probs, tape.value(loss).data()[0])
    };

    // Upstream × local for every element, next to the engine's gradient and a finite difference.
    let mut weights = Vec::new();
    for (name, t, e) in net.elements() {
        let (units, cols) = match t {
            0 | 1 => (&hidden, n_in),
            _ => (&outputs, n_hidden),
        };
        let (unit, local_name, local) = if t % 2 == 0 {
            let u = &units[e / cols];
            let term = &u.terms[e % cols];
            (u, term.2.clone(), term.3)
        } else {
            (&units[e], "1".to_string(), 1.0)
        };
        let id = ids[t];
        let value = params.get(id).data()[e];
        let mut probe = params.clone();
        probe.get_mut(id).data_mut()[e] = value + epsilon;
        let plus = loss_of(&probe, &ids, &x, label as u32)? as f64;
        probe.get_mut(id).data_mut()[e] = value - epsilon;
        let minus = loss_of(&probe, &ids, &x, label as u32)? as f64;
        weights.push(WeightTrace {
            name,
            value,
            unit: unit.name.clone(),
            upstream: unit.dl_dz,
            local_name,
            local,
            gradient: grads.get(id).data()[e],
            numeric_gradient: (plus - minus) / (2.0 * epsilon as f64),
            updated: value,
        });
    }

    let mut sgd = Optimizer::Sgd(Sgd::new(learning_rate as f64, 0.0));
    sgd.step(&mut params, &grads);
    for (w, (_, t, e)) in weights.iter_mut().zip(net.elements()) {
        w.updated = params.get(ids[t]).data()[e];
    }
    let loss_after = loss_of(&params, &ids, &x, label as u32)?;

    Ok(Explanation {
        inputs: inputs.to_vec(),
        label,
        hidden,
        outputs,
        probabilities,
        loss,
        weights,
        learning_rate,
        epsilon,
        loss_after,
    })
}
