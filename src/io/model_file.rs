//! The model file: one [safetensors](https://github.com/huggingface/safetensors) file holding a
//! trained network, named so PyTorch's `load_state_dict` accepts it for the equivalent
//! `nn.Sequential` held in an attribute `layers`.
//!
//! Layout: 8 bytes (little-endian `u64`) giving the header's length `N`, then `N` bytes of JSON
//! header (padded with spaces to a multiple of 8), then the tensors' bytes. The header maps each
//! tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into the bytes
//! after the header) and holds `__metadata__`, a map of strings:
//!
//! - `format` = `"nabla"`, `format_version` = `"1"`;
//! - `spec`: the [`ModelSpec`] JSON (`{"inputs", "layers": [...], "task", "classes"}`);
//! - `preprocess`: the [`Preprocess`] JSON: the network's input is `(x − center) / scale`;
//! - `training`: the run's settings as JSON.
//!
//! Tensors, `i` being the layer's index in the spec's layer list: linear layers
//! `layers.{i}.weight` F32 `[out, in]` and `layers.{i}.bias` F32 `[out]`; batch norm
//! `layers.{i}.weight`, `.bias`, `.running_mean`, `.running_var` F32 `[C]` and
//! `.num_batches_tracked` I64 `[]` (as in PyTorch's `BatchNorm1d` state dict). Activations and
//! dropout hold no tensors.
//!
//! Reading trusts nothing: the header length is checked against the file's size before anything
//! is allocated for it, every tensor's offsets against its dtype and shape and the data's size,
//! and every shape against the spec.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Preprocess;
use crate::error::NablaError;
use crate::kernels::Transpose;
use crate::kernels::activation::Activation;
use crate::kernels::matmul::matmul;
use crate::kernels::softmax::softmax_rows;
use crate::nn::{LayerSpec, ModelSpec, RunningStats, Sequential, Task};

/// The `format` metadata value.
pub const FORMAT: &str = "nabla";
/// The `format_version` this build writes and reads.
pub const FORMAT_VERSION: &str = "1";
/// The largest header accepted (as the safetensors reference implementation: 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// A model as stored: the network (spec, weights, running statistics), the preprocessing that
/// turns a file's row into its input, and the training settings.
#[derive(Clone, Debug)]
pub struct ModelFile {
    /// The network, with its spec.
    pub network: Sequential,
    /// How raw rows become network inputs.
    pub preprocess: Preprocess,
    /// The run's settings, as saved (any JSON).
    pub training: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk
/// (fsync), then renamed over `path`. A crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NablaError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| NablaError::Usage(format!("{}: not a file name", path.display())))?;
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        NablaError::io(path, e)
    })
}

/// The file's bytes for `network` with `preprocess` and `training` settings.
pub fn encode(
    network: &Sequential,
    preprocess: &Preprocess,
    training: &serde_json::Value,
) -> Result<Vec<u8>, NablaError> {
    encode_with(network, preprocess, training, &Extras::default())
}

/// Tensors and metadata stored beside a model (checkpoints: optimizer state, best weights).
/// Extra tensor names start with [`EXTRA_PREFIX`]; all are F32.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// Name → (shape, values).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Extra `__metadata__` entries.
    pub metadata: BTreeMap<String, String>,
}

/// The prefix of tensors that are not part of the network.
pub const EXTRA_PREFIX: &str = "checkpoint.";

/// [`encode`] plus `extras`.
pub fn encode_with(
    network: &Sequential,
    preprocess: &Preprocess,
    training: &serde_json::Value,
    extras: &Extras,
) -> Result<Vec<u8>, NablaError> {
    let spec = network.spec();
    let json = |e: serde_json::Error| NablaError::Usage(format!("cannot encode the model: {e}"));
    let mut tensors: BTreeMap<String, (&'static str, Vec<u64>, Vec<u8>)> = BTreeMap::new();
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let params = network.params();
    let find = |name: &str| {
        params
            .find(name)
            .map(|id| params.get(id))
            .ok_or_else(|| NablaError::Shape(format!("the network has no parameter {name}")))
    };
    let mut bn = 0;
    for (i, layer) in spec.layers.iter().enumerate() {
        match *layer {
            LayerSpec::Linear { inputs, outputs } => {
                let w = find(&format!("layers.{i}.weight"))?;
                let b = find(&format!("layers.{i}.bias"))?;
                tensors.insert(
                    format!("layers.{i}.weight"),
                    (
                        "F32",
                        vec![outputs as u64, inputs as u64],
                        f32_bytes(w.data()),
                    ),
                );
                tensors.insert(
                    format!("layers.{i}.bias"),
                    ("F32", vec![outputs as u64], f32_bytes(b.data())),
                );
            }
            LayerSpec::BatchNorm { features, .. } => {
                let c = vec![features as u64];
                let w = find(&format!("layers.{i}.weight"))?;
                let b = find(&format!("layers.{i}.bias"))?;
                let r = network.running_stats().get(bn).ok_or_else(|| {
                    NablaError::Shape(format!("layer {i}: no running statistics"))
                })?;
                bn += 1;
                tensors.insert(
                    format!("layers.{i}.weight"),
                    ("F32", c.clone(), f32_bytes(w.data())),
                );
                tensors.insert(
                    format!("layers.{i}.bias"),
                    ("F32", c.clone(), f32_bytes(b.data())),
                );
                tensors.insert(
                    format!("layers.{i}.running_mean"),
                    ("F32", c.clone(), f32_bytes(&r.mean)),
                );
                tensors.insert(
                    format!("layers.{i}.running_var"),
                    ("F32", c, f32_bytes(&r.var)),
                );
                tensors.insert(
                    format!("layers.{i}.num_batches_tracked"),
                    ("I64", Vec::new(), 0i64.to_le_bytes().to_vec()),
                );
            }
            _ => {}
        }
    }
    for (name, (shape, values)) in &extras.tensors {
        if !name.starts_with(EXTRA_PREFIX) {
            return Err(NablaError::Usage(format!(
                "extra tensor {name} must start with {EXTRA_PREFIX}"
            )));
        }
        tensors.insert(
            name.clone(),
            (
                "F32",
                shape.iter().map(|&d| d as u64).collect(),
                f32_bytes(values),
            ),
        );
    }
    let mut metadata = extras.metadata.clone();
    metadata.insert("format".to_string(), FORMAT.to_string());
    metadata.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    metadata.insert(
        "spec".to_string(),
        serde_json::to_string(spec).map_err(json)?,
    );
    metadata.insert(
        "preprocess".to_string(),
        serde_json::to_string(preprocess).map_err(json)?,
    );
    metadata.insert(
        "training".to_string(),
        serde_json::to_string(training).map_err(json)?,
    );
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".to_string(),
        serde_json::to_value(&metadata).map_err(json)?,
    );
    let mut offset = 0u64;
    for (name, (dtype, shape, bytes)) in &tensors {
        let end = offset + bytes.len() as u64;
        let info = TensorInfo {
            dtype: dtype.to_string(),
            shape: shape.clone(),
            data_offsets: [offset, end],
        };
        header.insert(name.clone(), serde_json::to_value(&info).map_err(json)?);
        offset = end;
    }
    let mut header = serde_json::to_string(&header).map_err(json)?.into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset as usize);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, _, bytes) in tensors.values() {
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// Saves `network` with its `preprocess` and `training` settings to `path`, atomically.
pub fn save(
    path: &Path,
    network: &Sequential,
    preprocess: &Preprocess,
    training: &serde_json::Value,
) -> Result<(), NablaError> {
    let bytes = encode(network, preprocess, training)?;
    write_atomic(path, &bytes)
}

/// Loads a model file, checking everything (see the module documentation).
pub fn load(path: &Path) -> Result<ModelFile, NablaError> {
    let mut file = std::fs::File::open(path).map_err(|e| NablaError::io(path, e))?;
    let size = file.metadata().map_err(|e| NablaError::io(path, e))?.len();
    if size < 8 {
        return Err(bad(
            path,
            "file",
            format!("{size} bytes: too short for a model file (truncated?)"),
        ));
    }
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| NablaError::io(path, e))?;
    let n = u64::from_le_bytes(len);
    check_header_len(path, n, size)?;
    // Bounded by the file's real size, never by a number read from it.
    let mut bytes = Vec::with_capacity((size - 8) as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| NablaError::io(path, e))?;
    let mut all = Vec::with_capacity(8 + bytes.len());
    all.extend_from_slice(&len);
    all.extend_from_slice(&bytes);
    decode(path, &all)
}

fn bad(path: &Path, location: &str, message: impl Into<String>) -> NablaError {
    NablaError::data(path, location, message)
}

fn check_header_len(path: &Path, n: u64, size: u64) -> Result<(), NablaError> {
    if n == 0 || n > size - 8 {
        return Err(bad(
            path,
            "header",
            format!(
                "the header length says {n} bytes but the file has {} after it (truncated or not a safetensors file)",
                size - 8
            ),
        ));
    }
    if n > MAX_HEADER {
        return Err(bad(
            path,
            "header",
            format!("the header length {n} exceeds the {MAX_HEADER}-byte limit"),
        ));
    }
    Ok(())
}

/// Reads a model from the bytes of a file (`path` names it in errors).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<ModelFile, NablaError> {
    Ok(decode_with(path, bytes)?.0)
}

/// [`decode`], also returning the [`Extras`] stored beside the model.
pub fn decode_with(path: &Path, bytes: &[u8]) -> Result<(ModelFile, Extras), NablaError> {
    let size = bytes.len() as u64;
    if size < 8 {
        return Err(bad(
            path,
            "file",
            format!("{size} bytes: too short for a model file (truncated?)"),
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(len);
    check_header_len(path, n, size)?;
    let header_end = 8 + n as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..header_end]).map_err(|e| {
            bad(
                path,
                "header",
                format!("not valid safetensors header JSON: {e}"),
            )
        })?;
    let data = &bytes[header_end..];

    let metadata: BTreeMap<String, String> = match header.get("__metadata__") {
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| {
            bad(
                path,
                "__metadata__",
                format!("expected a map of strings: {e}"),
            )
        })?,
        None => {
            return Err(bad(
                path,
                "__metadata__",
                "missing: not a nabla model file (no format, spec or preprocess)",
            ));
        }
    };
    let meta = |key: &str| {
        metadata.get(key).ok_or_else(|| {
            bad(
                path,
                "__metadata__",
                format!("the {key:?} entry is missing"),
            )
        })
    };
    let format = meta("format")?;
    if format != FORMAT {
        return Err(bad(
            path,
            "__metadata__.format",
            format!("{format:?}, expected \"{FORMAT}\""),
        ));
    }
    let version = meta("format_version")?;
    if version != FORMAT_VERSION {
        return Err(bad(
            path,
            "__metadata__.format_version",
            format!(
                "unknown format_version {version:?}; this nabla reads version \"{FORMAT_VERSION}\" (a newer nabla may have written the file)"
            ),
        ));
    }
    let spec: ModelSpec = serde_json::from_str(meta("spec")?)
        .map_err(|e| bad(path, "__metadata__.spec", format!("invalid JSON: {e}")))?;
    spec.validate()
        .map_err(|e| bad(path, "__metadata__.spec", e.to_string()))?;
    let preprocess: Preprocess = serde_json::from_str(meta("preprocess")?).map_err(|e| {
        bad(
            path,
            "__metadata__.preprocess",
            format!("invalid JSON: {e}"),
        )
    })?;
    if preprocess.features.len() != spec.inputs
        || preprocess.center.len() != spec.inputs
        || preprocess.scale.len() != spec.inputs
    {
        return Err(bad(
            path,
            "__metadata__.preprocess",
            format!(
                "{} features, {} centers and {} scales for a network of {} inputs",
                preprocess.features.len(),
                preprocess.center.len(),
                preprocess.scale.len(),
                spec.inputs
            ),
        ));
    }
    if let Some(s) = preprocess
        .scale
        .iter()
        .find(|s| !(s.is_finite() && **s != 0.0))
    {
        return Err(bad(
            path,
            "__metadata__.preprocess",
            format!("scale {s} (must be a finite non-zero number)"),
        ));
    }
    let training: serde_json::Value = match metadata.get("training") {
        Some(t) => serde_json::from_str(t)
            .map_err(|e| bad(path, "__metadata__.training", format!("invalid JSON: {e}")))?,
        None => serde_json::Value::Null,
    };

    // Every tensor the header lists, checked against the data.
    let mut tensors: BTreeMap<&str, (String, Vec<u64>, &[u8])> = BTreeMap::new();
    for (name, value) in &header {
        if name == "__metadata__" {
            continue;
        }
        let info: TensorInfo = serde_json::from_value(value.clone()).map_err(|e| {
            bad(
                path,
                &format!("tensor {name}"),
                format!("bad header entry: {e}"),
            )
        })?;
        let width = match info.dtype.as_str() {
            "F32" => 4u64,
            "I64" | "F64" => 8,
            other => {
                return Err(bad(
                    path,
                    &format!("tensor {name}"),
                    format!("dtype {other} (nabla reads F32, and I64 for num_batches_tracked)"),
                ));
            }
        };
        let elements = info
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let need = elements.and_then(|e| e.checked_mul(width));
        let [begin, end] = info.data_offsets;
        if begin > end || end > data.len() as u64 || need != Some(end - begin) {
            return Err(bad(
                path,
                &format!("tensor {name}"),
                format!(
                    "offsets [{begin}, {end}] do not hold a {} {:?} tensor within the {} data bytes (truncated or corrupt)",
                    info.dtype,
                    info.shape,
                    data.len()
                ),
            ));
        }
        tensors.insert(
            name.as_str(),
            (info.dtype, info.shape, &data[begin as usize..end as usize]),
        );
    }

    let mut extras = Extras {
        tensors: BTreeMap::new(),
        metadata: metadata.clone(),
    };
    for (name, (dtype, shape, raw)) in &tensors {
        if name.starts_with(EXTRA_PREFIX) && dtype == "F32" {
            let shape = shape.iter().map(|&d| d as usize).collect();
            let values = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            extras.tensors.insert(name.to_string(), (shape, values));
        }
    }
    tensors.retain(|name, _| !name.starts_with(EXTRA_PREFIX));
    let mut network =
        Sequential::new(&spec, 0).map_err(|e| bad(path, "__metadata__.spec", e.to_string()))?;
    let mut used = 0usize;
    let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>, NablaError> {
        let (dtype, got, raw) = tensors.get(name).ok_or_else(|| {
            bad(
                path,
                "tensors",
                format!("{name} is missing (the spec needs it, shape {shape:?})"),
            )
        })?;
        let want: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        if *got != want || dtype != "F32" {
            return Err(bad(
                path,
                &format!("tensor {name}"),
                format!("{dtype} {got:?} in the file, but the spec needs F32 {want:?}"),
            ));
        }
        used += 1;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let mut running = Vec::new();
    let mut values: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        match *layer {
            LayerSpec::Linear { inputs, outputs } => {
                let w = format!("layers.{i}.weight");
                let b = format!("layers.{i}.bias");
                values.insert(w.clone(), take(&w, &[outputs, inputs])?);
                values.insert(b.clone(), take(&b, &[outputs])?);
            }
            LayerSpec::BatchNorm { features, .. } => {
                for p in ["weight", "bias"] {
                    let name = format!("layers.{i}.{p}");
                    values.insert(name.clone(), take(&name, &[features])?);
                }
                let mean = take(&format!("layers.{i}.running_mean"), &[features])?;
                let var = take(&format!("layers.{i}.running_var"), &[features])?;
                running.push(RunningStats { mean, var });
            }
            _ => {}
        }
    }
    let tracked = spec
        .layers
        .iter()
        .enumerate()
        .filter(|(i, _)| tensors.contains_key(format!("layers.{i}.num_batches_tracked").as_str()))
        .count();
    if let Some(extra) = tensors.keys().find(|name| {
        !values.contains_key(**name)
            && !name.ends_with(".running_mean")
            && !name.ends_with(".running_var")
            && !name.ends_with(".num_batches_tracked")
    }) {
        return Err(bad(
            path,
            &format!("tensor {extra}"),
            "not part of the network the spec describes",
        ));
    }
    if used + tracked != tensors.len() {
        return Err(bad(
            path,
            "tensors",
            "running statistics for a layer that is not batch norm",
        ));
    }
    for id in network.params().ids() {
        let name = network.params().name(id).to_string();
        let v = values
            .remove(&name)
            .ok_or_else(|| bad(path, "tensors", format!("{name} is missing")))?;
        network
            .params_mut()
            .get_mut(id)
            .data_mut()
            .copy_from_slice(&v);
    }
    network.set_running_stats(running)?;
    Ok((
        ModelFile {
            network,
            preprocess,
            training,
        },
        extras,
    ))
}

/// Batches up to this size use the matrix-vector loop instead of the GEMM.
const SMALL_BATCH: usize = 4;

/// `Σ a[i]·b[i]`: with AVX2 and FMA (checked at run time) 32 lanes of fused multiply-adds,
/// otherwise eight independent partial sums the compiler vectorises. Either way the partial
/// sums are combined in a fixed order, so a given machine always gives the same bits.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        #[allow(clippy::needless_range_loop)]
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The AVX2 + FMA dot product: four 8-lane accumulators (32 elements per iteration).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads 8 floats at offsets i..i+32 ≤ n inside both slices.
    unsafe {
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    let mut total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for k in i..n {
        total += a[k] * b[k];
    }
    total
}

/// One layer of the inference network: plain data, no tape.
#[derive(Clone, Debug)]
enum Step {
    Linear {
        weight: Vec<f32>,
        bias: Vec<f32>,
        inputs: usize,
        outputs: usize,
    },
    Activation(Activation),
    /// `y = x·scale + shift` per column (batch norm folded with its running statistics).
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
}

/// A trained model ready to predict: loads a model file, applies its preprocessing and runs the
/// network in evaluation mode with buffers kept between calls, so a call at a batch size
/// already seen allocates nothing.
///
/// ```
/// use nabla::io::{Model, ModelFile};
/// use nabla::data::preprocess::{Preprocess, Scaling, TargetEncoding, ColumnEncoding};
/// use nabla::kernels::activation::Activation;
/// use nabla::nn::{ModelSpec, Sequential, Task};
///
/// // A 2-input, 3-class network (normally trained by `nabla train --save model.safetensors`).
/// let spec = ModelSpec::mlp(2, &[8], Activation::Relu, 3);
/// let network = Sequential::new(&spec, 1).unwrap();
/// let preprocess = Preprocess {
///     features: vec!["a".into(), "b".into()],
///     center: vec![0.0, 0.0],
///     scale: vec![1.0, 1.0],
///     scaling: Scaling::None,
///     columns: ["a", "b"].map(|n| ColumnEncoding::Numeric { name: n.into(), impute: None }).to_vec(),
///     target: TargetEncoding { name: "y".into(), task: Task::Classification,
///         classes: spec.classes.clone(), center: 0.0, scale: 1.0 },
/// };
/// let dir = std::env::temp_dir().join(format!("nabla-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("model.safetensors");
/// nabla::io::save(&path, &network, &preprocess, &serde_json::json!({"epochs": 0})).unwrap();
///
/// let mut model = Model::load(&path).unwrap();
/// let p = model.predict(&[0.5, -1.0]).unwrap();
/// assert_eq!(p.len(), 3);
/// assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Model {
    file: ModelFile,
    steps: Vec<Step>,
    scale: Vec<f64>,
    center64: Vec<f64>,
    a: Vec<f32>,
    b: Vec<f32>,
    out: Vec<f32>,
}

impl Model {
    /// Loads a model file (see [`load`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, NablaError> {
        Ok(Self::new(load(path.as_ref())?))
    }

    /// A model for an already loaded file.
    pub fn new(file: ModelFile) -> Self {
        let mut steps = Vec::new();
        let params = file.network.params();
        let get = |name: String| {
            params
                .find(&name)
                .map(|id| params.get(id).data().to_vec())
                .unwrap_or_default()
        };
        let mut bn = 0;
        for (i, layer) in file.network.spec().layers.iter().enumerate() {
            match *layer {
                LayerSpec::Linear { inputs, outputs } => steps.push(Step::Linear {
                    weight: get(format!("layers.{i}.weight")),
                    bias: get(format!("layers.{i}.bias")),
                    inputs,
                    outputs,
                }),
                LayerSpec::BatchNorm { eps, .. } => {
                    let gamma = get(format!("layers.{i}.weight"));
                    let beta = get(format!("layers.{i}.bias"));
                    let empty = RunningStats {
                        mean: Vec::new(),
                        var: Vec::new(),
                    };
                    let r = file.network.running_stats().get(bn).unwrap_or(&empty);
                    bn += 1;
                    // Exactly as Sequential::forward: s = γ/√(σ²+ε), t = β − μ·s.
                    let (scale, shift) = r.affine(&gamma, &beta, eps);
                    steps.push(Step::Affine { scale, shift });
                }
                LayerSpec::Dropout { .. } => {}
                other => {
                    if let Some(f) = other.activation() {
                        steps.push(Step::Activation(f));
                    }
                }
            }
        }
        let p = &file.preprocess;
        Self {
            scale: p.scale.clone(),
            center64: p.center.clone(),
            steps,
            file,
            a: Vec::new(),
            b: Vec::new(),
            out: Vec::new(),
        }
    }

    /// The loaded file: network, preprocessing and training settings.
    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// The network's spec.
    pub fn spec(&self) -> &ModelSpec {
        self.file.network.spec()
    }

    /// Input names in order (`column` or `column=category`).
    pub fn features(&self) -> &[String] {
        &self.file.preprocess.features
    }

    /// Class names in output order (classification; empty for regression).
    pub fn classes(&self) -> &[String] {
        &self.spec().classes
    }

    /// Values per prediction: the class count, or 1 for regression.
    pub fn outputs(&self) -> usize {
        self.spec().outputs()
    }

    /// Predicts one sample. `sample` holds the *encoded* row in [`Model::features`] order
    /// (numbers as in the data file, 1/0 for one-hot categories, raw pixel bytes for images);
    /// the model applies `(x − center) / scale` itself. Returns class probabilities
    /// (classification) or the predicted value in the target's units (regression).
    pub fn predict(&mut self, sample: &[f32]) -> Result<&[f32], NablaError> {
        self.predict_batch(sample, 1)
    }

    /// Predicts `rows` samples stored row-major in `samples` (see [`Model::predict`]); returns
    /// `rows × outputs` values. Allocates nothing once a batch of this size has been seen.
    pub fn predict_batch(&mut self, samples: &[f32], rows: usize) -> Result<&[f32], NablaError> {
        let n = self.spec().inputs;
        if rows.checked_mul(n) != Some(samples.len()) {
            return Err(NablaError::Shape(format!(
                "{rows} samples of {n} inputs need {} values, got {}",
                rows.saturating_mul(n),
                samples.len()
            )));
        }
        let wide = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Linear { outputs, .. } => *outputs,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .max(n);
        let need = rows * wide;
        if self.a.len() < need {
            self.a.resize(need, 0.0);
            self.b.resize(need, 0.0);
        }
        for (row, x) in self.a[..rows * n]
            .chunks_exact_mut(n)
            .zip(samples.chunks_exact(n))
        {
            for (((o, &v), &c), &s) in row.iter_mut().zip(x).zip(&self.center64).zip(&self.scale) {
                *o = ((f64::from(v) - c) / s) as f32;
            }
        }
        let mut width = n;
        let (mut cur, mut other) = (&mut self.a, &mut self.b);
        for step in &self.steps {
            match step {
                Step::Linear {
                    weight,
                    bias,
                    inputs,
                    outputs,
                } => {
                    let (k, m) = (*inputs, *outputs);
                    let y = &mut other[..rows * m];
                    if rows <= SMALL_BATCH {
                        // Matrix-vector products: faer's small-size path allocates per call.
                        for (yrow, xrow) in y.chunks_exact_mut(m).zip(cur.chunks_exact(k)) {
                            for (yo, wrow) in yrow.iter_mut().zip(weight.chunks_exact(k)) {
                                *yo = dot(wrow, xrow);
                            }
                        }
                    } else {
                        matmul(
                            rows,
                            m,
                            k,
                            &cur[..rows * k],
                            Transpose::No,
                            weight,
                            Transpose::Yes,
                            y,
                            false,
                        );
                    }
                    for row in y.chunks_exact_mut(m) {
                        for (o, &b) in row.iter_mut().zip(bias) {
                            *o += b;
                        }
                    }
                    std::mem::swap(&mut cur, &mut other);
                    width = m;
                }
                Step::Activation(f) => {
                    let len = rows * width;
                    f.forward(&cur[..len], &mut other[..len]);
                    std::mem::swap(&mut cur, &mut other);
                }
                Step::Affine { scale, shift } => {
                    for row in cur[..rows * width].chunks_exact_mut(width) {
                        for ((v, &s), &t) in row.iter_mut().zip(scale).zip(shift) {
                            *v = *v * s + t;
                        }
                    }
                }
            }
        }
        let len = rows * width;
        if self.out.len() < len {
            self.out.resize(len, 0.0);
        }
        let out = &mut self.out[..len];
        match self.file.network.spec().task {
            Task::Classification => softmax_rows(&cur[..len], width, out),
            Task::Regression => {
                let t = &self.file.preprocess.target;
                for (o, &v) in out.iter_mut().zip(&cur[..len]) {
                    *o = (t.center + t.scale * f64::from(v)) as f32;
                }
            }
        }
        Ok(&self.out[..len])
    }
}
