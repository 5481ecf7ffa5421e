//! A layer norm written outside the library from nabla's public ops only (mean along an axis
//! with keepdim, broadcasting sub/mul/div/add, sqrt), as a user would write it:
//!
//! `y = (h − mean(h)) / √(var(h) + ε) · γ + β` over the last axis, here after a linear map
//! `h = x·W` (a batched matmul: `x` is `[batch, time, input]`).
//!
//! It is checked four ways: its output matches NumPy's on the same weights to 1e-5
//! (examples/reference/layer_norm.py made layer_norm.json), it agrees with the built-in
//! `Tape::layer_norm`, its gradients match finite differences, and a student trained with Adam
//! to imitate the reference weights (the teacher) on generated data sees its loss fall. Any
//! failure exits non-zero.
//! `cargo run --release --example layer_norm`

use nabla::prelude::*;
use nabla::{Grads, Params, Workspace, gradcheck};

/// Layer norm of `h` over its last axis, with scale `gamma` and shift `beta` (`[d]` each).
fn layer_norm(tape: &mut Tape, h: Var, gamma: Var, beta: Var, eps: f32) -> Result<Var, NablaError> {
    let mean = tape.mean_axes(h, &[-1], true)?;
    let centered = tape.sub(h, mean)?;
    let squared = tape.mul(centered, centered)?;
    let var = tape.mean_axes(squared, &[-1], true)?; // the population variance, as PyTorch
    let eps = tape.input(&Tensor::full(&[1], eps)?);
    let var = tape.add(var, eps)?;
    let std = tape.sqrt(var)?;
    let normalised = tape.div(centered, std)?;
    let scaled = tape.mul(normalised, gamma)?;
    tape.add(scaled, beta)
}

/// The model: `LN(x·W)`.
fn model(tape: &mut Tape, x: Var, w: [Var; 3], eps: f32) -> Result<Var, NablaError> {
    let h = tape.matmul(x, w[0])?;
    layer_norm(tape, h, w[1], w[2], eps)
}

/// A tensor from the reference file's `{"shape": [...], "data": [...]}`.
fn tensor(v: &serde_json::Value) -> Result<Tensor, Box<dyn std::error::Error>> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    let data: Vec<f32> = serde_json::from_value(v["data"].clone())?;
    Ok(Tensor::from_shape(&shape, data)?)
}

/// Values in `[shift − scale, shift + scale)` from a small LCG (no dependency), seeded.
fn random(shape: &[usize], scale: f32, shift: f32, seed: u64) -> Result<Tensor, NablaError> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            shift + ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_shape(shape, data)
}

fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The output on the reference weights and input, against NumPy's and the built-in layer
/// norm; returns the weights `[W, γ, β]`.
fn check_reference(
    reference: &serde_json::Value,
    eps: f32,
) -> Result<Vec<Tensor>, Box<dyn std::error::Error>> {
    let weights: Vec<Tensor> = ["w", "gamma", "beta"]
        .iter()
        .map(|n| tensor(&reference["weights"][n]))
        .collect::<Result<_, _>>()?;
    let want = tensor(&reference["output"])?;
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws).without_grad();
    let x = tape.input(&tensor(&reference["x"])?);
    let w: Vec<Var> = weights.iter().map(|t| tape.input(t)).collect();
    let y = model(&mut tape, x, [w[0], w[1], w[2]], eps)?;
    let h = tape.matmul(x, w[0])?;
    let built_in = tape.layer_norm(h, w[1], w[2], eps)?;
    let got = tape.value(y);
    let (numpy, library) = (
        largest_difference(got, &want),
        largest_difference(got, tape.value(built_in)),
    );
    println!(
        "NumPy reference {:?}: largest difference {numpy:.2e} (built-in layer_norm: {library:.2e})",
        got.dims()
    );
    if got.dims() != want.dims() || numpy > 1e-5 || library > 1e-5 {
        return Err(format!(
            "the output differs: from NumPy's by {numpy}, from layer_norm's by {library}"
        )
        .into());
    }
    Ok(weights)
}

/// Finite differences on a small instance: every input and weight element.
fn check_gradients(eps: f32) -> Result<(), Box<dyn std::error::Error>> {
    let inputs = [
        random(&[2, 3, 4], 1.0, 0.0, 1)?,
        random(&[4, 5], 0.5, 0.0, 2)?,
        random(&[5], 0.2, 1.0, 3)?,
        random(&[5], 0.2, 0.0, 4)?,
    ];
    let weights = random(&[2, 3, 5], 1.0, 0.0, 5)?;
    let check = gradcheck::check(&inputs, 1e-3, |tape, v| {
        let y = model(tape, v[0], [v[1], v[2], v[3]], eps)?;
        let fixed = tape.input(&weights);
        let y = tape.mul(y, fixed)?;
        Ok(tape.sum(y))
    })?;
    println!(
        "gradient check: {} elements, worst relative error {:.2e}",
        check.compared, check.max_error
    );
    if check.max_error > 1e-2 {
        return Err(format!("gradients disagree with finite differences: {check:?}").into());
    }
    Ok(())
}

/// A student learns to imitate the teacher's weights on generated data; returns the first
/// and last losses.
fn train(teacher: &[Tensor], eps: f32) -> Result<(f32, f32), Box<dyn std::error::Error>> {
    let (input, out) = (teacher[0].dims()[0], teacher[0].dims()[1]);
    let mut params = Params::new();
    let w = params.add("w", random(&[input, out], 0.5, 0.0, 10)?);
    let gamma = params.add("gamma", Tensor::full(&[out], 1.0)?);
    let beta = params.add("beta", Tensor::full(&[out], 0.0)?);
    let mut grads = Grads::zeros_like(&params);
    let mut optimizer = Optimizer::Adam(Adam::new(0.01));
    let mut ws = Workspace::new();
    let (mut first, mut last) = (0.0, 0.0);
    for step in 0..300 {
        let x = random(&[16, 4, input], 1.0, 0.0, 1000 + step)?;
        let target = {
            let empty = Params::new();
            let mut tape = Tape::new(&empty, &mut ws).without_grad();
            let xv = tape.input(&x);
            let t: Vec<Var> = teacher.iter().map(|t| tape.input(t)).collect();
            let y = model(&mut tape, xv, [t[0], t[1], t[2]], eps)?;
            tape.value(y).clone()
        };
        let loss = {
            let mut tape = Tape::new(&params, &mut ws);
            let xv = tape.input(&x);
            let vars = [tape.param(w), tape.param(gamma), tape.param(beta)];
            let y = model(&mut tape, xv, vars, eps)?;
            let t = tape.input(&target);
            let e = tape.sub(y, t)?;
            let e2 = tape.mul(e, e)?;
            let loss = tape.mean(e2);
            tape.backward(loss, &mut grads)?;
            tape.value(loss).data()[0]
        };
        optimizer.step(&mut params, &grads);
        if step == 0 {
            first = loss;
        }
        last = loss;
        if step % 50 == 0 || step == 299 {
            println!("step {step:>3}: loss {loss:.6}");
        }
    }
    Ok((first, last))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("reference/layer_norm.json"))?;
    let eps = reference["eps"].as_f64().ok_or("no eps")? as f32;
    let teacher = check_reference(&reference, eps)?;
    check_gradients(eps)?;
    let (first, last) = train(&teacher, eps)?;
    if last.is_nan() || last >= 0.2 * first {
        return Err(format!("the loss did not fall enough: {first} → {last}").into());
    }
    println!("layer norm: loss {first:.4} → {last:.4}");
    Ok(())
}
