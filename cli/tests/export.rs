//! `nabla export --format onnx`: the file decodes as an ONNX `ModelProto` (with nabla's own
//! prost messages, so no Python is needed) and is structurally sane: opsets, typed inputs and
//! outputs, `classes` metadata, nodes in topological order over known values, initializers
//! whose bytes fit their shapes, one `Gemm` per linear layer, categorical columns one-hot
//! encoded inside the graph. Numerical agreement with `nabla predict` is checked by ONNX Runtime
//! in CI (cli/tests/python/check_onnx.py).

mod common;
use common::{nabla, stdout, temp_dir};

use std::collections::HashSet;

use nabla::io::onnx::proto::{ModelProto, ValueInfoProto};
use prost::Message;

fn export(model: &str, out: &str) -> ModelProto {
    stdout(&["export", "--model", model, "--format", "onnx", "--out", out]);
    let bytes = std::fs::read(out).expect("the ONNX file exists");
    ModelProto::decode(bytes.as_slice()).expect("the file is a ModelProto")
}

/// (name, element type, [dims]) of a graph input or output; `-1` for the symbolic batch axis.
fn shape(v: &ValueInfoProto) -> (String, i32, Vec<i64>) {
    let t = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .unwrap();
    let dims = t.shape.as_ref().unwrap().dim.iter();
    let dims = dims.map(|d| d.dim_value.unwrap_or(-1)).collect();
    (v.name.clone().unwrap(), t.elem_type.unwrap(), dims)
}

fn metadata(m: &ModelProto, key: &str) -> serde_json::Value {
    let entry = m
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some(key));
    let text = entry.and_then(|p| p.value.as_deref()).unwrap();
    serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.into()))
}

/// Every node reads only graph inputs, initializers or earlier outputs; initializers' bytes fit
/// their shapes; the graph's output is produced. Returns the op types in order.
fn check_structure(m: &ModelProto) -> Vec<String> {
    assert_eq!(m.ir_version, Some(8));
    let opsets: Vec<(String, i64)> = m
        .opset_import
        .iter()
        .map(|o| (o.domain.clone().unwrap_or_default(), o.version.unwrap()))
        .collect();
    assert_eq!(opsets, [("".into(), 17), ("ai.onnx.ml".into(), 3)]);
    let g = m.graph.as_ref().unwrap();
    let mut known: HashSet<String> = g.input.iter().map(|i| i.name.clone().unwrap()).collect();
    for t in &g.initializer {
        let n: i64 = t.dims.iter().product();
        let width = match t.data_type.unwrap() {
            1 => 4,
            7 | 11 => 8,
            other => panic!("unexpected initializer type {other}"),
        };
        assert_eq!(t.raw_data.as_ref().unwrap().len() as i64, n * width);
        assert!(known.insert(t.name.clone().unwrap()), "duplicate name");
    }
    for node in &g.node {
        for i in &node.input {
            assert!(
                known.contains(i),
                "{:?} reads {i} before it exists",
                node.op_type
            );
        }
        for o in &node.output {
            assert!(known.insert(o.clone()), "{o} written twice");
        }
    }
    for o in &g.output {
        assert!(known.contains(o.name.as_ref().unwrap()));
    }
    g.node.iter().map(|n| n.op_type.clone().unwrap()).collect()
}

#[test]
fn a_digits_classifier_with_every_mlp_layer_kind_exports_to_a_sane_graph() {
    let dir = temp_dir("digits");
    let model = dir.join("m.safetensors").display().to_string();
    let out = dir.join("m.onnx").display().to_string();
    let flags = [
        "--hidden",
        "16,8",
        "--activation",
        "gelu",
        "--batch-norm",
        "--dropout",
        "0.1",
    ];
    let mut args = vec!["train", "--epochs", "1", "--no-save", "--save", &model];
    args.extend(flags);
    stdout(&args);
    let m = export(&model, &out);
    let ops = check_structure(&m);
    let g = m.graph.as_ref().unwrap();
    assert_eq!(
        g.input.iter().map(shape).collect::<Vec<_>>(),
        [("numeric".into(), 1, vec![-1, 64])]
    );
    assert_eq!(
        g.output.iter().map(shape).collect::<Vec<_>>(),
        [("probabilities".into(), 1, vec![-1, 10])]
    );
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    assert_eq!(metadata(&m, "classes"), serde_json::json!(classes));
    assert_eq!(
        metadata(&m, "numeric_columns").as_array().unwrap().len(),
        64
    );
    let count = |op: &str| ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("Gemm"), 3, "{ops:?}");
    assert_eq!(count("Erf"), 2, "one GELU per hidden layer: {ops:?}");
    assert_eq!(ops.last().map(String::as_str), Some("Softmax"));
    assert!(!ops.iter().any(|o| o.contains("Dropout")), "{ops:?}");
    // Preprocessing first: (x − center) / scale in float64.
    assert_eq!(&ops[..4], ["Cast", "Sub", "Div", "Cast"]);
}

#[test]
fn a_cnn_exports_its_image_layers_after_a_reshape_of_the_raw_columns() {
    let dir = temp_dir("cnn");
    let model = dir.join("c.safetensors").display().to_string();
    let out = dir.join("c.onnx").display().to_string();
    let layers = "conv 4 3 pad 1, batchnorm, relu, maxpool 2, conv 6 2, avgpool 2 stride 1, \
                  dropout2d 0.1, globalavgpool, flatten, dense 10";
    stdout(&[
        "train",
        "--epochs",
        "1",
        "--image-shape",
        "1x8x8",
        "--layers",
        layers,
        "--no-save",
        "--save",
        &model,
    ]);
    let m = export(&model, &out);
    let ops = check_structure(&m);
    let g = m.graph.as_ref().unwrap();
    assert_eq!(
        g.input.iter().map(shape).collect::<Vec<_>>(),
        [("numeric".into(), 1, vec![-1, 64])]
    );
    let after: Vec<&str> = ops
        .iter()
        .skip_while(|o| *o != "Reshape")
        .map(String::as_str)
        .collect();
    assert_eq!(
        after,
        [
            "Reshape",
            "Conv",
            "Mul",
            "Add",
            "Relu",
            "MaxPool",
            "Conv",
            "AveragePool",
            "GlobalAveragePool",
            "Flatten",
            "Gemm",
            "Softmax"
        ]
    );
}

#[test]
fn a_regression_with_a_categorical_column_takes_strings_and_gives_target_units() {
    let dir = temp_dir("regression");
    let csv = dir.join("houses.csv");
    let mut text = String::from("rooms,city,price\n");
    for i in 0..60 {
        let city = ["north", "south", "east"][i % 3];
        let rooms = if i == 7 {
            String::new()
        } else {
            (1 + i % 5).to_string()
        };
        text += &format!("{rooms},{city},{}\n", 100 + 20 * (i % 5) + 7 * (i % 3));
    }
    std::fs::write(&csv, text).unwrap();
    let model = dir.join("m.safetensors").display().to_string();
    let out = dir.join("m.onnx").display().to_string();
    let data = csv.display().to_string();
    stdout(&[
        "train",
        "--data",
        &data,
        "--target",
        "price",
        "--task",
        "regression",
        "--impute",
        "mean",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--no-save",
        "--save",
        &model,
    ]);
    let m = export(&model, &out);
    let ops = check_structure(&m);
    let g = m.graph.as_ref().unwrap();
    let inputs: Vec<_> = g.input.iter().map(shape).collect();
    assert_eq!(
        inputs,
        [
            ("numeric".into(), 1, vec![-1, 1]),
            ("city".into(), 8, vec![-1, 1])
        ]
    );
    assert_eq!(
        g.output.iter().map(shape).collect::<Vec<_>>(),
        [("value".into(), 1, vec![-1, 1])]
    );
    let hot = g
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("OneHotEncoder"))
        .unwrap();
    assert_eq!(hot.domain.as_deref(), Some("ai.onnx.ml"));
    let cats = hot
        .attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("cats_strings"))
        .unwrap();
    let cats: Vec<&[u8]> = cats.strings.iter().map(Vec::as_slice).collect();
    // With --impute, "" (a missing cell) is one more category, mapped onto the imputed one.
    assert_eq!(cats, [&b"east"[..], b"north", b"south", b""]);
    for op in ["IsNaN", "Where", "MatMul", "Concat"] {
        assert!(ops.iter().any(|o| o == op), "no {op} in {ops:?}");
    }
    assert_eq!(metadata(&m, "classes"), serde_json::json!([]));
    assert_eq!(
        metadata(&m, "categorical_columns"),
        serde_json::json!(["city"])
    );
}

#[test]
fn exporting_a_missing_model_names_the_file_and_writes_nothing() {
    let dir = temp_dir("missing");
    let out = dir.join("m.onnx");
    let o = nabla(&[
        "export",
        "--model",
        "/nonexistent/m.safetensors",
        "--format",
        "onnx",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/m.safetensors"), "{err}");
    assert!(!out.exists());
}
