//! Single-sample prediction latency of a saved 784-256-128-10 ReLU network through
//! `nabla::io::Model::predict_into` (preprocess, forward, softmax): the median over many calls, measured
//! with `std::time`. Run: `cargo bench --bench inference_latency`.

use std::time::Instant;

use nabla::data::preprocess::Preprocess;
use nabla::io::Model;
use nabla::kernels::activation::Activation;
use nabla::nn::{ModelSpec, Network};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = ModelSpec::mlp(784, &[256, 128], Activation::Relu, 10);
    let net = Network::from_spec(&spec, 1)?;
    let pre = Preprocess::pixels(784, spec.classes.clone());
    let path = std::env::temp_dir().join(format!("nabla-bench-{}.safetensors", std::process::id()));
    nabla::io::save(&path, &net, &pre, &serde_json::Value::Null)?;
    let model = Model::load(&path)?;
    std::fs::remove_file(&path)?;
    let mut scratch = nabla::io::Scratch::new();
    let x: Vec<f32> = (0..784).map(|i| (i * 37 % 256) as f32).collect();
    for _ in 0..1000 {
        std::hint::black_box(model.predict_into(std::hint::black_box(&x), 1, &mut scratch)?);
    }
    let mut times = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        std::hint::black_box(model.predict_into(std::hint::black_box(&x), 1, &mut scratch)?);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let q = |f: f64| times[((times.len() - 1) as f64 * f) as usize];
    println!(
        "784-256-128-10 single-sample predict: median {:.2} µs, p10 {:.2} µs, p90 {:.2} µs, p99 {:.2} µs ({} calls)",
        q(0.5),
        q(0.1),
        q(0.9),
        q(0.99),
        times.len()
    );
    let batch: Vec<f32> = x.iter().cycle().take(784 * 32).copied().collect();
    for _ in 0..100 {
        std::hint::black_box(model.predict_into(std::hint::black_box(&batch), 32, &mut scratch)?);
    }
    let mut times = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let t = Instant::now();
        std::hint::black_box(model.predict_into(std::hint::black_box(&batch), 32, &mut scratch)?);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "784-256-128-10 batch of 32: median {median:.1} µs per call, {:.2} µs per sample",
        median / 32.0
    );
    Ok(())
}
