//! A saved model as an [ONNX](https://onnx.ai) graph: preprocessing, network and output in one
//! file that ONNX Runtime (or any ONNX runtime) runs with no nabla code, giving what
//! `nabla predict` gives.
//!
//! The graph (default domain opset [`OPSET`], `ai.onnx.ml` opset [`ML_OPSET`], IR version
//! [`IR_VERSION`]), for `N` rows:
//!
//! - **Inputs.** `numeric`: float `[N, n]`, the numeric columns in the model's column order
//!   (metadata `numeric_columns`), numbers as in the data file (raw pixel bytes for images); a
//!   NaN cell takes the column's imputed value when the model was trained with imputation.
//!   Then one string input `[N, 1]` per categorical column, named after the column (metadata
//!   `categorical_columns`): the cell's text, `""` for a missing cell (it takes the imputed
//!   category, if any); a category not seen in training encodes as all zeros, as in nabla.
//! - **Preprocessing.** Numeric runs are sliced out, each categorical column one-hot encoded
//!   (`ai.onnx.ml` `OneHotEncoder`), all concatenated in the model's feature order, and
//!   normalised as `(x − center) / scale` in float64 before rounding to float32, exactly as
//!   nabla does.
//! - **Network.** Linear layers as `Gemm` (`W` `[out, in]`, `transB = 1`), activations as
//!   their operators (GELU as `x·(1 + erf(x/√2))/2`), batch norm folded into `x·s + t` with
//!   `s = γ/√(σ²_run + ε)` and `t = β − μ_run·s` computed as nabla computes them; dropout is the
//!   identity at inference and emits nothing. An image network first reshapes the flat input to
//!   `[N, C, H, W]` (C,H,W order, as nabla stores an image), then emits `Conv` (stride,
//!   padding, dilation), `MaxPool`, `AveragePool`, `GlobalAveragePool`, per-channel batch norm
//!   (`[1, C, 1, 1]` scale and shift) and `Flatten`.
//! - **Output.** Classification: `probabilities` float `[N, classes]` (`Softmax`), the class
//!   names in metadata `classes` (a JSON array, output order). Regression: `value` float
//!   `[N, 1]` in the target's own units (`center + scale · output`, in float64).
//!
//! This module writes ONNX; it must not read or run it.

pub mod graph;
pub mod proto;

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use crate::data::preprocess::ColumnEncoding;
use crate::error::NablaError;
use crate::io::model_file::{ModelFile, write_atomic};
use crate::task::Task;
use graph::{Graph, ML_DOMAIN, int, strings};
use proto::{
    Dimension, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto,
    TensorShapeProto, TensorType, TypeProto, ValueInfoProto,
};

/// The default-domain (`ai.onnx`) opset the graph uses.
pub const OPSET: i64 = 17;
/// The `ai.onnx.ml` opset the graph uses (for `OneHotEncoder`).
pub const ML_OPSET: i64 = 3;
/// The IR version matching [`OPSET`] (ONNX 1.12).
pub const IR_VERSION: i64 = 8;
/// The name of the numeric input.
pub const NUMERIC_INPUT: &str = "numeric";
/// The output's name for classification.
pub const PROBABILITIES: &str = "probabilities";
/// The output's name for regression.
pub const VALUE: &str = "value";

/// The ONNX model of a loaded model file (see the module documentation).
///
/// ```
/// use nabla::io::onnx;
/// use nabla::kernels::activation::Activation;
/// use nabla::nn::{ModelSpec, Network};
///
/// let network = Network::from_spec(&ModelSpec::mlp(4, &[8], Activation::Relu, 3), 1)?;
/// let path = std::env::temp_dir().join(format!("nabla-onnx-doc-{}.safetensors", std::process::id()));
/// nabla::io::save_network(&path, &network)?;
/// let model = onnx::export(&nabla::io::load(&path)?)?;
/// let graph = model.graph.as_ref().unwrap();
/// assert_eq!(graph.input[0].name.as_deref(), Some(onnx::NUMERIC_INPUT));
/// assert_eq!(graph.output[0].name.as_deref(), Some(onnx::PROBABILITIES));
/// let ops: Vec<_> = graph.node.iter().filter_map(|n| n.op_type.as_deref()).collect();
/// assert_eq!(ops, ["Cast", "Sub", "Div", "Cast", "Gemm", "Relu", "Gemm", "Softmax"]);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn export(file: &ModelFile) -> Result<ModelProto, NablaError> {
    let mut g = Graph::default();
    let (inputs, encoded) = preprocessing(&mut g, file)?;
    let scores = network(&mut g, file, &encoded)?;
    let output = output(&mut g, file, &scores);
    let metadata = metadata(file, &inputs)?;
    let graph = GraphProto {
        node: g.nodes,
        name: Some("nabla".into()),
        initializer: g.initializers,
        doc_string: Some(doc(file)),
        input: inputs.into_iter().map(|i| i.info).collect(),
        output: vec![output],
    };
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![opset("", OPSET), opset(ML_DOMAIN, ML_OPSET)],
        producer_name: Some("nabla".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(doc(file)),
        graph: Some(graph),
        metadata_props: metadata
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k),
                value: Some(v),
            })
            .collect(),
    })
}

/// The bytes of [`export`]'s model (a serialized `ModelProto`).
pub fn encode(file: &ModelFile) -> Result<Vec<u8>, NablaError> {
    Ok(export(file)?.encode_to_vec())
}

/// Writes [`export`]'s model to `path`, atomically.
pub fn save(path: impl AsRef<Path>, file: &ModelFile) -> Result<(), NablaError> {
    write_atomic(path.as_ref(), &encode(file)?)
}

fn opset(domain: &str, version: i64) -> OperatorSetIdProto {
    OperatorSetIdProto {
        domain: Some(domain.into()),
        version: Some(version),
    }
}

fn doc(file: &ModelFile) -> String {
    let target = &file.preprocess.target;
    match target.task {
        Task::Classification => format!(
            "nabla classifier of {:?}: raw columns in, class probabilities out (classes in metadata `classes`)",
            target.name
        ),
        Task::Regression => format!(
            "nabla regression of {:?}: raw columns in, the value in the target's units out",
            target.name
        ),
    }
}

/// A graph input: its value info and, for a categorical one, the column's name.
struct Input {
    info: ValueInfoProto,
    column: Option<String>,
}

fn value_info(name: &str, elem_type: i32, width: usize) -> ValueInfoProto {
    let dim = |value: Option<i64>, param: Option<String>| Dimension {
        dim_value: value,
        dim_param: param,
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorType {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto {
                    dim: vec![dim(None, Some("N".into())), dim(Some(width as i64), None)],
                }),
            }),
        }),
        doc_string: None,
    }
}

/// The graph's inputs and the name of the normalised `[N, features]` float tensor.
fn preprocessing(g: &mut Graph, file: &ModelFile) -> Result<(Vec<Input>, String), NablaError> {
    let p = &file.preprocess;
    let numeric: Vec<Option<f64>> = p
        .columns
        .iter()
        .filter_map(|c| match c {
            ColumnEncoding::Numeric { impute, .. } => Some(*impute),
            ColumnEncoding::Categorical { .. } => None,
        })
        .collect();
    let mut inputs = Vec::new();
    let mut numbers = String::new();
    if !numeric.is_empty() {
        inputs.push(Input {
            info: value_info(NUMERIC_INPUT, proto::FLOAT, numeric.len()),
            column: None,
        });
        numbers = impute_numeric(g, &numeric);
    }
    let mut pieces = Vec::new();
    let mut run = None::<(usize, usize)>;
    let mut at = 0;
    for c in &p.columns {
        match c {
            ColumnEncoding::Numeric { .. } => {
                run = Some(run.map_or((at, at + 1), |(a, _)| (a, at + 1)));
                at += 1;
            }
            ColumnEncoding::Categorical {
                name,
                categories,
                impute,
            } => {
                if let Some((a, b)) = run.take() {
                    pieces.push(slice(g, &numbers, a, b, numeric.len()));
                }
                let input = unique_name(name, &inputs);
                inputs.push(Input {
                    info: value_info(&input, proto::STRING, 1),
                    column: Some(name.clone()),
                });
                pieces.push(one_hot(g, &input, categories, impute.as_deref()));
            }
        }
    }
    if let Some((a, b)) = run {
        pieces.push(slice(g, &numbers, a, b, numeric.len()));
    }
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let encoded = match refs.as_slice() {
        [] => {
            return Err(NablaError::Usage(
                "the model has no inputs to export".into(),
            ));
        }
        [one] => one.to_string(),
        many => g.node("Concat", many, vec![int("axis", 1)]),
    };
    let d = p.inputs();
    if d != file.network.spec().inputs {
        return Err(NablaError::Usage(format!(
            "the preprocessing makes {d} inputs but the network takes {}",
            file.network.spec().inputs
        )));
    }
    let center = g.f64s("center", &[1, d], &p.center);
    let scale = g.f64s("scale", &[1, d], &p.scale);
    let x = g.node("Cast", &[&encoded], vec![int("to", proto::DOUBLE.into())]);
    let x = g.node("Sub", &[&x, &center], vec![]);
    let x = g.node("Div", &[&x, &scale], vec![]);
    let x = g.node("Cast", &[&x], vec![int("to", proto::FLOAT.into())]);
    Ok((inputs, x))
}

/// The numeric input with NaN cells replaced by each column's imputed value (as nabla
/// stores it: rounded to f32); the input itself when nothing is imputed.
fn impute_numeric(g: &mut Graph, impute: &[Option<f64>]) -> String {
    if impute.iter().all(Option::is_none) {
        return NUMERIC_INPUT.to_string();
    }
    let fill: Vec<f32> = impute
        .iter()
        .map(|v| v.map_or(f32::NAN, |v| v as f32))
        .collect();
    let fill = g.f32s("impute", &[1, fill.len()], &fill);
    let missing = g.node("IsNaN", &[NUMERIC_INPUT], vec![]);
    g.node("Where", &[&missing, &fill, NUMERIC_INPUT], vec![])
}

/// Columns `a..b` of the `[N, width]` tensor `x` (`x` itself when that is all of it).
fn slice(g: &mut Graph, x: &str, a: usize, b: usize, width: usize) -> String {
    if a == 0 && b == width {
        return x.to_string();
    }
    let starts = g.i64s("starts", &[a as i64]);
    let ends = g.i64s("ends", &[b as i64]);
    let axes = g.i64s("axes", &[1]);
    g.node("Slice", &[x, &starts, &ends, &axes], vec![])
}

/// `name`, or `name_` (repeated) if an earlier input or the numeric input has it.
fn unique_name(name: &str, inputs: &[Input]) -> String {
    let mut name = name.to_string();
    while inputs.iter().any(|i| i.info.name.as_deref() == Some(&name)) || name == NUMERIC_INPUT {
        name.push('_');
    }
    name
}

/// The `[N, categories]` one-hot block of the string input `[N, 1]`: all zeros for a category
/// not seen in training; `""` (a missing cell) counts as `impute` when there is one.
fn one_hot(g: &mut Graph, input: &str, categories: &[String], impute: Option<&str>) -> String {
    let k = categories.len();
    let mut cats = categories.to_vec();
    let imputed = impute.and_then(|v| categories.iter().position(|c| c == v));
    if imputed.is_some() {
        cats.push(String::new());
    }
    let attrs = vec![strings("cats_strings", &cats), int("zeros", 1)];
    let hot = g.node_in(ML_DOMAIN, "OneHotEncoder", &[input], attrs);
    let hot = g.node("Flatten", &[&hot], vec![int("axis", 1)]);
    let Some(target) = imputed else {
        return hot;
    };
    // [k + 1, k]: the identity, and the missing marker's row pointing at the imputed category.
    let mut m = vec![0.0f32; (k + 1) * k];
    for i in 0..k {
        m[i * k + i] = 1.0;
    }
    m[k * k + target] = 1.0;
    let m = g.f32s("impute_category", &[k + 1, k], &m);
    g.node("MatMul", &[&hot, &m], vec![])
}

/// The tensor `layers.{i}.{name}` of the network, with its shape.
fn tensor<'f>(
    file: &'f ModelFile,
    i: usize,
    name: &str,
) -> Result<(&'f [usize], &'f [f32]), NablaError> {
    let full = file.network.module().tensor_name(i, name);
    file.network
        .tensors()
        .into_iter()
        .find(|t| t.name == full)
        .map(|t| (t.shape, t.data))
        .ok_or_else(|| NablaError::Usage(format!("the network has no tensor {full}")))
}

/// The network's evaluation-mode forward pass from `x`; returns the scores' name. An image
/// network first reshapes the flat `[N, C·H·W]` input (C,H,W order) to `[N, C, H, W]`.
fn network(g: &mut Graph, file: &ModelFile, x: &str) -> Result<String, NablaError> {
    let mut h = x.to_string();
    if let Some(s) = file.network.spec().input_shape {
        let dims = [-1, s.channels as i64, s.height as i64, s.width as i64];
        let shape = g.i64s("image_shape", &dims);
        h = g.node("Reshape", &[&h, &shape], vec![]);
    }
    for (i, layer) in file.network.spec().layers.iter().enumerate() {
        let lookup = |name: &str| tensor(file, i, name);
        h = layer.kind().onnx(g, &lookup, &h)?;
    }
    Ok(h)
}

/// Softmax (classification) or the target's units (regression), as the graph's output.
fn output(g: &mut Graph, file: &ModelFile, scores: &str) -> ValueInfoProto {
    let spec = file.network.spec();
    match spec.task {
        Task::Classification => {
            g.node("Softmax", &[scores], vec![int("axis", 1)]);
            g.name_last_output(PROBABILITIES);
            value_info(PROBABILITIES, proto::FLOAT, spec.outputs())
        }
        Task::Regression => {
            let t = &file.preprocess.target;
            let scale = g.f64s("target_scale", &[], &[t.scale]);
            let center = g.f64s("target_center", &[], &[t.center]);
            let v = g.node("Cast", &[scores], vec![int("to", proto::DOUBLE.into())]);
            let v = g.node("Mul", &[&v, &scale], vec![]);
            let v = g.node("Add", &[&v, &center], vec![]);
            g.node("Cast", &[&v], vec![int("to", proto::FLOAT.into())]);
            g.name_last_output(VALUE);
            value_info(VALUE, proto::FLOAT, spec.outputs())
        }
    }
}

/// `classes`, the inputs' columns (`categorical_inputs[i]` is the input fed with column
/// `categorical_columns[i]`), the target and the full preprocessing, as JSON strings.
fn metadata(file: &ModelFile, inputs: &[Input]) -> Result<BTreeMap<String, String>, NablaError> {
    let p = &file.preprocess;
    let numeric: Vec<&str> = p
        .columns
        .iter()
        .filter_map(|c| match c {
            ColumnEncoding::Numeric { name, .. } => Some(name.as_str()),
            ColumnEncoding::Categorical { .. } => None,
        })
        .collect();
    let categorical: Vec<&str> = inputs.iter().filter_map(|i| i.column.as_deref()).collect();
    let categorical_inputs: Vec<&str> = inputs
        .iter()
        .filter(|i| i.column.is_some())
        .filter_map(|i| i.info.name.as_deref())
        .collect();
    let classes = match file.network.spec().task {
        Task::Classification => p.target.classes.clone(),
        Task::Regression => Vec::new(),
    };
    let mut m = BTreeMap::new();
    m.insert("classes".into(), to_json(&classes)?);
    m.insert("numeric_columns".into(), to_json(&numeric)?);
    m.insert("categorical_columns".into(), to_json(&categorical)?);
    m.insert("categorical_inputs".into(), to_json(&categorical_inputs)?);
    m.insert("target".into(), p.target.name.clone());
    m.insert("task".into(), file.network.spec().task.name().into());
    m.insert("preprocess".into(), to_json(p)?);
    m.insert("spec".into(), to_json(file.network.spec())?);
    Ok(m)
}

fn to_json(value: &(impl serde::Serialize + ?Sized)) -> Result<String, NablaError> {
    serde_json::to_string(value)
        .map_err(|e| NablaError::Usage(format!("cannot encode the ONNX metadata: {e}")))
}
