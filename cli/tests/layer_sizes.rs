//! Layer specs as hostile input (issue 25 item 4, issue 30 items 16–18 and 25): every size a
//! layer spec implies — its tensors, the values it keeps per sample, the shapes it gives — is
//! computed with checked arithmetic from the spec and bounded before anything is allocated,
//! whichever kind of layer says it; bad layer settings stop with exit 2 and one clear line.

mod common;
use common::{nabla_in, temp_dir};

use std::path::{Path, PathBuf};
use std::process::Output;

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 2 with `needle` in a one-line message, and no panic.
fn refused(out: &Output, needle: &str) {
    let e = err(out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains(needle), "expected {needle:?} in: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

/// Rewrites a safetensors file's header with `edit`, keeping the tensor bytes.
fn edit_header(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// Edits the model spec inside a model file's metadata.
fn edit_spec(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    edit_header(path, |h| {
        let entry = &mut h["__metadata__"]["spec"];
        let mut v: serde_json::Value = serde_json::from_str(entry.as_str().unwrap()).unwrap();
        edit(&mut v);
        *entry = serde_json::Value::String(v.to_string());
    });
}

/// The built-in digits written out as a CSV file in `dir`.
fn digits_csv(dir: &Path) -> PathBuf {
    let path = dir.join("digits.csv");
    std::fs::write(&path, nabla::data::builtin::DIGITS_CSV).unwrap();
    path
}

/// A one-epoch CNN on the built-in digits (1×8×8), saved as `dir/cnn.safetensors`.
fn small_cnn(dir: &Path) -> PathBuf {
    let out = nabla_in(
        dir,
        &[
            "train",
            "--layers",
            "conv 2 3 pad 1, relu, globalavgpool, flatten, dense 10",
            "--image-shape",
            "1x8x8",
            "--epochs",
            "1",
            "--quiet",
            "--save",
            "cnn.safetensors",
        ],
    );
    assert!(out.status.success(), "{}", err(&out));
    dir.join("cnn.safetensors")
}

/// Every command that reads a model refuses `model` with exit 2 and `needle`, quickly and
/// without allocating what the spec asks for.
fn every_command_refuses(dir: &Path, model: &str, needle: &str) {
    let data = digits_csv(dir);
    let data = data.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["inspect", "--model", model],
        &["predict", "--model", model, "--data", data],
        &["evaluate", "--model", model, "--data", data],
        &[
            "export", "--model", model, "--format", "onnx", "--out", "x.onnx",
        ],
        &["explain", "--model", model, "--data", data],
    ];
    for args in commands {
        let out = nabla_in(dir, args);
        refused(&out, needle);
    }
}

// Issue 25 item 4: the tensors of a convolution count in the size check before allocation
// (they counted 0, so a crafted kernel of 2^30 × 2^30 went to the allocator).
#[test]
fn a_crafted_conv_model_is_refused_before_allocation() {
    let dir = temp_dir("crafted-conv");
    let model = small_cnn(&dir);
    std::fs::copy(&model, dir.join("huge.safetensors")).unwrap();
    edit_spec(&dir.join("huge.safetensors"), |spec| {
        // Same output shape (2×9×9 → pooled to 2), a weight of 2·1·2^60 values.
        spec["layers"][0]["kernel"] = (1u64 << 30).into();
        spec["layers"][0]["padding"] = (1u64 << 29).into();
    });
    every_command_refuses(&dir, "huge.safetensors", "bytes of tensors");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `nabla train` on the built-in digits with `args` after it, under `limit` (NABLA_MEMORY_LIMIT).
fn train(dir: &Path, limit: Option<&str>, args: &[&str]) -> Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_nabla"));
    c.current_dir(dir).arg("train").args(args);
    c.args(["--epochs", "1", "--no-save", "--quiet"]);
    if let Some(limit) = limit {
        c.env("NABLA_MEMORY_LIMIT", limit);
    }
    c.output().unwrap()
}

// Issue 30 item 16: the estimate comes from the layer specs, for --layers too, and honours
// NABLA_MEMORY_LIMIT (these reached 23 GB, or aborted allocating 256 GB).
#[test]
fn layer_lists_are_weighed_before_allocation() {
    let dir = temp_dir("weighed");
    let out = train(
        &dir,
        Some("8G"),
        &["--layers", "dense 65536, dense 65536, dense 10"],
    );
    refused(
        &out,
        "--layers \"dense 65536, dense 65536, dense 10\" needs ~",
    );
    assert!(err(&out).contains("are available"), "{}", err(&out));
    let out = train(&dir, None, &["--layers", "dense 1000000000, dense 10"]);
    refused(&out, "needs ~");
    // A padded convolution's activations: small weights, a 200,005 × 200,005 image per row.
    let image = ["--image-shape", "1x8x8"];
    let out = train(
        &dir,
        None,
        &[
            &["--layers", "conv 4 3 pad 100000, flatten, dense 10"][..],
            &image[..],
        ]
        .concat(),
    );
    refused(&out, "needs ~");
    // The limit is honoured for a network that fits the machine.
    let out = train(
        &dir,
        Some("512K"),
        &["--layers", "dense 512, relu, dense 10"],
    );
    refused(&out, "524 KB are available");
    let _ = std::fs::remove_dir_all(&dir);
}

// Issue 30 item 16: lr-find weighs its network too.
#[test]
fn lr_find_weighs_its_network() {
    let dir = temp_dir("lr-find");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nabla"))
        .current_dir(&dir)
        .env("NABLA_MEMORY_LIMIT", "4G")
        .args(["lr-find", "--hidden", "20000,20000"])
        .output()
        .unwrap();
    refused(&out, "--hidden 20000,20000 needs ~");
    let _ = std::fs::remove_dir_all(&dir);
}

// Issue 30 item 17: a crafted spec of small tensors cannot ask for huge activations: a 3×3
// convolution padded by 10,000 (a 2×20,007×20,007 image per row) is refused before any row
// runs, by every command that runs rows.
#[test]
fn a_crafted_padding_is_refused_before_rows_run() {
    let dir = temp_dir("padding");
    let model = small_cnn(&dir);
    std::fs::copy(&model, dir.join("padded.safetensors")).unwrap();
    edit_spec(&dir.join("padded.safetensors"), |spec| {
        spec["layers"][0]["padding"] = 10_000.into();
    });
    let data = digits_csv(&dir);
    let data = data.to_str().unwrap();
    for command in ["predict", "evaluate", "explain"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nabla"))
            .current_dir(&dir)
            .env("NABLA_MEMORY_LIMIT", "500M")
            .args([command, "--model", "padded.safetensors", "--data", data])
            .output()
            .unwrap();
        refused(&out, "for the values of 1 row(s) at a time");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// Issue 30 item 18: sizes are checked arithmetic: an image shape whose product wraps to 64,
// a padding of 2^64 − 1.
#[test]
fn wrapping_shapes_and_paddings_are_refused() {
    let dir = temp_dir("wrap");
    for layers in [
        "conv 4 1, flatten, dense 10",
        "maxpool 1, flatten, dense 10",
    ] {
        let out = train(
            &dir,
            None,
            &[
                "--image-shape",
                "64x288230376151711745x1",
                "--layers",
                layers,
            ],
        );
        refused(&out, "overflows");
    }
    let out = train(
        &dir,
        None,
        &[
            "--image-shape",
            "1x8x8",
            "--layers",
            "conv 4 3 pad 18446744073709551615, flatten, dense 10",
        ],
    );
    refused(&out, "padding of 0 to 2^53");
    let _ = std::fs::remove_dir_all(&dir);
}

// Issue 30 item 25: layer settings are validated like flags.
#[test]
fn bad_layer_settings_stop_with_exit_2() {
    let dir = temp_dir("settings");
    let cases = [
        (
            "dense 16, batchnorm eps -1, relu, dense 10",
            "eps must be a finite number above 0",
        ),
        (
            "dense 16, batchnorm eps 0, relu, dense 10",
            "eps must be a finite number above 0",
        ),
        (
            "dense 16, batchnorm momentum nan, relu, dense 10",
            "momentum must be in [0, 1]",
        ),
        (
            "dense 16, leaky_relu inf, dense 10",
            "slope must be a finite number",
        ),
        (
            "dense 16, leaky_relu nan, dense 10",
            "slope must be a finite number",
        ),
    ];
    for (layers, needle) in cases {
        let out = train(&dir, None, &["--layers", layers]);
        refused(&out, needle);
    }
    let out = train(
        &dir,
        None,
        &[
            "--image-shape",
            "1x8x8",
            "--layers",
            "conv 4 3 pad 1 pad 2, flatten, dense 10",
        ],
    );
    refused(&out, "option `pad` is given twice");
    let out = train(
        &dir,
        None,
        &[
            "--image-shape",
            "1x8x8",
            "--layers",
            "conv 4 3 pad 1 padding 1, flatten, dense 10",
        ],
    );
    refused(&out, "is given twice");
    let _ = std::fs::remove_dir_all(&dir);
}

// Issue 30 item 16: a checkpoint whose stored layers are huge is refused before anything of
// that size is allocated (the spec is weighed against the file before --resume builds it).
#[test]
fn a_checkpoint_with_huge_stored_layers_is_refused_before_allocation() {
    let dir = temp_dir("huge-checkpoint");
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--checkpoint-dir",
            "ck",
            "--no-save",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", err(&out));
    edit_spec(&dir.join("ck/epoch-00001.safetensors"), |spec| {
        spec["layers"] = serde_json::json!([
            {"type": "linear", "in": 64, "out": 65536}, {"type": "relu"},
            {"type": "linear", "in": 65536, "out": 65536}, {"type": "relu"},
            {"type": "linear", "in": 65536, "out": 10}
        ]);
    });
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nabla"))
        .current_dir(&dir)
        .args(["train", "--resume", "ck", "--epochs", "2", "--no-save"])
        .env("NABLA_MEMORY_LIMIT", "8G")
        .output()
        .unwrap();
    refused(&out, "the spec's layers need 17199792168 bytes of tensors");
    assert!(
        started.elapsed().as_secs() < 20,
        "refused late: {:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
