//! The typed run settings: `RunConfig` round-trips through TOML and JSON, and `--resume` rebuilds
//! the run from the config stored in the checkpoint (checkpoints written before configs were
//! stored, holding only a command line, are refused).

mod common;
use common::{nabla_in, temp_dir};

use std::path::Path;

use nabla::config::{OptimizerKind, Output, RunConfig, ScheduleKind};

#[test]
fn run_config_round_trips_through_toml_and_json() {
    let config = RunConfig {
        data: Some("houses.csv".into()),
        features: Some(vec!["a".into(), "b".into()]),
        delimiter: Some(';'),
        optimizer: Some(OptimizerKind::Sgd),
        schedule: Some(ScheduleKind::Step),
        nesterov: true,
        early_stopping: Some(3),
        output: Output {
            checkpoint_dir: Some("ckpt".into()),
            ..Output::default()
        },
        ..RunConfig::default()
    }
    .resolve(500);
    let text = toml::to_string(&config).unwrap();
    assert_eq!(
        toml::from_str::<RunConfig>(&text).unwrap(),
        config,
        "{text}"
    );
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<RunConfig>(&json).unwrap(), config);
    // Keys are the flags' names.
    assert!(
        text.contains("batch_size = 32") && text.contains("lr = 0.05"),
        "{text}"
    );
}

/// Rewrites the `checkpoint` metadata entry of a safetensors checkpoint.
fn edit_checkpoint(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = &mut header["__metadata__"]["checkpoint"];
    let mut checkpoint: serde_json::Value = serde_json::from_str(meta.as_str().unwrap()).unwrap();
    edit(&mut checkpoint);
    *meta = serde_json::Value::String(checkpoint.to_string());
    let mut text = header.to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

const ONE_EPOCH: [&str; 9] = [
    "train",
    "--epochs",
    "1",
    "--hidden",
    "8",
    "--threads",
    "1",
    "--no-save",
    "--checkpoint-dir",
];

fn one_epoch_checkpoint(dir: &Path) -> std::path::PathBuf {
    let mut args = ONE_EPOCH.to_vec();
    args.push("ckpt");
    let out = nabla_in(dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("ckpt").join("epoch-00001.safetensors")
}

#[test]
fn resume_rebuilds_the_run_from_the_stored_config() {
    let dir = temp_dir("resume-config");
    let file = one_epoch_checkpoint(&dir);
    // The stored config, not a command line, says how many epochs the run has.
    edit_checkpoint(&file, |c| {
        assert!(c.get("argv").is_none(), "{c}");
        assert_eq!(c["config"]["epochs"], 1);
        c["config"]["epochs"] = 2.into();
    });
    let out = nabla_in(&dir, &["train", "--resume", "ckpt"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("epoch 2/2"), "{stdout}");
    assert!(dir.join("ckpt").join("epoch-00002.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_checkpoint_with_only_a_command_line_is_refused_clearly() {
    // Issue 13: a stored command line never drives a run (editing it redirected the writes);
    // such checkpoints, from before typed settings were stored, are refused with a message.
    let dir = temp_dir("resume-argv");
    let file = one_epoch_checkpoint(&dir);
    edit_checkpoint(&file, |c| {
        let map = c.as_object_mut().unwrap();
        map.remove("config");
        let mut argv: Vec<String> = ["nabla"]
            .iter()
            .chain(&ONE_EPOCH)
            .map(|s| s.to_string())
            .collect();
        argv[3] = "2".into();
        argv.push("ckpt".into());
        map.insert("argv".into(), argv.into());
    });
    let out = nabla_in(&dir, &["train", "--resume", "ckpt"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("older nabla") && stderr.contains("never replayed"),
        "{stderr}"
    );
    assert!(!dir.join("ckpt").join("epoch-00002.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
