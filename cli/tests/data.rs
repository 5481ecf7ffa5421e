//! CSV data end to end: the digits file on disk matches the built-in dataset, a generated
//! regression table is learned with default flags, and CSV write → read round trips
//! (property tests).

mod common;
use common::{nabla, temp_dir};

use std::path::Path;

use nabla::data::csv::{self, ColumnKind, CsvOptions, RawTarget};
use nabla::data::{Impute, Scaling, TableOptions, table};
use proptest::prelude::*;

fn metrics(args: &[&str], out: &Path) -> serde_json::Value {
    let mut all = vec!["train", "--metrics-out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let run = nabla(&all);
    assert!(
        run.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// The metrics with timings, the thread count and the dataset's name removed.
fn comparable(mut m: serde_json::Value) -> serde_json::Value {
    let obj = m.as_object_mut().unwrap();
    for k in ["train_seconds", "inference_seconds", "threads", "dataset"] {
        obj.remove(k);
    }
    for e in obj["epochs"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("seconds");
    }
    m
}

#[test]
fn digits_csv_from_disk_gives_the_builtin_metrics() {
    let dir = temp_dir("digits");
    // The project's copy of the shared file (byte-identical to ../shared/datasets/digits.csv).
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/digits.csv");
    let args = ["--epochs", "5", "--seed", "3"];
    let builtin = metrics(&args, &dir.join("a.json"));
    let mut with_file = args.to_vec();
    with_file.extend_from_slice(&["--data", file.to_str().unwrap()]);
    let disk = metrics(&with_file, &dir.join("b.json"));
    assert_eq!(comparable(builtin), comparable(disk));
}

/// A deterministic uniform stream in [0, 1) (a 64-bit LCG; quality is plenty for test data).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn generated_regression_reaches_r2_095_with_defaults() {
    // y = sin(x1) + x2² + shift(colour) + noise, noise ~ U(-0.2, 0.2); 2,000 rows.
    let dir = temp_dir("regression");
    let mut rng = Lcg(7);
    let mut text = String::from("x1,x2,colour,y\n");
    for _ in 0..2000 {
        let x1 = rng.next() * 6.0 - 3.0;
        let x2 = rng.next() * 4.0 - 2.0;
        let (colour, shift) =
            [("red", 0.0), ("green", 0.5), ("blue", -0.5)][(rng.next() * 3.0) as usize];
        let y = x1.sin() + x2 * x2 + shift + (rng.next() - 0.5) * 0.4;
        text += &format!("{x1:.6},{x2:.6},{colour},{y:.6}\n");
    }
    let file = dir.join("reg.csv");
    std::fs::write(&file, text).unwrap();
    let m = metrics(&["--data", file.to_str().unwrap()], &dir.join("m.json"));
    assert_eq!(m["task"], "regression");
    assert_eq!(m["features"], 5, "2 numbers + 3 one-hot colours");
    let r2 = m["test_r2"].as_f64().unwrap();
    assert!(r2 >= 0.95, "R² {r2}");
    assert!(m["test_mae"].as_f64().unwrap() < m["test_rmse"].as_f64().unwrap() * 1.01);
    assert!(m.get("test_accuracy").is_none());
    let epochs = m["epochs"].as_array().unwrap();
    assert!(
        epochs
            .iter()
            .all(|e| e["train_loss"].as_f64().is_some() && e["test_r2"].as_f64().is_some())
    );
}

/// A cell value for the round trip: a finite f32 or a category text with awkward characters.
fn text_cell() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "red".to_string(),
        "a, b".to_string(),
        "say \"hi\"".to_string(),
        "semi;colon".to_string(),
        "tab\there".to_string(),
        "line\nbreak".to_string(),
        "ünï".to_string(),
    ])
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Numbers and texts written as CSV (any delimiter, LF or CRLF, optional BOM, every text
    /// quoted) read back exactly.
    #[test]
    fn csv_write_then_read_round_trips(
        numbers in prop::collection::vec(prop::collection::vec(-1e30f32..1e30, 2), 1..30),
        texts in prop::collection::vec(text_cell(), 30),
        delimiter in prop::sample::select(vec![b',', b';', b'\t']),
        crlf in any::<bool>(),
        bom in any::<bool>(),
    ) {
        let d = delimiter as char;
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        if bom {
            text.push('\u{feff}');
        }
        text += &format!("x{d}\"the, label\"{d}y{eol}");
        for (i, row) in numbers.iter().enumerate() {
            // `{}` of an f32 prints the shortest text that reads back to the same f32.
            text += &format!("{}{d}{}{d}{}{eol}", row[0], quote(&texts[i]), row[1]);
        }
        let raw = csv::read_bytes(Path::new("p.csv"), text.as_bytes(), &CsvOptions::default()).unwrap();
        prop_assert_eq!(raw.delimiter, delimiter);
        prop_assert_eq!(raw.rows(), numbers.len());
        let ColumnKind::Categorical(names) = &raw.columns[1].kind else {
            panic!("a text column read as numbers");
        };
        let RawTarget::Numeric(y) = &raw.target else { panic!("numeric target read as text") };
        for (i, row) in numbers.iter().enumerate() {
            prop_assert_eq!(raw.values[i * 2], row[0]);
            prop_assert_eq!(&names[raw.values[i * 2 + 1] as usize], &texts[i]);
            prop_assert_eq!(y[i] as f32, row[1]);
        }
    }

    /// Scaling is fitted on the training rows only and written as `(x − center) / scale`: with
    /// `--scale none` the training inputs are the file's numbers; with standard scaling each
    /// training column has mean ≈ 0.
    #[test]
    fn scaling_follows_the_preprocess_contract(
        rows in prop::collection::vec((-1e6f64..1e6, -5i32..5), 10..60),
        seed in 0u64..100,
    ) {
        let mut text = String::from("a,b,y\n");
        for (i, (a, b)) in rows.iter().enumerate() {
            text += &format!("{a},{b},{}\n", i as f64 * 0.37 + 0.01);
        }
        for scaling in [Scaling::None, Scaling::Standard, Scaling::MinMax] {
            let raw = csv::read_bytes(Path::new("s.csv"), text.as_bytes(), &CsvOptions::default()).unwrap();
            let options = TableOptions { task: None, impute: Impute::Refuse, scaling, test_split: 0.2, val_split: 0.0, limit_train: None, seed };
            let p = table::prepare("s", raw, None, &options).unwrap();
            prop_assert_eq!(&p.preprocess.features, &vec!["a".to_string(), "b".to_string()]);
            let n = p.train.len();
            let mut x = vec![0.0f32; n * 2];
            p.train.gather(&(0..n).collect::<Vec<_>>(), &mut x);
            prop_assert!(x.iter().all(|v| v.is_finite()));
            prop_assert!(p.preprocess.scale.iter().all(|&s| s > 0.0 && s.is_finite()));
            if scaling == Scaling::Standard {
                for c in 0..2 {
                    let mean: f64 = x.iter().skip(c).step_by(2).map(|&v| v as f64).sum::<f64>() / n as f64;
                    prop_assert!(mean.abs() < 1e-3, "column {} mean {}", c, mean);
                }
            }
            if scaling == Scaling::MinMax {
                prop_assert!(x.iter().all(|&v| (-1e-6..=1.0 + 1e-6).contains(&v)));
            }
        }
    }
}
