//! `nabla train` at the terminal level: the progress bar under a pseudo-terminal, plain lines
//! otherwise, run folders (config.toml reproduces the run, metrics.csv, history.json, valid
//! non-trivial PNG and SVG plots), config files, `nabla plot` and `nabla compare`.

mod common;
use common::{nabla, stdout, temp_dir};

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nabla");

/// Runs `nabla ARGS` under a pseudo-terminal with `script` (util-linux, part of every Debian).
fn under_pty(args: &str) -> Option<String> {
    let cmd = format!("stty cols 120 2>/dev/null; {BIN} {args}");
    let out = Command::new("script")
        // Run folders land in the temp folder, not the source tree.
        .current_dir(std::env::temp_dir())
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "script failed: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

const SMALL: [&str; 6] = ["--hidden", "16", "--epochs", "3", "--batch-size", "64"];

#[test]
fn on_a_terminal_a_bar_per_epoch_then_one_summary_line_each() {
    let Some(s) = under_pty(&format!("train {} --no-save", SMALL.join(" "))) else {
        eprintln!("skipped: the `script` command (util-linux) is not installed");
        return;
    };
    assert!(s.contains("epoch 1/3 ["), "no bar in:\n{s}");
    assert!(s.contains("/23 it"), "no iteration count in:\n{s}");
    assert!(s.contains("samples/s") && s.contains("ETA"), "{s}");
    assert!(s.contains("\x1b[2K"), "the bar is never cleared:\n{s}");
    for e in 1..=3 {
        assert!(
            s.contains(&format!("epoch {e}/3  train loss")),
            "no summary {e}:\n{s}"
        );
    }
    assert!(s.contains("done: test accuracy"), "{s}");

    // --quiet on a terminal: no bar, no epoch lines, the final line only (issue 30.6).
    let q = under_pty(&format!("train {} --no-save --quiet", SMALL.join(" "))).unwrap();
    assert!(!q.contains("samples/s") && !q.contains('\x1b'), "{q}");
    assert!(!q.contains("epoch 3/3  train loss"), "{q}");
    assert!(q.contains("done: test accuracy"), "{q}");
}

#[test]
fn without_a_terminal_plain_lines_and_verbose_adds_iterations() {
    let mut args = vec!["train", "--no-save"];
    args.extend(SMALL);
    let s = stdout(&args);
    assert!(!s.contains('\x1b') && !s.contains("samples/s"), "{s}");
    assert_eq!(s.lines().filter(|l| l.starts_with("epoch ")).count(), 3);
    args.push("--verbose");
    let v = stdout(&args);
    assert!(v.contains("  epoch 2 iteration 23/23  loss "), "{v}");
}

fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    assert!(
        b.len() > 8_000,
        "{} is only {} bytes",
        path.display(),
        b.len()
    );
    assert_eq!(
        &b[b.len() - 8..b.len() - 4],
        b"IEND",
        "{} is truncated",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

fn check_svg(path: &Path, must_contain: &[&str]) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(
        s.contains("<svg") && s.trim_end().ends_with("</svg>"),
        "{}",
        path.display()
    );
    for needle in must_contain {
        assert!(s.contains(needle), "{} lacks {needle:?}", path.display());
    }
}

/// metrics.csv without the timing column.
/// `nabla train --config A/config.toml --run-dir B` gives run A's numbers again.
fn assert_config_repeats(a: &Path, b: &Path) {
    let cfg = a.join("config.toml");
    stdout(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        b.to_str().unwrap(),
    ]);
    assert_eq!(metrics_without_seconds(a), metrics_without_seconds(b));
}

fn metrics_without_seconds(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn run_folder_holds_config_metrics_history_and_plots_and_the_config_repeats_the_run() {
    let root = temp_dir("folder");
    let a = root.join("a");
    // A validation split: only it marks a best epoch (the test set never chooses).
    let mut args = vec![
        "train",
        "--run-dir",
        a.to_str().unwrap(),
        "--seed",
        "7",
        "--val-split",
        "0.2",
    ];
    args.extend(SMALL);
    let out = stdout(&args);
    assert!(out.contains("run saved to"), "{out}");

    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    for key in [
        "hidden = 16",
        "epochs = 3",
        "seed = 7",
        "batch_size = 64",
        "lr = 0.001",
    ] {
        assert!(config.contains(key), "config.toml lacks {key}:\n{config}");
    }
    let csv = metrics_without_seconds(&a);
    assert_eq!(
        csv[0],
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,test_r2,learning_rate"
    );
    assert_eq!(csv.len(), 4);
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("history.json")).unwrap()).unwrap();
    assert_eq!(history["epochs"].as_array().unwrap().len(), 3);
    let cm = history["confusion_matrix"].as_array().unwrap();
    assert_eq!(cm.len(), 10);
    let total: u64 = cm
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 359, "the confusion matrix covers the test set");

    assert_eq!(png_size(&a.join("learning_curves.png")), (1200, 500));
    png_size(&a.join("confusion_matrix.png"));
    png_size(&a.join("lr_schedule.png"));
    check_svg(
        &a.join("learning_curves.svg"),
        &[
            "epoch",
            "train",
            "validation",
            "test",
            "best epoch",
            "<polyline",
        ],
    );
    check_svg(
        &a.join("confusion_matrix.svg"),
        &["predicted class", "true class", "<rect"],
    );
    check_svg(&a.join("lr_schedule.svg"), &["learning rate"]);

    // The same run again from its config.toml alone: the same numbers.
    assert_config_repeats(&a, &root.join("b"));

    // Flags override the file.
    let cfg = a.join("config.toml");
    let c = root.join("c");
    stdout(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "1",
        "--run-dir",
        c.to_str().unwrap(),
    ]);
    assert_eq!(
        metrics_without_seconds(&c),
        metrics_without_seconds(&a)[..2]
    );

    // nabla plot redraws; nabla compare overlays.
    std::fs::remove_file(a.join("learning_curves.png")).unwrap();
    stdout(&["plot", a.to_str().unwrap()]);
    png_size(&a.join("learning_curves.png"));
    let cmp = root.join("cmp");
    stdout(&[
        "compare",
        a.to_str().unwrap(),
        c.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    png_size(&cmp.join("compare.png"));
    check_svg(&cmp.join("compare.svg"), &["a: train", "c: test"]);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn config_errors_are_one_line_with_a_suggestion() {
    let root = temp_dir("config");
    let bad = root.join("bad.toml");
    std::fs::write(&bad, "epochs = 2\nbatchsize = 16\n").unwrap();
    let out = nabla(&["train", "--config", bad.to_str().unwrap(), "--no-save"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did you mean 'batch_size'?") && err.lines().count() == 1,
        "{err}"
    );

    std::fs::write(&bad, "epochs = \"many\"\n").unwrap();
    let out = nabla(&["train", "--config", bad.to_str().unwrap(), "--no-save"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let out = nabla(&["plot", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a run folder"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_list_setting_and_a_resolved_default_round_trip_through_config_toml() {
    let root = temp_dir("list");
    let a = root.join("a");
    stdout(&[
        "train",
        "--hidden",
        "8,8",
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--run-dir",
        a.to_str().unwrap(),
    ]);
    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(
        config.contains("hidden = \"8,8\"") && config.contains("lr = 0.05"),
        "{config}"
    );
    assert_config_repeats(&a, &root.join("b"));
    let _ = std::fs::remove_dir_all(&root);
}
