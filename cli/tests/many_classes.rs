//! Models with a huge class count (issue 30 item 17): `evaluate` never builds a dense
//! classes × classes confusion matrix (at most one cell per row is non-zero), and no command
//! prints a matrix or a class list that grows with the class count squared: beyond a readable
//! size the table is a summary (the most-confused pairs, the classes with the most errors) and
//! the JSON gives the non-zero cells as `[true, predicted, count]` triples.
//!
//! The models are crafted: a 3-class `dense 3` model trained on a tiny CSV, its header then
//! rewritten to K classes with K×2 weights (a 100,000-class model is a 1.2 MB file).

mod common;
use common::{nabla_in, temp_dir};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A CSV with features `x`, `y` and the target `label`: `rows` rows over classes `c0..c{k-1}`.
fn csv(dir: &Path, name: &str, rows: usize, k: usize) -> PathBuf {
    let mut text = String::from("x,y,label\n");
    for r in 0..rows {
        let c = (r * 7919) % k;
        text.push_str(&format!("{},{},c{c}\n", r % 5, (r * 3) % 4));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A `dense K` classifier over `x`, `y` with classes `c0..c{k-1}`: trained with 3 classes,
/// then its header and tensors rewritten to `k`.
fn crafted(dir: &Path, k: usize) -> PathBuf {
    csv(dir, "three.csv", 30, 3);
    let out = nabla_in(
        dir,
        &[
            "train",
            "--data",
            "three.csv",
            "--layers",
            "dense 3",
            "--epochs",
            "1",
            "--quiet",
            "--no-save",
            "--save",
            "three.safetensors",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.join("three.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let classes: Vec<String> = (0..k).map(|c| format!("c{c}")).collect();
    let meta = &mut header["__metadata__"];
    for (key, path) in [
        ("spec", &["classes"][..]),
        ("preprocess", &["target", "classes"][..]),
    ] {
        let mut v: serde_json::Value = serde_json::from_str(meta[key].as_str().unwrap()).unwrap();
        let mut at = &mut v;
        for p in path {
            at = &mut at[*p];
        }
        *at = serde_json::json!(classes);
        if key == "spec" {
            v["layers"][0]["out"] = serde_json::json!(k);
        }
        meta[key] = serde_json::Value::String(v.to_string());
    }
    // Weights that spread the rows over many classes: w[c] = (sin c, cos c), bias 0.
    let mut data = vec![0u8; 4 * k];
    for c in 0..k {
        for v in [(c as f32).sin(), (c as f32).cos()] {
            data.extend_from_slice(&v.to_le_bytes());
        }
    }
    header["layers.0.bias"] =
        serde_json::json!({"dtype": "F32", "shape": [k], "data_offsets": [0, 4 * k]});
    header["layers.0.weight"] =
        serde_json::json!({"dtype": "F32", "shape": [k, 2], "data_offsets": [4 * k, 12 * k]});
    let h = serde_json::to_vec(&header).unwrap();
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&h);
    file.extend_from_slice(&data);
    let path = dir.join(format!("k{k}.safetensors"));
    std::fs::write(&path, file).unwrap();
    path
}

/// `nabla ARGS` in `dir` under `/usr/bin/time`: its output and its peak resident set in MB.
/// (Before the fix, a 100,000-class `evaluate` built a 100,000² matrix: 80 GB.)
fn measured(dir: &Path, args: &[&str]) -> (Output, u64) {
    let peak = dir.join("peak.txt");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&peak)
        .arg(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("/usr/bin/time runs");
    let kb: u64 = std::fs::read_to_string(&peak)
        .unwrap_or_default()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u64::MAX);
    (out, kb / 1024)
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status.code());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn evaluate_of_a_100000_class_model_takes_megabytes_and_prints_a_summary() {
    let dir = temp_dir("many_classes_100k");
    let model = crafted(&dir, 100_000);
    csv(&dir, "rows.csv", 500, 100_000);
    let m = model.display().to_string();
    let (out, peak) = measured(&dir, &["evaluate", "--model", &m, "--data", "rows.csv"]);
    assert!(peak < 300, "peak resident set {peak} MB");
    let text = ok(&out);
    assert!(
        text.len() < 16_000,
        "{} bytes:\n{}",
        text.len(),
        &text[..2000.min(text.len())]
    );
    assert!(text.contains("most-confused pairs"), "{text}");
    let (out, peak) = measured(
        &dir,
        &["evaluate", "--model", &m, "--data", "rows.csv", "--json"],
    );
    assert!(peak < 300, "peak resident set {peak} MB");
    let json = ok(&out);
    // Bounded by the rows, not the classes: at most one cell and two classes per row.
    assert!(json.len() < 200_000, "{} bytes of JSON", json.len());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.get("confusion_matrix").is_none());
    let cells = v["confusion_pairs"].as_array().unwrap();
    let total: u64 = cells.iter().map(|c| c[2].as_u64().unwrap()).sum();
    assert_eq!(total, 500);
    assert_eq!(v["class_count"], 100_000);
    let correct: u64 = cells
        .iter()
        .filter(|c| c[0] == c[1])
        .map(|c| c[2].as_u64().unwrap())
        .sum();
    assert!((v["accuracy"].as_f64().unwrap() - correct as f64 / 500.0).abs() < 1e-12);
}

#[test]
fn a_5000_class_model_prints_kilobytes_not_megabytes() {
    let dir = temp_dir("many_classes_5k");
    let model = crafted(&dir, 5000);
    csv(&dir, "rows.csv", 200, 5000);
    let m = model.display().to_string();
    for args in [
        &["evaluate", "--model", &m, "--data", "rows.csv"][..],
        &["inspect", "--model", &m][..],
    ] {
        let out = ok(&nabla_in(&dir, args));
        assert!(out.len() < 16_000, "{args:?}: {} bytes", out.len());
    }
    let text = ok(&nabla_in(
        &dir,
        &["evaluate", "--model", &m, "--data", "rows.csv"],
    ));
    for want in [
        "classes with the most errors",
        "most-confused pairs",
        "--json",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
}
