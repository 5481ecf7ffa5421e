//! `nabla train` end to end: accuracy on the built-in data, the metrics file's contract,
//! reproducibility, and clean one-line errors for bad usage and bad files.

mod common;
use common::{idx, nabla, temp_dir};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn metrics(args: &[&str], dir: &Path, name: &str) -> serde_json::Value {
    let path = dir.join(name);
    let mut all = vec!["train", "--metrics-out", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = nabla(&all);
    assert!(
        out.status.success(),
        "nabla {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The metrics with every timing removed.
fn without_timings(mut m: serde_json::Value) -> serde_json::Value {
    let obj = m.as_object_mut().unwrap();
    obj.remove("train_seconds");
    obj.remove("inference_seconds");
    obj.remove("threads");
    for e in obj["epochs"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("seconds");
    }
    m
}

#[test]
fn default_run_learns_the_builtin_digits_and_reports_the_contract_fields() {
    let dir = temp_dir("default");
    let m = metrics(&[], &dir, "m.json");
    for key in [
        "dataset",
        "task",
        "train_samples",
        "test_samples",
        "batch_size",
        "iterations_per_epoch",
        "hidden",
        "activation",
        "optimizer",
        "threads",
        "epochs",
        "test_accuracy",
        "test_loss",
        "train_seconds",
    ] {
        assert!(m.get(key).is_some(), "metrics lack {key}");
    }
    assert_eq!(m["task"], "classification");
    // Small data: the defaults hold out a validation split, so train + val + test = 1797.
    assert_eq!(
        m["train_samples"].as_u64().unwrap()
            + m["val_samples"].as_u64().unwrap()
            + m["test_samples"].as_u64().unwrap(),
        1797
    );
    let (n, b) = (
        m["train_samples"].as_u64().unwrap(),
        m["batch_size"].as_u64().unwrap(),
    );
    assert_eq!(m["iterations_per_epoch"].as_u64().unwrap(), n.div_ceil(b));
    assert!(
        m["hidden"].as_array().unwrap().len() >= 2,
        "default network is not deep"
    );
    let epochs = m["epochs"].as_array().unwrap();
    assert!(!epochs.is_empty());
    for (i, e) in epochs.iter().enumerate() {
        assert_eq!(e["epoch"].as_u64().unwrap(), i as u64 + 1);
        for k in [
            "train_loss",
            "train_accuracy",
            "test_loss",
            "test_accuracy",
            "seconds",
        ] {
            assert!(e[k].as_f64().unwrap().is_finite(), "epoch {i} {k}");
        }
        let acc = e["test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    let sum: f64 = epochs.iter().map(|e| e["seconds"].as_f64().unwrap()).sum();
    assert!((sum - m["train_seconds"].as_f64().unwrap()).abs() < 1e-9);
    let acc = m["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.97, "default run reached only {acc}");
    // Training loss falls: the network learns.
    let first = epochs[0]["train_loss"].as_f64().unwrap();
    let last = epochs.last().unwrap()["train_loss"].as_f64().unwrap();
    assert!(last < first / 5.0, "train loss {first} -> {last}");
}

#[test]
fn sigmoid_learns_with_its_defaults() {
    let dir = temp_dir("sigmoid");
    let m = metrics(&["--activation", "sigmoid"], &dir, "m.json");
    assert_eq!(m["activation"], "sigmoid");
    let acc = m["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "sigmoid reached only {acc}");
}

#[test]
fn same_seed_gives_identical_metrics_and_thread_count_does_not_matter() {
    let dir = temp_dir("seed");
    let args = ["--epochs", "3", "--seed", "7", "--batch-size", "200"];
    let a = metrics(&args, &dir, "a.json");
    let b = metrics(&args, &dir, "b.json");
    assert_eq!(without_timings(a.clone()), without_timings(b));
    let mut one = args.to_vec();
    one.extend_from_slice(&["--threads", "1"]);
    let c = metrics(&one, &dir, "c.json");
    let mut two = args.to_vec();
    two.extend_from_slice(&["--threads", "2"]);
    let d = metrics(&two, &dir, "d.json");
    assert_eq!(without_timings(c), without_timings(d.clone()));
    let other = metrics(
        &["--epochs", "3", "--seed", "8", "--batch-size", "200"],
        &dir,
        "e.json",
    );
    assert_ne!(without_timings(other), without_timings(d));
}

#[test]
fn sgd_and_every_activation_run() {
    let dir = temp_dir("variants");
    for act in ["relu", "tanh", "leaky-relu"] {
        let m = metrics(
            &[
                "--optimizer",
                "sgd",
                "--activation",
                act,
                "--epochs",
                "5",
                "--hidden",
                "32,16,8",
            ],
            &dir,
            &format!("{act}.json"),
        );
        assert_eq!(m["optimizer"], "sgd");
        assert!(m["test_accuracy"].as_f64().unwrap() > 0.8, "{act}: {m}");
    }
}

fn assert_clean_failure(args: &[&str], expect_in_message: &str) {
    let out = nabla(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(
        stderr.contains(expect_in_message),
        "{args:?}: {stderr:?} does not mention {expect_in_message:?}"
    );
}

#[test]
fn bad_usage_is_one_clear_line_and_exit_code_2() {
    assert_clean_failure(&["train", "--bogus"], "--bogus");
    assert_clean_failure(&["train", "--batch-size", "0"], "--batch-size");
    assert_clean_failure(&["train", "--hidden", "0"], "at least 1 neuron");
    assert_clean_failure(&["train", "--hidden", "12,x"], "layer sizes");
    assert_clean_failure(&["train", "--test-split", "1.5"], "[0, 1)");
    assert_clean_failure(&["train", "--lr", "0"], "positive");
    assert_clean_failure(&["train", "--lr=-1"], "positive");
    assert_clean_failure(&["train", "--data", "/no/such/folder"], "/no/such/folder");
    assert_clean_failure(&["frobnicate"], "frobnicate");
}

/// A valid 4-image MNIST-style folder (2×2 pixels), optionally with one file replaced.
fn idx_folder(name: &str, replace: Option<(&str, Vec<u8>)>) -> PathBuf {
    let dir = temp_dir(name);
    let files = [
        (
            "train-images-idx3-ubyte",
            idx(
                0x803,
                &[4, 2, 2],
                &[0, 255, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
            ),
        ),
        ("train-labels-idx1-ubyte", idx(0x801, &[4], &[0, 1, 0, 1])),
        (
            "t10k-images-idx3-ubyte",
            idx(0x803, &[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]),
        ),
        ("t10k-labels-idx1-ubyte", idx(0x801, &[2], &[1, 0])),
    ];
    for (file, bytes) in files {
        let bytes = match &replace {
            Some((r, b)) if *r == file => b.clone(),
            _ => bytes,
        };
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

#[test]
fn a_small_valid_idx_folder_trains() {
    let dir = idx_folder("idx-ok", None);
    let m = metrics(
        &["--data", dir.to_str().unwrap(), "--epochs", "2"],
        &dir,
        "m.json",
    );
    assert_eq!(m["train_samples"], 4);
    assert_eq!(m["test_samples"], 2);
}

#[test]
fn bad_idx_files_fail_cleanly() {
    let cases = [
        (
            "idx-magic",
            "train-images-idx3-ubyte",
            idx(0x804, &[4, 2, 2], &[0; 16]),
            "magic number",
        ),
        (
            "idx-short",
            "train-images-idx3-ubyte",
            idx(0x803, &[4, 2, 2], &[0; 10]),
            "cut short",
        ),
        (
            "idx-count",
            "train-labels-idx1-ubyte",
            idx(0x801, &[3], &[0, 1, 0]),
            "3 labels",
        ),
        (
            "idx-huge",
            "train-images-idx3-ubyte",
            idx(0x803, &[u32::MAX, u32::MAX, u32::MAX], &[]),
            "more than",
        ),
        (
            "idx-empty",
            "t10k-labels-idx1-ubyte",
            Vec::new(),
            "empty file",
        ),
    ];
    for (name, file, bytes, message) in cases {
        let dir = idx_folder(name, Some((file, bytes)));
        assert_clean_failure(&["train", "--data", dir.to_str().unwrap()], message);
        assert_clean_failure(&["train", "--data", dir.to_str().unwrap()], file);
    }
}

/// Runs nabla with its standard output closed by the reader before anything is written.
fn with_reader_gone(args: &[&str], dir: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_reader_that_goes_away_neither_crashes_nor_loses_the_model() {
    // `nabla train | head -1`: training goes on to the end and saves; no panic, no error.
    let dir = temp_dir("broken-pipe");
    let out = with_reader_gone(&["train", "--epochs", "2", "--run-dir", "run"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
    assert!(dir.join("run/model.safetensors").is_file());
    // Commands whose output is the product stop quietly.
    std::fs::write(dir.join("d.csv"), include_str!("../../data/digits.csv")).unwrap();
    let model = dir.join("run/model.safetensors");
    let m = model.to_str().unwrap();
    for args in [
        &["predict", "--model", m, "--data", "d.csv"][..],
        &["inspect", "--model", m][..],
        &["explain", "--model", m, "--format", "json", "--limit", "64"][..],
        &["explain"][..],
    ] {
        let out = with_reader_gone(args, &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
