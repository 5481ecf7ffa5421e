//! Models that are not a flat list of layers (issue 25 item 4): a `residual(...)` block of
//! built-in layers goes through every command that reads a model — inspect, predict, evaluate,
//! ONNX export (checked by ONNX Runtime in .ci/run) and explain — and its file is bounded
//! before allocation like any other.

mod common;
use common::{err, nabla_in, temp_dir};

use std::path::{Path, PathBuf};

/// The built-in digits written out as a CSV file in `dir`.
fn digits_csv(dir: &Path) -> PathBuf {
    let path = dir.join("digits.csv");
    std::fs::write(&path, nabla::data::builtin::DIGITS_CSV).unwrap();
    path
}

/// Trains `layers` on the built-in digits for 3 epochs and saves `dir/name`.
fn train(dir: &Path, layers: &str, extra: &[&str], name: &str) -> PathBuf {
    let mut args = vec!["train", "--layers", layers, "--epochs", "3", "--seed", "5"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--quiet", "--save", name]);
    let out = nabla_in(dir, &args);
    assert!(out.status.success(), "{}", err(&out));
    dir.join(name)
}

/// The JSON header of a safetensors file.
fn header(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

/// Every command that reads a model runs on `model` (exit 0, no panic), and `predict` gives
/// one row per sample.
fn every_command_runs(dir: &Path, model: &str) {
    let data = digits_csv(dir);
    let data = data.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["inspect", "--model", model],
        &[
            "predict", "--model", model, "--data", data, "--out", "p.csv",
        ],
        &["evaluate", "--model", model, "--data", data, "--json"],
        &["export", "--model", model, "--out", "m.onnx"],
        &["explain", "--model", model, "--data", data, "--sample", "3"],
    ];
    for args in commands {
        let out = nabla_in(dir, args);
        let e = err(&out);
        assert!(out.status.success(), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    let predictions = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 1 + 1797);
    std::fs::remove_file(dir.join("p.csv")).unwrap();
    std::fs::remove_file(dir.join("m.onnx")).unwrap();
}

#[test]
fn a_residual_mlp_goes_through_every_command() {
    let dir = temp_dir("residual-mlp");
    let layers = "dense 32, relu, residual(dense 32, batchnorm, relu, dropout 0.1, dense 32), \
                  relu, dense 10";
    let model = train(&dir, layers, &[], "res.safetensors");
    let h = header(&model);
    assert_eq!(h["__metadata__"]["format_version"], "3");
    for name in [
        "layers.2.block.0.weight",
        "layers.2.block.1.running_var",
        "layers.2.block.4.bias",
    ] {
        assert!(h.get(name).is_some(), "no {name} in {h}");
    }
    let spec: serde_json::Value =
        serde_json::from_str(h["__metadata__"]["spec"].as_str().unwrap()).unwrap();
    assert_eq!(spec["layers"][2]["type"], "residual");
    assert_eq!(spec["layers"][2]["layers"][0]["type"], "linear");
    let out = nabla_in(&dir, &["inspect", "--model", "res.safetensors"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("residual x + f(x)"), "{text}");
    every_command_runs(&dir, "res.safetensors");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sum_shows_in_explain_with_its_skip() {
    let dir = temp_dir("residual-explain");
    let layers = "dense 16, relu, residual(dense 16, relu, dense 16), dense 10";
    train(&dir, layers, &[], "res.safetensors");
    let out = nabla_in(
        &dir,
        &["explain", "--model", "res.safetensors", "--sample", "5"],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", err(&out));
    assert!(text.contains("r1 = h1 + z3"), "{text}");
    assert!(text.contains("∂L/∂z3 = ∂L/∂r1"), "{text}");
    assert!(text.contains("+ ∂L/∂r1 (the skip)"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_residual_cnn_goes_through_every_command() {
    let dir = temp_dir("residual-cnn");
    let layers = "conv 4 3 pad 1, relu, residual(conv 4 3 pad 1, batchnorm, relu, conv 4 3 pad 1), \
                  relu, maxpool 2, flatten, dense 10";
    train(&dir, layers, &["--image-shape", "1x8x8"], "cnn.safetensors");
    every_command_runs(&dir, "cnn.safetensors");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_block_that_changes_the_shape_is_refused() {
    let dir = temp_dir("residual-shape");
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--layers",
            "dense 32, residual(dense 16, relu), dense 10",
            "--no-save",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    let e = err(&out);
    assert!(
        e.contains("a residual block must give back the shape it reads (32)"),
        "{e}"
    );
    assert!(e.contains("its layers give 16"), "{e}");
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--layers",
            "dense 32, residual(dense 32, relu",
            "--no-save",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("a `(` without its `)`"), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

// The size check before allocation reaches the layers inside a block.
#[test]
fn a_crafted_residual_model_is_refused_before_allocation() {
    let dir = temp_dir("residual-crafted");
    let layers = "dense 16, relu, residual(dense 16, relu, dense 16), dense 10";
    let model = train(&dir, layers, &[], "res.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let entry = &mut h["__metadata__"]["spec"];
    let mut spec: serde_json::Value = serde_json::from_str(entry.as_str().unwrap()).unwrap();
    // A block of 2^31 hidden units: 2 × 16 × 2^31 weights, 2^38 bytes the file does not hold.
    spec["layers"][2]["layers"][0]["out"] = (1u64 << 31).into();
    spec["layers"][2]["layers"][2]["in"] = (1u64 << 31).into();
    *entry = serde_json::Value::String(spec.to_string());
    let text = serde_json::to_vec(&h).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(dir.join("huge.safetensors"), out).unwrap();
    let data = digits_csv(&dir);
    for args in [
        vec!["inspect", "--model", "huge.safetensors"],
        vec![
            "predict",
            "--model",
            "huge.safetensors",
            "--data",
            data.to_str().unwrap(),
        ],
    ] {
        let out = nabla_in(&dir, &args);
        let e = err(&out);
        assert_eq!(out.status.code(), Some(2), "{e}");
        assert!(e.contains("bytes of tensors"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
