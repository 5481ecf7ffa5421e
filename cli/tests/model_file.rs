//! The model file: round trips, prediction equal to the network's, no allocation per call,
//! every kind of bad file refused with a clear error (never a panic), and the CLI commands
//! that use it (`train --save`, `predict`, `evaluate`, `inspect`).

mod common;
use common::{idx, nabla, temp_dir};

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nabla::data::preprocess::{ColumnEncoding, Preprocess, Scaling, TargetEncoding};
use nabla::io::Model;
use nabla::kernels::activation::Activation;
use nabla::nn::{ModelSpec, Network, Task};

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only the measuring test's thread counts: other tests run in parallel in this binary.
    static THIS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn counted() -> bool {
    COUNTING.load(Ordering::Relaxed) && THIS_THREAD.with(|t| t.get())
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn preprocess(n: usize, classes: &[String]) -> Preprocess {
    let names: Vec<String> = (0..n).map(|i| format!("x{i}")).collect();
    Preprocess {
        center: (0..n).map(|i| i as f64 * 0.5).collect(),
        scale: (0..n).map(|i| 1.0 + i as f64).collect(),
        scaling: Scaling::Standard,
        columns: names
            .iter()
            .map(|n| ColumnEncoding::Numeric {
                name: n.clone(),
                impute: None,
            })
            .collect(),
        features: names,
        target: TargetEncoding {
            name: "y".into(),
            task: Task::Classification,
            classes: classes.to_vec(),
            center: 0.0,
            scale: 1.0,
        },
    }
}

/// A network with batch norm whose running statistics are not the defaults.
fn network() -> Network {
    let spec = ModelSpec::mlp_with(5, &[7, 6], Activation::Tanh, 3, true, 0.2);
    let mut net = Network::from_spec(&spec, 3).unwrap();
    for id in net.buffers().ids().collect::<Vec<_>>() {
        let name = net.buffers().name(id).to_string();
        let t = net.buffers_mut().get_mut(id).data_mut();
        for (i, v) in t.iter_mut().enumerate() {
            if name.ends_with("running_mean") {
                *v = 0.1 * i as f32;
            } else if name.ends_with("running_var") {
                *v = 0.5 + 0.2 * i as f32;
            }
        }
    }
    for t in net.params_mut().tensors_mut() {
        for (i, v) in t.data_mut().iter_mut().enumerate() {
            *v += 0.01 * (i % 7) as f32;
        }
    }
    net
}

fn saved(dir: &Path) -> (PathBuf, Network, Preprocess) {
    let net = network();
    let pre = preprocess(5, &net.spec().classes);
    let path = dir.join("m.safetensors");
    nabla::io::save(&path, &net, &pre, &serde_json::json!({"epochs": 1})).unwrap();
    (path, net, pre)
}

#[test]
fn round_trip_keeps_everything_and_predicts_like_the_network() {
    let dir = temp_dir("roundtrip");
    let (path, net, pre) = saved(&dir);
    let file = nabla::io::load(&path).unwrap();
    assert_eq!(file.network.spec(), net.spec());
    assert_eq!(file.preprocess, pre);
    assert_eq!(file.training["epochs"], 1);
    for ((n1, t1), (n2, t2)) in file.network.params().iter().zip(net.params().iter()) {
        assert_eq!(n1, n2);
        assert_eq!(t1.data(), t2.data());
    }
    assert_eq!(file.network.buffers(), net.buffers());
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let model = Model::new(file);
    let raw = [1.0f32, -2.0, 0.5, 3.0, 7.0];
    let normalised: Vec<f32> = raw
        .iter()
        .zip(pre.center.iter().zip(&pre.scale))
        .map(|(&x, (&c, &s))| ((f64::from(x) - c) / s) as f32)
        .collect();
    let want = net.predict_proba(&normalised).unwrap();
    let got = model.predict(&raw).unwrap().to_vec();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-6, "{got:?} vs {want:?}");
    }
    // A batch gives the same rows.
    let batch: Vec<f32> = raw.iter().chain(raw.iter()).copied().collect();
    let two = model.predict_batch(&batch, 2).unwrap().to_vec();
    for (a, b) in two.iter().zip(got.iter().chain(got.iter())) {
        assert!((a - b).abs() <= 1e-6, "{two:?} vs {got:?}");
    }
    assert!(model.predict(&raw[..4]).is_err());
}

#[test]
fn prediction_allocates_nothing_after_the_first_call() {
    let spec = ModelSpec::mlp(784, &[256, 128], Activation::Relu, 10);
    let net = Network::from_spec(&spec, 1).unwrap();
    let dir = temp_dir("alloc");
    let pre = preprocess(784, &spec.classes);
    let path = dir.join("m.safetensors");
    nabla::io::save(&path, &net, &pre, &serde_json::Value::Null).unwrap();
    let model = Model::load(&path).unwrap();
    let x = vec![0.25f32; 784];
    let batch = vec![0.5f32; 784 * 32];
    let mut scratch = nabla::io::Scratch::new();
    model.predict_into(&x, 1, &mut scratch).unwrap();
    model.predict_into(&batch, 32, &mut scratch).unwrap();
    THIS_THREAD.with(|t| t.set(true));
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        let _ = model.predict_into(&x, 1, &mut scratch).unwrap()[0];
    }
    let single = ALLOCATIONS.swap(0, Ordering::SeqCst);
    for _ in 0..10 {
        let _ = model.predict_into(&batch, 32, &mut scratch).unwrap()[0];
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!((single, ALLOCATIONS.load(Ordering::SeqCst)), (0, 0));
}

/// Rewrites a valid file's header with `edit` (keeping the tensor bytes).
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

fn set_meta(h: &mut serde_json::Value, key: &str, value: &str) {
    h["__metadata__"][key] = serde_json::Value::String(value.to_string());
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = temp_dir("bad");
    let (path, _, _) = saved(&dir);
    let good = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap());
    let mut lying = good.clone();
    lying[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    let mut longer = good.clone();
    longer[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
    let mut shorter = good.clone();
    shorter[..8].copy_from_slice(&(n - 8).to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "too short"),
        ("zeros", vec![0u8; 4096], "header length"),
        ("truncated header", good[..40].to_vec(), "header length"),
        (
            "truncated data",
            good[..good.len() - 10].to_vec(),
            "truncated",
        ),
        ("huge header length", lying, "header length"),
        ("header length past the end", longer, "header length"),
        ("header length too short", shorter, "header"),
        (
            "garbage header",
            {
                let mut b = 16u64.to_le_bytes().to_vec();
                b.extend_from_slice(b"{{{{not json!!!!");
                b
            },
            "JSON",
        ),
        (
            "unknown version",
            with_header(&good, |h| set_meta(h, "format_version", "99")),
            "unknown format_version",
        ),
        (
            "not nabla",
            with_header(&good, |h| set_meta(h, "format", "other")),
            "format",
        ),
        (
            "garbage spec",
            with_header(&good, |h| {
                set_meta(h, "spec", "{\"inputs\": 5, \"layers\": [")
            }),
            "spec",
        ),
        (
            "garbage preprocess",
            with_header(&good, |h| set_meta(h, "preprocess", "]]")),
            "preprocess",
        ),
        (
            "garbage training",
            with_header(&good, |h| set_meta(h, "training", "{nope")),
            "training",
        ),
        (
            "no metadata",
            with_header(&good, |h| {
                h.as_object_mut().unwrap().remove("__metadata__");
            }),
            "__metadata__",
        ),
        (
            "shape contradicts the spec",
            with_header(&good, |h| {
                h["layers.0.weight"]["shape"] = serde_json::json!([5, 7]);
            }),
            "spec needs",
        ),
        (
            "spec contradicts the shapes",
            with_header(&good, |h| {
                let spec = h["__metadata__"]["spec"].as_str().unwrap().to_string();
                let spec = spec
                    .replace("\"out\":7", "\"out\":8")
                    .replace("\"in\":7", "\"in\":8");
                let spec = spec.replace("\"features\":7", "\"features\":8");
                set_meta(h, "spec", &spec);
            }),
            "layers.0",
        ),
        (
            "missing tensor",
            with_header(&good, |h| {
                h.as_object_mut().unwrap().remove("layers.0.bias");
            }),
            "missing",
        ),
        (
            "offsets past the data",
            with_header(&good, |h| {
                h["layers.0.bias"]["data_offsets"] = serde_json::json!([0, 1_000_000_000_000u64]);
            }),
            "offsets",
        ),
        (
            "wrong dtype",
            with_header(&good, |h| {
                h["layers.0.bias"]["dtype"] = serde_json::json!("F16");
            }),
            "dtype",
        ),
    ];
    for (what, bytes, expect) in cases {
        let p = dir.join(format!("{}.safetensors", what.replace(' ', "_")));
        std::fs::write(&p, &bytes).unwrap();
        let err = match nabla::io::load(&p) {
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expect), "{what}: {err}");
        assert!(err.contains(&*p.display().to_string()), "{what}: {err}");
    }
}

fn digits_csv() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/digits.csv").to_string()
}

#[test]
fn cli_save_predict_evaluate_inspect() {
    let dir = temp_dir("cli");
    let model = dir.join("digits.safetensors");
    let m = model.to_str().unwrap();
    let out = nabla(&[
        "train",
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--threads",
        "1",
        "--save",
        m,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let preds = dir.join("p.csv");
    let out = nabla(&[
        "predict",
        "--model",
        m,
        "--data",
        &digits_csv(),
        "--out",
        preds.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&preds).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let want: Vec<String> = std::iter::once("prediction".to_string())
        .chain((0..10).map(|c| format!("p_{c}")))
        .collect();
    assert_eq!(header, want.join(","));
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let p: Vec<f64> = cells[1..].iter().map(|c| c.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        let best = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(cells[0], best.to_string());
        rows += 1;
    }
    assert_eq!(rows, 1797);

    let out = nabla(&["evaluate", "--model", m, "--data", &digits_csv(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.5, "{report}");
    assert!(report["loss"].as_f64().unwrap() > 0.0);
    assert_eq!(report["per_class"].as_array().unwrap().len(), 10);
    let cm = report["confusion_matrix"].as_array().unwrap();
    let total: u64 = cm
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 1797);

    let out = nabla(&["inspect", "--model", m]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("linear 64 → 32")
            && text.contains("classes (10)")
            && text.contains("optimizer"),
        "{text}"
    );

    // Missing columns are listed.
    let partial = dir.join("partial.csv");
    std::fs::write(&partial, "pixel_0,pixel_1\n1,2\n").unwrap();
    let out = nabla(&["predict", "--model", m, "--data", partial.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("62 column(s)") && err.contains("\"pixel_2\""),
        "{err}"
    );

    // A bad model file: exit code 2, one clear line, no panic.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, vec![0u8; 100]).unwrap();
    for cmd in ["predict", "evaluate"] {
        let out = nabla(&[
            cmd,
            "--model",
            junk.to_str().unwrap(),
            "--data",
            &digits_csv(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("header length") && !err.contains("panick"),
            "{err}"
        );
    }
}

#[test]
fn idx_models_predict_images_and_evaluate_folders() {
    let dir = temp_dir("idx");
    let data = dir.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    // 4×4 images: class 0 lights the left half, class 1 the right half.
    let make = |n: usize| {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = (i % 2) as u8;
            labels.push(c);
            for p in 0..16 {
                let left = p % 4 < 2;
                pixels.push(if left == (c == 0) {
                    200 + (i % 50) as u8
                } else {
                    (i % 30) as u8
                });
            }
        }
        (pixels, labels)
    };
    for (stem, n) in [("train", 200usize), ("t10k", 40)] {
        let (pixels, labels) = make(n);
        std::fs::write(
            data.join(format!("{stem}-images-idx3-ubyte")),
            idx(0x803, &[n as u32, 4, 4], &pixels),
        )
        .unwrap();
        std::fs::write(
            data.join(format!("{stem}-labels-idx1-ubyte")),
            idx(0x801, &[n as u32], &labels),
        )
        .unwrap();
    }
    let model = dir.join("idx.safetensors");
    let m = model.to_str().unwrap();
    let d = data.to_str().unwrap();
    let trained = nabla(&[
        "train", "--data", d, "--hidden", "8", "--epochs", "40", "--save", m,
    ]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let file = nabla::io::load(&model).unwrap();
    assert_eq!(file.preprocess.features[0], "pixel_0");
    assert!(file.preprocess.center.iter().all(|&c| c == 0.0));
    assert!(file.preprocess.scale.iter().all(|&s| s == 255.0));

    let out = nabla(&["evaluate", "--model", m, "--data", d, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["accuracy"].as_f64().unwrap() > 0.9, "{report}");
    assert_eq!(report["samples"], 40);
    // The same loss as training's own evaluation of the t10k pair.
    let log = String::from_utf8_lossy(&trained.stdout).to_string();
    let loss = format!("test loss {:.4}", report["loss"].as_f64().unwrap());
    assert!(log.contains(&loss), "{loss} not in {log}");

    let images = data.join("t10k-images-idx3-ubyte");
    let out = nabla(&["predict", "--model", m, "--data", images.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().next(), Some("prediction,p_0,p_1"));
    assert_eq!(text.lines().count(), 41);

    // --scale fits per-pixel statistics on the training images; the model file carries them,
    // so evaluate reproduces training's own test loss from the raw bytes.
    for (scale, scaling) in [
        ("standard", "standard"),
        ("minmax", "minmax"),
        ("none", "none"),
    ] {
        let model = dir.join(format!("idx-{scale}.safetensors"));
        let m = model.to_str().unwrap();
        let trained = nabla(&[
            "train", "--data", d, "--hidden", "8", "--epochs", "40", "--scale", scale, "--save", m,
            "--lr", "0.003",
        ]);
        assert!(
            trained.status.success(),
            "{}",
            String::from_utf8_lossy(&trained.stderr)
        );
        let file = nabla::io::load(&model).unwrap();
        let p = &file.preprocess;
        assert_eq!(p.scaling.name(), scaling);
        // Pixel 0 (left column): class 0 images have 200 + (i % 50), class 1 have i % 30.
        let pixel0: Vec<f64> = make(200)
            .0
            .chunks(16)
            .map(|img| f64::from(img[0]))
            .collect();
        let mean = pixel0.iter().sum::<f64>() / 200.0;
        let lo = pixel0.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pixel0.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (center, spread) = match scale {
            "standard" => (
                mean,
                (pixel0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 200.0).sqrt(),
            ),
            "minmax" => (lo, hi - lo),
            _ => (0.0, 1.0),
        };
        assert!(
            (p.center[0] - center).abs() < 1e-9,
            "{scale}: {}",
            p.center[0]
        );
        assert!(
            (p.scale[0] - spread).abs() < 1e-9,
            "{scale}: {}",
            p.scale[0]
        );
        let out = nabla(&["evaluate", "--model", m, "--data", d, "--json"]);
        assert!(out.status.success());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let log = String::from_utf8_lossy(&trained.stdout).to_string();
        let loss = format!("test loss {:.4}", report["loss"].as_f64().unwrap());
        assert!(log.contains(&loss), "{scale}: {loss} not in {log}");
        if scale != "none" {
            assert!(
                report["accuracy"].as_f64().unwrap() > 0.9,
                "{scale}: {report}"
            );
        }
    }
}

#[test]
fn regression_models_report_mae_rmse_r2_and_read_categories() {
    let dir = temp_dir("regression");
    let csv = dir.join("houses.csv");
    let mut text = String::from("id,area,city,price\n");
    for i in 0..300 {
        let area = 50.0 + (i * 37 % 150) as f64;
        let city = ["north", "south", "east"][i % 3];
        let bonus = [0.0, 40.0, 80.0][i % 3];
        text += &format!(
            "{i},{area},{city},{}\n",
            3.0 * area + bonus + (i % 7) as f64
        );
    }
    std::fs::write(&csv, &text).unwrap();
    let model = dir.join("houses.safetensors");
    let m = model.to_str().unwrap();
    let c = csv.to_str().unwrap();
    let out = nabla(&[
        "train", "--data", c, "--target", "price", "--drop", "id", "--hidden", "16", "--epochs",
        "60", "--save", m,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nabla(&["evaluate", "--model", m, "--data", c, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["r2"].as_f64().unwrap() > 0.9, "{report}");
    assert!(report["mae"].as_f64().unwrap() > 0.0 && report["rmse"].as_f64().is_some());
    assert!(report["loss"].as_f64().is_some());

    // Columns in another order, no target, no id: matched by name.
    let new = dir.join("new.csv");
    std::fs::write(&new, "city,area\nsouth,100\nnorth,100\n").unwrap();
    let out = nabla(&["predict", "--model", m, "--data", new.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "prediction");
    let south: f64 = rows[1].parse().unwrap();
    let north: f64 = rows[2].parse().unwrap();
    assert!(south > north && (250.0..400.0).contains(&south), "{text}");
}

#[test]
fn mutated_files_never_panic() {
    let dir = temp_dir("mutate");
    let (path, _, _) = saved(&dir);
    let good = std::fs::read(&path).unwrap();
    // A small xorshift: seeded, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..2000 {
        let mut bytes = good.clone();
        match next() % 3 {
            0 => bytes.truncate((next() % good.len() as u64) as usize),
            1 => {
                for _ in 0..1 + next() % 4 {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] = next() as u8;
                }
            }
            _ => {
                // Overwrite the header length with a random value.
                let n = next() % (2 * good.len() as u64);
                bytes[..8].copy_from_slice(&n.to_le_bytes());
            }
        }
        match nabla::io::decode(&path, &bytes) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 1000, "{ok} loaded, {refused} refused");
}
