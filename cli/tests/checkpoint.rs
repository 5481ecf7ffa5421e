//! Checkpoints and resume: a run killed with SIGKILL in the middle of an epoch and resumed with
//! `nabla train --resume` ends with a model file bit-identical to the same run uninterrupted.

mod common;
use common::temp_dir;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Dropout, batch norm, a validation set (best-epoch weights), Adam and the plateau schedule:
/// every piece of state a resume must restore.
fn flags(dir: &Path, tag: &str) -> Vec<String> {
    let mut f: Vec<String> = [
        "train",
        "--epochs",
        "5",
        "--hidden",
        "128,64",
        "--batch-size",
        "4",
        "--dropout",
        "0.1",
        "--batch-norm",
        "--val-split",
        "0.1",
        "--schedule",
        "plateau",
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    f.push("--checkpoint-dir".into());
    f.push(dir.join(format!("ckpt-{tag}")).display().to_string());
    f.push("--save".into());
    f.push(dir.join(format!("{tag}.safetensors")).display().to_string());
    f
}

#[test]
fn killed_and_resumed_run_is_bit_identical() {
    let nabla = env!("CARGO_BIN_EXE_nabla");
    let dir = temp_dir("resume");

    let out = Command::new(nabla)
        .current_dir(&dir)
        .args(flags(&dir, "whole"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept: Vec<_> = std::fs::read_dir(dir.join("ckpt-whole")).unwrap().collect();
    assert!(kept.len() <= 4, "kept {} checkpoints", kept.len());

    let mut child = Command::new(nabla)
        .current_dir(&dir)
        .args(flags(&dir, "killed"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = dir.join("ckpt-killed").join("epoch-00001.safetensors");
    let start = Instant::now();
    while !first.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before a checkpoint"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Into epoch 2: kill mid-epoch with SIGKILL.
    std::thread::sleep(Duration::from_millis(30));
    child.kill().unwrap();
    child.wait().unwrap();
    let done = (1..=5)
        .filter(|e| {
            dir.join("ckpt-killed")
                .join(format!("epoch-{e:05}.safetensors"))
                .exists()
        })
        .max();
    eprintln!("killed with SIGKILL after checkpoint of epoch {done:?}");
    assert!(
        !dir.join("ckpt-killed")
            .join("epoch-00005.safetensors")
            .exists(),
        "the run finished before it was killed; the test proves nothing"
    );
    assert!(!dir.join("killed.safetensors").exists());

    let out = Command::new(nabla)
        .current_dir(&dir)
        .args([
            "train",
            "--resume",
            dir.join("ckpt-killed").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resuming from"), "{stderr}");

    let whole = nabla::io::load(dir.join("whole.safetensors")).unwrap();
    let resumed = nabla::io::load(dir.join("killed.safetensors")).unwrap();
    for ((n1, a), (n2, b)) in whole
        .network
        .params()
        .iter()
        .zip(resumed.network.params().iter())
    {
        assert_eq!(n1, n2);
        let (a, b): (Vec<u32>, Vec<u32>) = (
            a.data().iter().map(|v| v.to_bits()).collect(),
            b.data().iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(a, b, "{n1} differs after resume");
    }
    assert_eq!(whole.network.buffers(), resumed.network.buffers());
    assert_eq!(whole.training, resumed.training);
}

#[test]
fn resume_without_checkpoints_is_a_clear_error() {
    let dir = temp_dir("empty");
    let out = common::nabla(&["train", "--resume", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint"));
}
