//! Issue 14 end to end: only training and validation data choose anything (1), a finite
//! explosion is divergence (2), verdicts agree with their numbers (3, with unit tests over
//! synthetic histories in src/train/diagnosis.rs), small data trains well by default with
//! baselines beside the network (4), and `--test-split 0` means no test set (5).

mod common;
use common::{nabla, temp_dir};

use std::path::Path;
use std::process::Output;

/// Runs `nabla train --metrics-out DIR/NAME.json ARGS`; returns the output and the metrics
/// (`Null` when the run wrote none).
fn train(dir: &Path, name: &str, args: &[&str]) -> (Output, serde_json::Value) {
    let path = dir.join(format!("{name}.json"));
    let mut all = vec!["train", "--metrics-out", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = nabla(&all);
    let metrics = std::fs::read_to_string(&path)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (out, metrics)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn column(m: &serde_json::Value, key: &str) -> Vec<Option<f64>> {
    m["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[key].as_f64())
        .collect()
}

/// The epoch (from 1) with the lowest validation loss.
fn best_val_epoch(m: &serde_json::Value) -> usize {
    let val: Vec<f64> = column(m, "val_loss")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let best = val.iter().copied().fold(f64::INFINITY, f64::min);
    val.iter().position(|&v| v == best).unwrap() + 1
}

#[test]
fn early_stopping_without_val_split_holds_out_validation_and_never_reads_the_test_set() {
    let dir = temp_dir("choose");
    let (out, m) = train(
        &dir,
        "auto",
        &[
            "--no-save",
            "--limit-train",
            "400",
            "--epochs",
            "80",
            "--early-stopping",
            "5",
            "--lr",
            "0.01",
        ],
    );
    let stdout = ok(&out);
    assert!(m["val_samples"].as_u64().unwrap() > 0, "{m}");
    assert!(
        stdout.contains(
            "validation samples (automatic: 20 % of the training rows, stratified, seed 42)"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("test loss)"), "{stdout}");
    let kept = m["kept_epoch"].as_u64().unwrap() as usize;
    assert_eq!(
        kept,
        best_val_epoch(&m),
        "the kept epoch is not the validation minimum"
    );
    assert_eq!(
        m["diagnosis"]["best_epoch"].as_u64().unwrap() as usize,
        kept
    );
    assert_eq!(m["diagnosis"]["monitored"], "val_loss");

    // --val-split 0: nothing may choose, so early stopping is off and says so.
    let (out, m) = train(
        &dir,
        "none",
        &[
            "--no-save",
            "--limit-train",
            "400",
            "--epochs",
            "12",
            "--early-stopping",
            "2",
            "--lr",
            "0.05",
            "--val-split",
            "0",
        ],
    );
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("so it is off"), "{stderr}");
    assert_eq!(m["stopped_early"], false);
    assert_eq!(m["kept_epoch"], 12);
    assert!(m["diagnosis"]["best_epoch"].is_null(), "{m}");
    assert_eq!(m["diagnosis"]["monitored"], "train_loss");
    assert!(
        stdout.contains("no validation set: nothing was chosen"),
        "{stdout}"
    );
}

#[test]
fn a_finite_explosion_stops_saves_the_last_good_weights_and_advises_a_lower_rate() {
    let dir = temp_dir("explode");
    let run = dir.join("run");
    let (out, m) = train(
        &dir,
        "m",
        &[
            "--run-dir",
            run.to_str().unwrap(),
            "--limit-train",
            "600",
            "--optimizer",
            "sgd",
            "--lr",
            "50",
            "--momentum",
            "0.9",
            "--epochs",
            "3",
            "--seed",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("training diverged"), "{stderr}");
    assert!(stderr.contains("--lr, e.g. 5 (now 50)"), "{stderr}");
    for text in [&stderr, &stdout] {
        assert!(!text.contains("raise the learning rate"), "{text}");
    }
    assert_eq!(m["diverged"], true);
    assert!(run.join("model.safetensors").is_file());
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("history.json")).unwrap()).unwrap();
    assert_eq!(history["diverged"], true);
    // The saved weights are the last good ones: finite and no worse than chance.
    let loss = m["test_loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss < 23.0, "{loss}");
}

#[test]
fn small_data_defaults_hold_out_validation_stop_early_and_flags_override() {
    let dir = temp_dir("small");
    let (out, m) = train(&dir, "default", &["--no-save"]);
    let stdout = ok(&out);
    let (train_n, val_n, test_n) = (
        m["train_samples"].as_u64().unwrap(),
        m["val_samples"].as_u64().unwrap(),
        m["test_samples"].as_u64().unwrap(),
    );
    assert_eq!(train_n + val_n + test_n, 1797);
    assert_eq!((train_n, val_n, test_n), (1151, 287, 359));
    assert!(
        stdout.contains("small data (1438 training rows < 10,000, no --epochs or --val-split)"),
        "{stdout}"
    );
    assert_eq!(m["early_stopping"], 20);
    assert_eq!(m["weight_decay"], 0.001, "1,000 to 10,000 rows");
    assert_eq!(
        m["kept_epoch"].as_u64().unwrap() as usize,
        best_val_epoch(&m)
    );
    assert!(
        m["test_accuracy"].as_f64().unwrap() >= 0.97,
        "{}",
        m["test_accuracy"]
    );
    for (name, b) in m["baselines"].as_object().unwrap() {
        for key in ["test_loss", "test_accuracy", "val_loss", "val_accuracy"] {
            assert!(b[key].as_f64().is_some(), "{name} lacks {key}: {b}");
        }
    }
    let trivial = m["baselines"]["trivial"]["test_accuracy"].as_f64().unwrap();
    assert!(
        (0.05..0.2).contains(&trivial),
        "majority class of 10: {trivial}"
    );

    // Every flag still overrides: --epochs alone means no split, no early stopping.
    let (out, m) = train(&dir, "epochs", &["--no-save", "--epochs", "2"]);
    ok(&out);
    assert!(m.get("val_samples").is_none(), "{m}");
    assert_eq!(
        m["train_samples"].as_u64().unwrap() + m["test_samples"].as_u64().unwrap(),
        1797
    );
    assert!(m["early_stopping"].is_null());
    assert_eq!(m["weight_decay"], 0.0);
    assert_eq!(m["kept_epoch"], 2);
    let (out, m) = train(
        &dir,
        "val",
        &[
            "--no-save",
            "--val-split",
            "0.1",
            "--early-stopping",
            "3",
            "--weight-decay",
            "0",
        ],
    );
    ok(&out);
    assert_eq!(
        m["val_samples"], 145,
        "10 % of each class of the 1438 training rows"
    );
    assert_eq!(m["weight_decay"], 0.0);
    assert_eq!(m["early_stopping"], 3);
}

/// 442 rows, 10 standard-normal columns, a linear target with heavy noise (like the diabetes
/// table: a straight line explains about half the variance).
fn noisy_linear_table(path: &Path) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut normal = move || {
        let (u, v) = (uniform().max(1e-12), uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let w = [0.9, -0.5, 0.3, 0.0, 0.7, -0.2, 0.0, 0.4, -0.6, 0.1];
    let mut csv = String::from("x0,x1,x2,x3,x4,x5,x6,x7,x8,x9,target\n");
    for _ in 0..442 {
        let x: Vec<f64> = (0..10).map(|_| normal()).collect();
        let y = 150.0 + 50.0 * x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + 60.0 * normal();
        for v in &x {
            csv += &format!("{v:.5},");
        }
        csv += &format!("{y:.3}\n");
    }
    std::fs::write(path, csv).unwrap();
}

#[test]
fn a_regression_table_gets_trivial_and_linear_baselines_and_is_told_when_the_line_wins() {
    let dir = temp_dir("baselines");
    let data = dir.join("linear.csv");
    noisy_linear_table(&data);
    let run = dir.join("run");
    let (out, m) = train(
        &dir,
        "m",
        &[
            "--data",
            data.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
        ],
    );
    let stdout = ok(&out);
    let b = &m["baselines"];
    for name in ["trivial", "linear"] {
        for key in [
            "test_loss",
            "test_mae",
            "test_rmse",
            "test_r2",
            "val_loss",
            "val_r2",
        ] {
            assert!(b[name][key].as_f64().is_some(), "{name} lacks {key}: {b}");
        }
    }
    assert!(b["trivial"]["test_r2"].as_f64().unwrap() < 0.05, "{b}");
    let linear_val = b["linear"]["val_r2"].as_f64().unwrap();
    assert!(linear_val > 0.3, "{b}");
    let net_val = m["val_r2"].as_f64().unwrap();
    let said = stdout.contains("the network is not better than a linear model");
    assert_eq!(
        said,
        net_val <= linear_val,
        "network {net_val} vs linear {linear_val}: {stdout}"
    );
    assert_eq!(m["diagnosis"]["baseline"].is_string(), said);
    assert!(
        stdout.contains("baselines (R², validation / test, same split): trivial"),
        "{stdout}"
    );
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("history.json")).unwrap()).unwrap();
    assert_eq!(&history["baselines"], b);
}

#[test]
fn test_split_zero_means_no_test_set_and_never_nan() {
    let dir = temp_dir("notest");
    let run = dir.join("run");
    let (out, m) = train(
        &dir,
        "m",
        &[
            "--test-split",
            "0",
            "--epochs",
            "2",
            "--run-dir",
            run.to_str().unwrap(),
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("no test set"), "{stdout}");
    assert!(
        !stdout.contains("NaN") && !stdout.contains("best epoch"),
        "{stdout}"
    );
    assert_eq!(m["test_samples"], 0);
    assert!(
        m["test_loss"].is_null() && m["test_accuracy"].is_null(),
        "{m}"
    );
    assert!(column(&m, "test_loss").iter().all(Option::is_none));
    assert!(m["baselines"]["trivial"]["test_accuracy"].is_null());
    let history = std::fs::read_to_string(run.join("history.json")).unwrap();
    assert!(!history.contains("NaN"));
    let svg = std::fs::read_to_string(run.join("learning_curves.svg")).unwrap();
    assert!(
        svg.contains("no test set"),
        "the plot does not say there is no test set"
    );
}
