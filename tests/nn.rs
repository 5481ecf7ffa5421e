//! Networks built from a spec: every parameter receives a gradient, the gradients agree with
//! finite differences on the parameters themselves, and training lowers the loss.

use nabla::autograd::{Grads, Tape, Workspace};
use nabla::kernels::activation::Activation;
use nabla::nn::{LayerSpec, ModelSpec, Network};
use nabla::rng::{self, RngExt, Stream};
use nabla::{ParamId, Tensor};

fn batch(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut r = rng::stream(seed, Stream::Split);
    Tensor::from_vec(
        rows,
        cols,
        (0..rows * cols)
            .map(|_| r.random::<f32>() * 2.0 - 1.0)
            .collect(),
    )
    .unwrap()
}

fn loss_of(model: &Network, x: &Tensor, labels: &[u32], grads: Option<&mut Grads>) -> f32 {
    let mut ws = Workspace::new();
    let mut tape = Tape::new(model.params(), &mut ws);
    let xv = tape.input(x);
    let logits = model.forward(&mut tape, xv).unwrap();
    let loss = tape.softmax_cross_entropy(logits, labels).unwrap();
    if let Some(g) = grads {
        tape.backward(loss, g).unwrap();
    }
    tape.value(loss).data()[0]
}

/// `(L(θ_i + ε) − L(θ_i − ε)) / 2ε` for element `i` of parameter `id`, ε = 0.01.
fn finite_difference(
    model: &mut Network,
    x: &Tensor,
    labels: &[u32],
    id: ParamId,
    i: usize,
) -> f64 {
    let eps = 1e-2f32;
    let orig = model.params().get(id).data()[i];
    model.params_mut().get_mut(id).data_mut()[i] = orig + eps;
    let plus = loss_of(model, x, labels, None) as f64;
    model.params_mut().get_mut(id).data_mut()[i] = orig - eps;
    let minus = loss_of(model, x, labels, None) as f64;
    model.params_mut().get_mut(id).data_mut()[i] = orig;
    (plus - minus) / (2.0 * eps as f64)
}

#[test]
fn every_parameter_of_a_deep_network_gets_a_nonzero_gradient() {
    for act in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu { slope: 0.01 },
    ] {
        let spec = ModelSpec::mlp(5, &[7, 6, 4], act, 3);
        let model = Network::from_spec(&spec, 3).unwrap();
        assert_eq!(model.params().len(), 8);
        let x = batch(9, 5, 1);
        let labels: Vec<u32> = (0..9).map(|i| i % 3).collect();
        let mut grads = Grads::zeros_like(model.params());
        loss_of(&model, &x, &labels, Some(&mut grads));
        for ((name, p), g) in model.params().iter().zip(grads.tensors()) {
            assert_eq!(p.shape(), g.shape(), "{name}");
            let norm: f32 = g.data().iter().map(|v| v * v).sum();
            assert!(norm > 0.0, "{act:?}: {name} received no gradient");
            assert!(g.all_finite());
        }
    }
}

/// Gradient accumulation as the trainer's groups do it: a second batch's backward pass added
/// onto the first's gradients (the weight gradients by the GEMM's accumulate mode) gives the
/// sum of the two passes' gradients: the weights' bit for bit (the GEMM adds its product to
/// the buffer as the sum would), the biases' (column sums continued row by row) within
/// rounding.
#[test]
fn backward_add_accumulates_the_gradients_of_several_batches() {
    let spec = ModelSpec::mlp(20, &[16, 12], Activation::Relu, 4);
    let model = Network::from_spec(&spec, 5).unwrap();
    let params = model.params();
    let labels: Vec<u32> = (0..64).map(|i| i % 4).collect();
    let xs = [batch(64, 20, 1), batch(64, 20, 2), batch(37, 20, 3)];
    let (mut apart, mut together) = (Vec::new(), Grads::zeros_like(params));
    let mut ws = Workspace::new();
    for (i, x) in xs.iter().enumerate() {
        let mut tape = Tape::new(params, &mut ws);
        let xv = tape.input(x);
        let logits = model.forward(&mut tape, xv).unwrap();
        let loss = tape
            .softmax_cross_entropy(logits, &labels[..x.rows()])
            .unwrap();
        let mut g = Grads::zeros_like(params);
        tape.backward(loss, &mut g).unwrap();
        apart.push(g);
        if i == 0 {
            tape.backward(loss, &mut together).unwrap();
        } else {
            tape.backward_add(loss, &mut together).unwrap();
        }
    }
    for (p, (name, _)) in params.iter().enumerate() {
        let got = together.tensors()[p].data();
        for (e, &v) in got.iter().enumerate() {
            let sum = (apart[0].tensors()[p].data()[e] + apart[1].tensors()[p].data()[e])
                + apart[2].tensors()[p].data()[e];
            if name.ends_with("weight") {
                assert_eq!(v.to_bits(), sum.to_bits(), "{name}[{e}]: {v} vs {sum}");
            } else {
                assert!((v - sum).abs() <= 1e-6 * sum.abs().max(1.0), "{name}[{e}]");
            }
        }
    }
}

/// `backward_notify` reports each parameter once, last layer first, after its gradient is
/// final, and computes the same gradients as `backward` / `backward_add`.
#[test]
fn backward_notify_reports_each_parameter_once_it_is_final() {
    let spec = ModelSpec::mlp(20, &[16, 12], Activation::Relu, 4);
    let model = Network::from_spec(&spec, 5).unwrap();
    let params = model.params();
    let labels: Vec<u32> = (0..64).map(|i| i % 4).collect();
    let x = batch(64, 20, 1);
    let mut ws = Workspace::new();
    let mut tape = Tape::new(params, &mut ws);
    let xv = tape.input(&x);
    let logits = model.forward(&mut tape, xv).unwrap();
    let loss = tape.softmax_cross_entropy(logits, &labels).unwrap();
    for add in [false, true] {
        let (mut plain, mut told) = (Grads::zeros_like(params), Grads::zeros_like(params));
        tape.backward(loss, &mut plain).unwrap();
        tape.backward(loss, &mut told).unwrap();
        if add {
            tape.backward_add(loss, &mut plain).unwrap();
        }
        let mut order = Vec::new();
        let mut ready = |id: ParamId| order.push(id.index());
        tape.backward_notify(loss, &mut told, add, &mut ready)
            .unwrap();
        // Parameters: layer 1 weight, bias, layer 2 …; the linear op reads its weight, then
        // its bias, so a layer's bias is final first.
        assert_eq!(order, [5, 4, 3, 2, 1, 0], "add {add}");
        for (a, b) in plain.tensors().iter().zip(told.tensors()) {
            let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "add {add}");
        }
    }
}

#[test]
fn parameter_gradients_match_finite_differences() {
    let spec = ModelSpec::mlp(4, &[5, 3], Activation::Tanh, 3);
    let mut model = Network::from_spec(&spec, 11).unwrap();
    let x = batch(6, 4, 2);
    let labels = [0, 1, 2, 2, 1, 0];
    let mut grads = Grads::zeros_like(model.params());
    loss_of(&model, &x, &labels, Some(&mut grads));
    let ids: Vec<ParamId> = model.params().ids().collect();
    let mut worst = 0.0f64;
    for id in ids {
        for i in 0..model.params().get(id).len() {
            let numeric = finite_difference(&mut model, &x, &labels, id, i);
            let analytic = grads.get(id).data()[i] as f64;
            worst =
                worst.max((numeric - analytic).abs() / analytic.abs().max(numeric.abs()).max(1.0));
        }
    }
    assert!(worst < 2e-3, "worst parameter gradient error {worst}");
}

#[test]
fn evaluation_forward_with_batch_norm_passes_gradients_to_every_parameter() {
    // Batch norm in evaluation (running statistics) is still differentiable in γ and β:
    // `nabla explain --model` takes a training step through it.
    let spec = ModelSpec::mlp_with(4, &[5, 3], Activation::Tanh, 3, true, 0.3);
    let mut model = Network::from_spec(&spec, 4).unwrap();
    for id in model.buffers().ids().collect::<Vec<_>>() {
        let name = model.buffers().name(id).to_string();
        for (i, v) in model
            .buffers_mut()
            .get_mut(id)
            .data_mut()
            .iter_mut()
            .enumerate()
        {
            if name.ends_with("running_mean") {
                *v = 0.1 * i as f32 - 0.2;
            } else if name.ends_with("running_var") {
                *v = 0.5 + 0.3 * i as f32;
            }
        }
    }
    for (id, t) in model.params().ids().zip(0..).collect::<Vec<_>>() {
        // γ ≠ 1, β ≠ 0 so every factor shows.
        for (i, v) in model
            .params_mut()
            .get_mut(id)
            .data_mut()
            .iter_mut()
            .enumerate()
        {
            *v += 0.05 * ((i + t) % 5) as f32 - 0.1;
        }
    }
    let x = batch(6, 4, 8);
    let labels = [0, 1, 2, 2, 1, 0];
    let mut grads = Grads::zeros_like(model.params());
    loss_of(&model, &x, &labels, Some(&mut grads));
    let ids: Vec<ParamId> = model.params().ids().collect();
    for id in ids {
        let name = model.params().name(id).to_string();
        let norm: f32 = grads.get(id).data().iter().map(|g| g * g).sum();
        assert!(norm > 0.0, "{name} gets no gradient in evaluation mode");
        for i in 0..model.params().get(id).len() {
            let numeric = finite_difference(&mut model, &x, &labels, id, i);
            let analytic = grads.get(id).data()[i] as f64;
            assert!(
                (numeric - analytic).abs() < 2e-3 * analytic.abs().max(1.0),
                "{name}[{i}]: analytic {analytic} vs numeric {numeric}"
            );
        }
    }

    // forward_traced: one var per layer, the last the same output as forward.
    let mut ws = Workspace::new();
    let mut tape = Tape::new(model.params(), &mut ws);
    let xv = tape.input(&x);
    let trace: Vec<_> = model
        .forward_traced(&mut tape, xv)
        .unwrap()
        .into_iter()
        .map(|t| t.output)
        .collect();
    assert_eq!(trace.len(), spec.layers.len());
    let traced = tape.value(*trace.last().unwrap()).clone();
    assert_eq!(traced.data(), model.logits(&x).unwrap().data());
    // Dropout does nothing in evaluation: it hands on its input's var.
    let dropout = spec
        .layers
        .iter()
        .position(|l| matches!(l, LayerSpec::Dropout { .. }))
        .unwrap();
    assert_eq!(trace[dropout], trace[dropout - 1]);
}

#[test]
fn names_and_shapes_follow_pytorch_sequential() {
    let spec = ModelSpec::mlp(4, &[5], Activation::Relu, 2);
    let model = Network::from_spec(&spec, 0).unwrap();
    let names: Vec<(String, (usize, usize))> = model
        .params()
        .iter()
        .map(|(n, t)| (n.to_string(), t.shape()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("layers.0.weight".to_string(), (5, 4)),
            ("layers.0.bias".to_string(), (1, 5)),
            ("layers.2.weight".to_string(), (2, 5)),
            ("layers.2.bias".to_string(), (1, 2)),
        ]
    );
    assert!(matches!(spec.layers[1], LayerSpec::Relu));
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let spec = ModelSpec::mlp(4, &[5], Activation::Relu, 2);
    let a = Network::from_spec(&spec, 1).unwrap();
    let b = Network::from_spec(&spec, 1).unwrap();
    let c = Network::from_spec(&spec, 2).unwrap();
    assert_eq!(a.params().tensors(), b.params().tensors());
    assert_ne!(a.params().tensors(), c.params().tensors());
}

#[test]
fn he_init_has_the_expected_spread() {
    let spec = ModelSpec::mlp(400, &[300], Activation::Relu, 2);
    let model = Network::from_spec(&spec, 5).unwrap();
    let w = model.params().tensors()[0].data();
    let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
    let expected = 2.0 / 400.0;
    assert!(
        (var / expected - 1.0).abs() < 0.05,
        "variance {var}, expected {expected}"
    );
}

#[test]
fn gradient_descent_lowers_the_loss() {
    let spec = ModelSpec::mlp(5, &[8, 8], Activation::Relu, 3);
    let mut model = Network::from_spec(&spec, 4).unwrap();
    let x = batch(12, 5, 3);
    let labels: Vec<u32> = (0..12).map(|i| i % 3).collect();
    let mut opt = nabla::optim::Optimizer::Sgd(nabla::optim::Sgd::new(0.1, 0.0));
    let mut grads = Grads::zeros_like(model.params());
    let first = loss_of(&model, &x, &labels, Some(&mut grads));
    for _ in 0..500 {
        loss_of(&model, &x, &labels, Some(&mut grads));
        opt.step(model.params_mut(), &grads);
    }
    let last = loss_of(&model, &x, &labels, None);
    assert!(last < first * 0.5, "loss went from {first} to {last}");
}

#[test]
fn every_kind_declares_the_tensors_its_module_makes() {
    // Each kind says its tensors (names, shapes, bytes) from its spec alone; the model-file size
    // check and the memory estimates rely on that matching what its module builds.
    use nabla::nn::{Dtype, ImageShape};
    let text = "conv 4 3 pad 1, batchnorm, relu, maxpool 2, dropout2d 0.1, conv 6 3 dilation 1, \
                leaky_relu 0.1, avgpool 2 stride 1, globalavgpool, flatten, dense 16, batchnorm, \
                gelu, dropout 0.1, sigmoid, tanh, dense 10";
    let spec = ModelSpec::from_layers(text, 64, Some(ImageShape::new(1, 8, 8))).unwrap();
    let net = Network::from_spec(&spec, 1).unwrap();
    let mut made: Vec<(String, Vec<usize>, u64)> = net
        .tensors()
        .iter()
        .map(|t| {
            let bytes = if t.dtype == Dtype::I64 { 8 } else { 4 };
            (
                t.name.to_string(),
                t.shape.to_vec(),
                bytes * t.data.len() as u64,
            )
        })
        .collect();
    let mut declared: Vec<(String, Vec<usize>, u64)> = spec
        .layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| {
            l.tensors().into_iter().map(move |t| {
                let bytes = t.bytes().unwrap();
                (format!("layers.{i}.{}", t.name), t.shape, bytes)
            })
        })
        .collect();
    made.sort();
    declared.sort();
    assert_eq!(made, declared);
    let total: u64 = spec.layers.iter().map(|l| l.tensor_bytes().unwrap()).sum();
    assert_eq!(total, made.iter().map(|t| t.2).sum::<u64>());
    let trained: usize = spec.layers.iter().map(LayerSpec::parameters).sum();
    assert_eq!(trained, net.params().count());
}
