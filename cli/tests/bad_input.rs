//! The bad-input suite: malformed and awkward files, generated here in a temp folder, each run
//! through `nabla train`. A bad file must give exit code 2, exactly one `error:` line naming
//! the file and what was wrong, and no panic; an awkward but valid file must train.

mod common;
use common::{idx, nabla, temp_dir};

use std::io::Write;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `train --data FILE extra...` must fail with exit code 2, one error line mentioning the file
/// (unless `names_file` is false: a usage error) and `expect`.
fn fails(dir: &Path, file: &str, bytes: &[u8], extra: &[&str], expect: &str, names_file: bool) {
    let path = write(dir, file, bytes);
    let p = path.to_str().unwrap();
    let mut args = vec!["train", "--data", p, "--epochs", "1"];
    args.extend_from_slice(extra);
    let out = nabla(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
    assert!(!stderr.contains("panicked"), "{file} panicked: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{file}: not one error line: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(errors[0]),
        "{file}: {stderr}"
    );
    assert!(
        errors[0].contains(expect),
        "{file}: {stderr:?} lacks {expect:?}"
    );
    if names_file {
        assert!(
            errors[0].contains(file),
            "{file}: {stderr:?} does not name the file"
        );
    }
}

/// `train --data FILE extra...` must succeed; returns the metrics and stderr.
fn trains(dir: &Path, file: &str, bytes: &[u8], extra: &[&str]) -> (serde_json::Value, String) {
    let path = write(dir, file, bytes);
    let metrics = dir.join(format!("{file}.json"));
    let mut args = vec![
        "train",
        "--data",
        path.to_str().unwrap(),
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--metrics-out",
        metrics.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = nabla(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{file}: {stderr}");
    let m = serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    (m, stderr)
}

/// `n` rows of a small valid table: two numbers and a class.
fn table(n: usize) -> String {
    let mut s = String::from("a,b,label\n");
    for i in 0..n {
        s += &format!(
            "{},{},{}\n",
            i,
            (i * 7) % 5,
            if i % 2 == 0 { "x" } else { "y" }
        );
    }
    s
}

#[test]
fn malformed_csv_files_fail_with_a_clear_line_and_exit_code_2() {
    let dir = temp_dir("csv");
    let d = dir.as_path();
    fails(
        d,
        "ragged.csv",
        b"a,b,y\n1,2,0\n1,2\n",
        &[],
        "line 3: 2 fields, expected 3",
        true,
    );
    fails(
        d,
        "long-row.csv",
        b"a,b,y\n1,2,0\n1,2,3,4\n",
        &[],
        "4 fields",
        true,
    );
    fails(
        d,
        "text.csv",
        b"a,b,y\n1,2,0\n1,two,1\n",
        &[],
        "line 3, column \"b\": found \"two\", expected a number",
        true,
    );
    fails(d, "empty.csv", b"", &[], "empty file", true);
    fails(d, "bom-only.csv", b"\xef\xbb\xbf", &[], "empty file", true);
    fails(d, "blank.csv", b"\n\n\r\n", &[], "no header row", true);
    fails(d, "header-only.csv", b"a,b,y\n", &[], "no data rows", true);
    fails(
        d,
        "duplicate.csv",
        b"a,b,a\n1,2,3\n",
        &[],
        "duplicate header name \"a\"",
        true,
    );
    fails(
        d,
        "empty-name.csv",
        b"a,,y\n1,2,3\n",
        &[],
        "empty header name",
        true,
    );
    fails(
        d,
        "nan.csv",
        b"a,b,y\n1,2,0\nNaN,2,1\n1,NA,0\n",
        &[],
        "line 3, column \"a\": found a missing value \"NaN\", one of 2 missing cells",
        true,
    );
    fails(
        d,
        "empty-cell.csv",
        b"a,b,y\n1,,0\n2,3,1\n",
        &[],
        "--impute",
        true,
    );
    fails(
        d,
        "missing-target.csv",
        b"a,y\n1,0\n2,null\n",
        &[],
        "column \"y\"",
        true,
    );
    fails(
        d,
        "inf.csv",
        b"a,b,y\n1,2,0\n1,inf,1\n",
        &[],
        "line 3, column \"b\": found \"inf\", expected a finite number",
        true,
    );
    fails(
        d,
        "neg-inf.csv",
        b"a,b,y\n-Infinity,2,0\n",
        &[],
        "finite",
        true,
    );
    fails(
        d,
        "huge.csv",
        b"a,b,y\n1e308,2,0\n2,3,1\n",
        &[],
        "3.4e38",
        true,
    );
    fails(
        d,
        "overflow.csv",
        b"a,b,y\n1e999,2,0\n",
        &[],
        "3.4e38",
        true,
    );
    fails(
        d,
        "wrong-delimiter.csv",
        b"a,b,y\n1,2,0\n",
        &["--delimiter", ";"],
        "1 column",
        true,
    );
    fails(
        d,
        "decimal-comma.csv",
        b"a;b;y\n1,5;2;0\n",
        &[],
        "decimal comma",
        true,
    );
    fails(
        d,
        "utf8-header.csv",
        b"a,\xff\xfe,y\n1,2,0\n",
        &[],
        "not valid UTF-8",
        true,
    );
    fails(
        d,
        "utf8-number.csv",
        b"a,b,y\n1,2,0\n1,\xff,1\n",
        &[],
        "not valid UTF-8",
        true,
    );
    fails(
        d,
        "utf8-text.csv",
        b"a,b,y\n1,x\xc3,0\n",
        &[],
        "invalid UTF-8",
        true,
    );
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fails(d, "garbage.bin", &garbage, &[], "", true);
    let mut truncated = gzip(table(500).as_bytes());
    truncated.truncate(truncated.len() / 2);
    fails(d, "truncated.csv.gz", &truncated, &[], "gzip", true);
    fails(
        d,
        "one-row.csv",
        b"a,b,y\n1,2,x\n",
        &["--task", "regression"],
        "target holds text",
        true,
    );
    fails(
        d,
        "single-row.csv",
        b"a,b,y\n1,2,3.5\n",
        &[],
        "1 row cannot be split",
        false,
    );
    fails(
        d,
        "single-class.csv",
        b"a,y\n1,cat\n2,cat\n3,cat\n",
        &[],
        "single class (\"cat\")",
        true,
    );
    fails(
        d,
        "single-int-class.csv",
        b"a,y\n1,4\n2,4\n",
        &[],
        "single class",
        true,
    );
    fails(
        d,
        "no-target.csv",
        table(10).as_bytes(),
        &["--target", "nope"],
        "--target \"nope\": no such column",
        true,
    );
    fails(
        d,
        "all-missing.csv",
        b"a,b,y\n1,,0\n2,,1\n",
        &[],
        "all 2 cells are missing",
        true,
    );
    fails(
        d,
        "target-missing.csv",
        b"a,y\n1,\n2,NA\n",
        &[],
        "target cells are missing",
        true,
    );
    let mut wide = String::from("id,y\n");
    for i in 0..1100 {
        wide += &format!("name{i},{}\n", i % 2);
    }
    fails(
        d,
        "too-many-categories.csv",
        wide.as_bytes(),
        &[],
        "--drop \"id\"",
        true,
    );
    fails(
        d,
        "unterminated-quote.csv",
        b"a,b,y\n1,\"2,0\n3,4,1\n",
        &[],
        "line 2",
        true,
    );
    fails(d, "only-target.csv", b"y\n1\n2\n", &[], "1 column", true);
    fails(
        d,
        "drop-target.csv",
        table(10).as_bytes(),
        &["--drop", "label"],
        "target",
        false,
    );
    fails(
        d,
        "features-and-drop.csv",
        table(10).as_bytes(),
        &["--features", "a", "--drop", "b"],
        "--features",
        false,
    );
    fails(
        d,
        "text-regression.csv",
        table(10).as_bytes(),
        &["--task", "regression"],
        "text",
        true,
    );
}

#[test]
fn awkward_but_valid_csv_files_train() {
    let dir = temp_dir("valid");
    let d = dir.as_path();
    // CRLF, a byte-order mark, quoted fields with delimiters and quotes inside, blank lines.
    let mut awkward = String::from("\u{feff}\"x, first\",\"say \"\"hi\"\"\",y\r\n");
    for i in 0..40 {
        awkward += &format!("{i},\"{}\",{}\r\n", ["a, b", "c"][i % 2], i % 2);
        if i == 20 {
            awkward += "\r\n";
        }
    }
    let (m, _) = trains(d, "awkward.csv", awkward.as_bytes(), &[]);
    assert_eq!(
        m["train_samples"].as_u64().unwrap() + m["test_samples"].as_u64().unwrap(),
        40
    );
    assert_eq!(m["features"], 3, "1 number + 2 one-hot categories");

    let tsv = table(30).replace(',', "\t");
    trains(d, "tabs.tsv", tsv.as_bytes(), &[]);
    trains(d, "semi.csv", table(30).replace(',', ";").as_bytes(), &[]);
    trains(
        d,
        "explicit.csv",
        table(30).replace(',', "|").as_bytes(),
        &["--delimiter", "|"],
    );
    let (m, _) = trains(d, "gz.csv.gz", &gzip(table(30).as_bytes()), &[]);
    assert_eq!(
        m["classes"],
        serde_json::json!(["x", "y"]),
        "two classes, sorted"
    );

    // Missing cells, handled on request.
    let mut holes = table(40);
    holes = holes
        .replacen("3,1,y", "3,,y", 1)
        .replacen("5,0,y", "NA,0,y", 1);
    for impute in ["mean", "median"] {
        let (m, _) = trains(
            d,
            &format!("holes-{impute}.csv"),
            holes.as_bytes(),
            &["--impute", impute],
        );
        assert_eq!(
            m["train_samples"].as_u64().unwrap() + m["test_samples"].as_u64().unwrap(),
            40
        );
    }
    let (m, stderr) = trains(
        d,
        "holes-drop.csv",
        holes.as_bytes(),
        &["--impute", "drop-rows"],
    );
    assert_eq!(
        m["train_samples"].as_u64().unwrap() + m["test_samples"].as_u64().unwrap(),
        38
    );
    assert!(stderr.contains("dropped 2 of 40 rows"), "{stderr}");

    // A constant column and values near f32's limit: finite metrics, no NaN.
    let mut extreme = String::from("c,big,y\n");
    for i in 0..50 {
        extreme += &format!(
            "7,{}e37,{}e37\n",
            (i % 30) as f64 - 15.0,
            (i % 7) as f64 * 1.5 - 3.3
        );
    }
    let (m, _) = trains(d, "extreme.csv", extreme.as_bytes(), &[]);
    assert_eq!(m["task"], "regression");
    for k in ["test_r2", "test_mae", "test_rmse", "test_loss"] {
        assert!(m[k].as_f64().is_some_and(f64::is_finite), "{k}: {m}");
    }

    // A class with one sample cannot be stratified: a warning, not a failure.
    let mut tiny = table(30);
    tiny += "100,1,z\n";
    let (_, stderr) = trains(
        d,
        "tiny-class.csv",
        tiny.as_bytes(),
        &["--val-split", "0.2"],
    );
    assert!(stderr.contains("single sample (\"z\")"), "{stderr}");

    // --features, --target, --drop choose columns.
    let (m, _) = trains(
        d,
        "choose.csv",
        table(30).as_bytes(),
        &["--target", "a", "--drop", "label", "--task", "regression"],
    );
    assert_eq!(m["features"], 1);
    let (m, _) = trains(d, "choose2.csv", table(30).as_bytes(), &["--features", "b"]);
    assert_eq!(m["features"], 1);
}

#[test]
fn separate_test_files_are_checked_against_the_training_file() {
    let dir = temp_dir("testdata");
    let d = dir.as_path();
    let train = write(
        d,
        "train.csv",
        b"a,color,y\n1,red,0\n2,blue,1\n3,red,0\n4,blue,1\n5,red,0\n6,blue,1\n",
    );
    let t = train.to_str().unwrap();
    let run = |name: &str, bytes: &[u8]| {
        let test = write(d, name, bytes);
        nabla(&[
            "train",
            "--data",
            t,
            "--test-data",
            test.to_str().unwrap(),
            "--epochs",
            "1",
            "--hidden",
            "4",
        ])
    };
    let out = run("other-columns.csv", b"a,shade,y\n1,red,0\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("other-columns.csv") && stderr.contains("color"),
        "{stderr}"
    );

    let out = run("unseen-class.csv", b"a,color,y\n1,red,7\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("class \"7\" does not occur"), "{stderr}");

    let out = run("unseen-category.csv", b"a,color,y\n1,green,0\n2,red,1\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 validation/test row had a category not seen"),
        "{stderr}"
    );
}

/// A valid MNIST-style folder of 2×2 images, with some files replaced.
fn idx_folder(name: &str, replace: &[(&str, Vec<u8>)]) -> PathBuf {
    let dir = temp_dir(name);
    let files = [
        ("train-images-idx3-ubyte", idx(0x803, &[4, 2, 2], &[7; 16])),
        ("train-labels-idx1-ubyte", idx(0x801, &[4], &[0, 1, 0, 1])),
        ("t10k-images-idx3-ubyte", idx(0x803, &[2, 2, 2], &[9; 8])),
        ("t10k-labels-idx1-ubyte", idx(0x801, &[2], &[1, 0])),
    ];
    for (file, bytes) in files {
        let bytes = replace
            .iter()
            .find(|(r, _)| *r == file)
            .map_or(bytes, |(_, b)| b.clone());
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

/// A case name, the files it replaces, and what the error must say.
type IdxCase<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, &'a str);

#[test]
fn malformed_idx_folders_fail_cleanly() {
    let cases: Vec<IdxCase> = vec![
        (
            "zero",
            vec![
                ("train-images-idx3-ubyte", idx(0x803, &[0, 2, 2], &[])),
                ("train-labels-idx1-ubyte", idx(0x801, &[0], &[])),
            ],
            "zero images",
        ),
        (
            "shape",
            vec![("t10k-images-idx3-ubyte", idx(0x803, &[2, 1, 4], &[9; 8]))],
            "1×4 pixels, expected 2×2",
        ),
        (
            "labels-as-images",
            vec![("train-labels-idx1-ubyte", idx(0x803, &[4, 2, 2], &[0; 16]))],
            "magic number",
        ),
        (
            "type",
            vec![("train-images-idx3-ubyte", idx(0x0d03, &[4, 2, 2], &[0; 64]))],
            "magic number",
        ),
        (
            "trailing",
            vec![("t10k-labels-idx1-ubyte", idx(0x801, &[2], &[1, 0, 5]))],
            "unexpected bytes",
        ),
        (
            "header-cut",
            vec![("train-images-idx3-ubyte", idx(0x803, &[4], &[]))],
            "dimension 2",
        ),
        (
            "empty-images",
            vec![("train-images-idx3-ubyte", Vec::new())],
            "empty file",
        ),
        (
            "one-class",
            vec![
                ("train-labels-idx1-ubyte", idx(0x801, &[4], &[0; 4])),
                ("t10k-labels-idx1-ubyte", idx(0x801, &[2], &[0; 2])),
            ],
            "at least two classes",
        ),
        (
            "count-test",
            vec![("t10k-labels-idx1-ubyte", idx(0x801, &[3], &[1, 0, 1]))],
            "3 labels",
        ),
        ("csv-flag", vec![], "applies to CSV data"),
    ];
    for (name, replace, expect) in cases {
        let dir = idx_folder(name, &replace);
        let mut args = vec!["train", "--data", dir.to_str().unwrap(), "--epochs", "1"];
        if name == "csv-flag" {
            args.extend_from_slice(&["--impute", "mean"]);
        }
        let out = nabla(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.contains(expect),
            "{name}: {stderr:?} lacks {expect:?}"
        );
    }
    // A 16-byte gzip-compressed header claiming 2³¹ × 2³¹ × 2³¹ pixels allocates nothing large.
    let lie = gzip(&idx(0x803, &[1 << 31, 1 << 31, 1 << 31], &[]));
    let dir = idx_folder("lie", &[]);
    std::fs::remove_file(dir.join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), lie).unwrap();
    let out = nabla(&["train", "--data", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("more than"), "{stderr}");
}

#[test]
fn a_validation_split_is_reported_every_epoch_for_idx_and_csv() {
    let dir = idx_folder(
        "val",
        &[
            ("train-images-idx3-ubyte", idx(0x803, &[8, 2, 2], &[7; 32])),
            (
                "train-labels-idx1-ubyte",
                idx(0x801, &[8], &[0, 1, 0, 1, 0, 1, 0, 1]),
            ),
        ],
    );
    let m = dir.join("m.json");
    let out = nabla(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--val-split",
        "0.25",
        "--metrics-out",
        m.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    assert_eq!(m["val_samples"], 2);
    assert_eq!(m["train_samples"], 6);
    for e in m["epochs"].as_array().unwrap() {
        assert!(
            e["val_loss"].as_f64().is_some() && e["val_accuracy"].as_f64().is_some(),
            "{e}"
        );
    }
}
