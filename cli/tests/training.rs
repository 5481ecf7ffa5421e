//! Training features end to end through the CLI: schedules and warm-up, early stopping that
//! keeps the best epoch, the fit verdict, the divergence guard, regularisation, determinism
//! with dropout and batch norm across thread counts, and the learning-rate finder.

mod common;
use common::nabla;

use std::path::PathBuf;

fn metrics(name: &str, args: &[&str]) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("nabla-training-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("{name}.json"));
    let mut all = vec!["train", "--metrics-out", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = nabla(&all);
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn lrs(m: &serde_json::Value) -> Vec<f64> {
    m["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["learning_rate"].as_f64().unwrap())
        .collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1e-12))
}

#[test]
fn schedules_and_warmup_set_the_rate_of_each_epoch() {
    let m = metrics(
        "step",
        &[
            "--epochs",
            "5",
            "--lr",
            "0.01",
            "--schedule",
            "step",
            "--step-size",
            "2",
            "--gamma",
            "0.5",
        ],
    );
    assert!(
        close(&lrs(&m), &[0.01, 0.01, 0.005, 0.005, 0.0025]),
        "{:?}",
        lrs(&m)
    );
    let m = metrics(
        "warm",
        &[
            "--epochs",
            "4",
            "--lr",
            "0.01",
            "--schedule",
            "cosine",
            "--warmup",
            "2",
        ],
    );
    assert!(
        close(&lrs(&m), &[0.005, 0.01, 0.01, 0.005]),
        "{:?}",
        lrs(&m)
    );
    let m = metrics(
        "exp",
        &[
            "--epochs",
            "3",
            "--lr",
            // Adam at 0.1 makes the loss jump to 20 × ln 10 in its second step: a divergence.
            "0.01",
            "--schedule",
            "exponential",
            "--gamma",
            "0.5",
        ],
    );
    assert!(close(&lrs(&m), &[0.01, 0.005, 0.0025]), "{:?}", lrs(&m));
    assert_eq!(m["schedule"], "exponential");
}

#[test]
fn early_stopping_stops_and_keeps_the_best_epoch() {
    // A small training set and many epochs: the validation loss turns up early.
    let m = metrics(
        "early",
        &[
            "--limit-train",
            "150",
            "--val-split",
            "0.2",
            "--epochs",
            "300",
            "--early-stopping",
            "5",
            "--lr",
            "0.01",
        ],
    );
    let epochs = m["epochs"].as_array().unwrap();
    assert_eq!(m["stopped_early"], true);
    assert!(epochs.len() < 300);
    let kept = m["kept_epoch"].as_u64().unwrap() as usize;
    let val: Vec<f64> = epochs
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect();
    let best = val.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(val[kept - 1], best, "kept epoch {kept} is not the best");
    assert_eq!(
        epochs.len(),
        kept + 5,
        "stopped {} epochs after the best",
        epochs.len() - kept
    );
    // The final test metrics are those of the kept epoch's weights.
    let at_kept = epochs[kept - 1]["test_loss"].as_f64().unwrap();
    assert!((m["test_loss"].as_f64().unwrap() - at_kept).abs() < 1e-9);
    assert_eq!(
        m["diagnosis"]["best_epoch"].as_u64().unwrap() as usize,
        kept
    );
}

#[test]
fn the_verdict_names_underfitting_and_overfitting() {
    let under = metrics(
        "under",
        &[
            "--epochs",
            "1",
            "--optimizer",
            "sgd",
            "--lr",
            "0.0001",
            "--momentum",
            "0",
        ],
    );
    assert_eq!(
        under["diagnosis"]["verdict"], "underfitting",
        "{}",
        under["diagnosis"]
    );
    let over = metrics(
        "over",
        &[
            "--limit-train",
            "100",
            "--val-split",
            "0.3",
            "--epochs",
            "150",
            "--lr",
            "0.01",
            "--hidden",
            "256,256",
        ],
    );
    assert_eq!(
        over["diagnosis"]["verdict"], "overfitting",
        "{}",
        over["diagnosis"]
    );
    assert!(over["diagnosis"]["suggestion"].as_str().unwrap().len() > 10);
}

#[test]
fn a_diverging_run_stops_cleanly_without_a_panic() {
    let out = nabla(&[
        "train",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--epochs",
        "3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("diverged") && stderr.contains("epoch 1"),
        "{stderr}"
    );
    assert!(stderr.contains("lower --lr"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn regularisation_and_optimizers_train() {
    for (name, args) in [
        ("dropout", vec!["--dropout", "0.2"]),
        ("bn", vec!["--batch-norm"]),
        ("clip", vec!["--clip-grad-norm", "0.5"]),
        ("adamw", vec!["--optimizer", "adamw"]),
        ("rmsprop", vec!["--optimizer", "rmsprop"]),
        ("adagrad", vec!["--optimizer", "adagrad"]),
        (
            "nesterov",
            vec![
                "--optimizer",
                "sgd",
                "--nesterov",
                "--weight-decay",
                "0.0001",
            ],
        ),
        (
            "init",
            vec!["--init", "glorot-normal", "--activation", "gelu"],
        ),
    ] {
        let mut all = vec!["--epochs", "8"];
        all.extend(args);
        let m = metrics(name, &all);
        let acc = m["test_accuracy"].as_f64().unwrap();
        assert!(acc > 0.9, "{name}: test accuracy {acc}");
    }
}

#[test]
fn dropout_and_batch_norm_runs_are_identical_across_thread_counts() {
    let strip = |mut m: serde_json::Value| {
        let o = m.as_object_mut().unwrap();
        o.remove("train_seconds");
        o.remove("inference_seconds");
        o.remove("threads");
        for e in o["epochs"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("seconds");
        }
        m
    };
    let args = [
        "--epochs",
        "3",
        "--batch-size",
        "256",
        "--dropout",
        "0.3",
        "--batch-norm",
    ];
    let mut one = args.to_vec();
    one.extend(["--threads", "1"]);
    let mut two = args.to_vec();
    two.extend(["--threads", "2"]);
    let a = strip(metrics("t1", &one));
    let b = strip(metrics("t2", &two));
    assert_eq!(a, b);
}

#[test]
fn lr_find_suggests_a_rate() {
    // (--epochs, which the sweep never used, is refused since issue 16: see first_hour.rs.)
    let out = nabla(&["lr-find", "--steps", "60"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("suggested learning rate"), "{stdout}");
    assert!(stdout.lines().count() > 10);
}
