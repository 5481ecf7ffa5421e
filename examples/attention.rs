//! A causal multi-head self-attention written outside the library, from nabla's public ops
//! only (batched matmul, reshape, permute, transpose, masked_fill, softmax along an axis), as a
//! user would write it:
//!
//! `y = concat_h(softmax(mask(q_h·k_hᵀ / √d)) · v_h) · Wo`, with `q = x·Wq`, `k = x·Wk`,
//! `v = x·Wv` split into heads, `x` of shape `[batch, time, model]`.
//!
//! It is checked three ways: its output matches NumPy's on the same weights to 1e-5
//! (examples/reference/attention.py made attention.json), its gradients match finite
//! differences, and a student trained with Adam to imitate the reference weights (the
//! teacher) on generated sequences sees its loss fall. Any failure exits non-zero.
//! `cargo run --release --example attention`

use nabla::prelude::*;
use nabla::{Grads, Params, Workspace, gradcheck};

/// The projection matrices, `[model, model]` each, as vars on a tape.
struct Weights {
    wq: Var,
    wk: Var,
    wv: Var,
    wo: Var,
}

/// `[batch, time, model]` → `[batch, heads, time, model / heads]`.
fn heads_first(tape: &mut Tape, z: Var, heads: usize) -> Result<Var, NablaError> {
    let [b, t, c] = tape.dims(z)[..] else {
        return Err(NablaError::Shape(format!("attention: {:?}", tape.dims(z))));
    };
    let z = tape.reshape(z, &[b, t, heads, c / heads])?;
    tape.permute(z, &[0, 2, 1, 3])
}

/// 1 above the diagonal (a position may not look ahead), 0 elsewhere: `[time, time]`.
fn causal_mask(time: usize) -> Result<Tensor, NablaError> {
    let data = (0..time * time)
        .map(|i| if i % time > i / time { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_shape(&[time, time], data)
}

/// Causal multi-head self-attention of `x` (`[batch, time, model]`).
fn attention(tape: &mut Tape, x: Var, w: &Weights, heads: usize) -> Result<Var, NablaError> {
    let [b, t, c] = tape.dims(x)[..] else {
        return Err(NablaError::Shape(format!("attention: {:?}", tape.dims(x))));
    };
    let d = c / heads;
    let q = tape.matmul(x, w.wq)?;
    let q = heads_first(tape, q, heads)?;
    let k = tape.matmul(x, w.wk)?;
    let k = heads_first(tape, k, heads)?;
    let v = tape.matmul(x, w.wv)?;
    let v = heads_first(tape, v, heads)?;
    let kt = tape.transpose(k, -2, -1)?;
    let scores = tape.matmul(q, kt)?; // [b, heads, t, t]
    let scores = tape.scale(scores, 1.0 / (d as f32).sqrt());
    let mask = tape.input(&causal_mask(t)?);
    let scores = tape.masked_fill(scores, mask, f32::NEG_INFINITY)?;
    let p = tape.softmax_axis(scores, -1)?;
    let o = tape.matmul(p, v)?; // [b, heads, t, d]
    let o = tape.permute(o, &[0, 2, 1, 3])?;
    let o = tape.reshape(o, &[b, t, c])?;
    tape.matmul(o, w.wo)
}

/// A tensor from the reference file's `{"shape": [...], "data": [...]}`.
fn tensor(v: &serde_json::Value) -> Result<Tensor, Box<dyn std::error::Error>> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    let data: Vec<f32> = serde_json::from_value(v["data"].clone())?;
    Ok(Tensor::from_shape(&shape, data)?)
}

/// Values in `[-scale, scale)` from a small LCG (no dependency), seeded.
fn random(shape: &[usize], scale: f32, seed: u64) -> Result<Tensor, NablaError> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_shape(shape, data)
}

const NAMES: [&str; 4] = ["wq", "wk", "wv", "wo"];

/// The output on the reference weights and input, against NumPy's; returns the weights.
fn check_reference(
    reference: &serde_json::Value,
) -> Result<Vec<Tensor>, Box<dyn std::error::Error>> {
    let heads = reference["heads"].as_u64().ok_or("no heads")? as usize;
    let weights: Vec<Tensor> = NAMES
        .iter()
        .map(|n| tensor(&reference["weights"][n]))
        .collect::<Result<_, _>>()?;
    let want = tensor(&reference["output"])?;
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws).without_grad();
    let x = tape.input(&tensor(&reference["x"])?);
    let v: Vec<Var> = weights.iter().map(|t| tape.input(t)).collect();
    let w = Weights {
        wq: v[0],
        wk: v[1],
        wv: v[2],
        wo: v[3],
    };
    let y = attention(&mut tape, x, &w, heads)?;
    let got = tape.value(y);
    let worst = got
        .data()
        .iter()
        .zip(want.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "NumPy reference {:?}: largest difference {worst:.2e}",
        got.dims()
    );
    if got.dims() != want.dims() || worst > 1e-5 {
        return Err(format!(
            "the output differs from NumPy's by {worst} (shape {:?})",
            got.dims()
        )
        .into());
    }
    Ok(weights)
}

/// Finite differences on a small instance: every input and weight element.
fn check_gradients() -> Result<(), Box<dyn std::error::Error>> {
    let inputs = [
        random(&[2, 3, 4], 1.0, 1)?,
        random(&[4, 4], 0.5, 2)?,
        random(&[4, 4], 0.5, 3)?,
        random(&[4, 4], 0.5, 4)?,
        random(&[4, 4], 0.5, 5)?,
    ];
    let weights = random(&[2, 3, 4], 1.0, 6)?;
    let check = gradcheck::check(&inputs, 1e-3, |tape, v| {
        let w = Weights {
            wq: v[1],
            wk: v[2],
            wv: v[3],
            wo: v[4],
        };
        let y = attention(tape, v[0], &w, 2)?;
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

/// A student learns to imitate the teacher's weights on generated sequences; returns the
/// first and last losses.
fn train(teacher: &[Tensor], heads: usize) -> Result<(f32, f32), Box<dyn std::error::Error>> {
    let c = teacher[0].dims()[0];
    let (batch, time) = (8, 6);
    let mut params = Params::new();
    let ids: Vec<_> = NAMES
        .iter()
        .zip(10..)
        .map(|(n, seed)| Ok(params.add(*n, random(&[c, c], 0.5, seed)?)))
        .collect::<Result<_, NablaError>>()?;
    let mut grads = Grads::zeros_like(&params);
    let mut optimizer = Optimizer::Adam(Adam::new(0.01));
    let mut ws = Workspace::new();
    let (mut first, mut last) = (0.0, 0.0);
    for step in 0..300 {
        let x = random(&[batch, time, c], 1.0, 1000 + step)?;
        let target = {
            let empty = Params::new();
            let mut tape = Tape::new(&empty, &mut ws).without_grad();
            let xv = tape.input(&x);
            let v: Vec<Var> = teacher.iter().map(|t| tape.input(t)).collect();
            let w = Weights {
                wq: v[0],
                wk: v[1],
                wv: v[2],
                wo: v[3],
            };
            let y = attention(&mut tape, xv, &w, heads)?;
            tape.value(y).clone()
        };
        let loss = {
            let mut tape = Tape::new(&params, &mut ws);
            let xv = tape.input(&x);
            let v: Vec<Var> = ids.iter().map(|&id| tape.param(id)).collect();
            let w = Weights {
                wq: v[0],
                wk: v[1],
                wv: v[2],
                wo: v[3],
            };
            let y = attention(&mut tape, xv, &w, heads)?;
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
        serde_json::from_str(include_str!("reference/attention.json"))?;
    let heads = reference["heads"].as_u64().ok_or("no heads")? as usize;
    let teacher = check_reference(&reference)?;
    check_gradients()?;
    let (first, last) = train(&teacher, heads)?;
    if last.is_nan() || last >= 0.2 * first {
        return Err(format!("the loss did not fall enough: {first} → {last}").into());
    }
    println!("causal self-attention: loss {first:.4} → {last:.4}");
    Ok(())
}
