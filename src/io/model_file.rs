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

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::autograd::{Tape, Workspace};
use crate::data::Preprocess;
use crate::data::preprocess::{ColumnEncoding, Scaling, TargetEncoding};
use crate::error::NablaError;
use crate::kernels::softmax::softmax_rows;
use crate::nn::{Dtype, ModelSpec, Module, Network, Sequential, TensorRef};
use crate::task::Task;

/// The `format` metadata value.
pub const FORMAT: &str = "nabla";
/// The `format` metadata value of a file holding only a network's tensors ([`save_state`]).
pub const STATE_FORMAT: &str = "nabla-state";

/// The metadata entry of a state file ([`save_state`]) naming the network's module type (Rust's
/// `type_name`, e.g. `my_crate::Net`), so a command that cannot run it can say which it is.
pub const STATE_MODULE: &str = "module";
/// The `format_version` this build writes for networks of flat features (and reads).
pub const FORMAT_VERSION: &str = "1";

/// The `format_version` written for networks with image layers (the spec gains `input_shape`
/// and the layer kinds `conv2d`, `max_pool2d`, ...): a nabla that knows only version 1 then
/// says the file is newer instead of failing on an unknown layer. This build reads both.
pub const FORMAT_VERSION_IMAGES: &str = "2";

/// The `format_version` written for networks with a residual block (`{"type": "residual",
/// "layers": [...]}`, its tensors named `layers.{i}.block.{j}.…`): a nabla that reads only
/// versions 1 and 2 says the file is newer. This build reads all three.
pub const FORMAT_VERSION_BLOCKS: &str = "3";

/// The `format_version` a file of `spec` gets.
pub fn format_version(spec: &ModelSpec) -> &'static str {
    if spec
        .layers
        .iter()
        .any(|l| matches!(l, crate::nn::LayerSpec::Residual(_)))
    {
        FORMAT_VERSION_BLOCKS
    } else if spec.input_shape.is_some() || spec.layers.iter().any(|l| l.needs_image()) {
        FORMAT_VERSION_IMAGES
    } else {
        FORMAT_VERSION
    }
}
/// The largest header read (and written: nabla never writes a file it would refuse to read).
pub const MAX_HEADER: u64 = 16 << 20;

/// A model as stored: the network (spec, weights, running statistics), the preprocessing that
/// turns a file's row into its input, and the training settings.
#[derive(Debug)]
pub struct ModelFile {
    /// The network, with its spec.
    pub network: Network<Sequential>,
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

/// Writes `bytes` to `path` safely and atomically (see [`crate::io::output`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NablaError> {
    crate::io::output::write_atomic(path, bytes)
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

/// The file's bytes for `network` with `preprocess` and `training` settings (any serde value:
/// the CLI stores its run settings).
pub fn encode(
    network: &Network<Sequential>,
    preprocess: &Preprocess,
    training: &(impl Serialize + ?Sized),
) -> Result<Vec<u8>, NablaError> {
    encode_with(network, preprocess, training, &Extras::default())
}

/// [`encode`] plus `extras`.
pub fn encode_with(
    network: &Network<Sequential>,
    preprocess: &Preprocess,
    training: &(impl Serialize + ?Sized),
    extras: &Extras,
) -> Result<Vec<u8>, NablaError> {
    let mut extras = extras.clone();
    extras
        .metadata
        .extend(model_metadata(network, preprocess, training)?);
    encode_tensors(&network.tensors(), &extras)
}

/// The `__metadata__` entries of a model file: format, spec, preprocessing, training settings.
pub fn model_metadata(
    network: &Network<Sequential>,
    preprocess: &Preprocess,
    training: &(impl Serialize + ?Sized),
) -> Result<BTreeMap<String, String>, NablaError> {
    let spec = spec_for_file(network.spec(), preprocess)?;
    let mut metadata = BTreeMap::new();
    metadata.insert("format".into(), FORMAT.into());
    metadata.insert("format_version".into(), format_version(&spec).into());
    metadata.insert("spec".into(), to_json(&spec)?);
    metadata.insert("preprocess".into(), to_json(preprocess)?);
    metadata.insert("training".into(), to_json(training)?);
    Ok(metadata)
}

/// The spec as a file stores it: the class names are the preprocessing's (the data's), the one
/// source of truth, and must match the network's outputs.
fn spec_for_file(spec: &ModelSpec, preprocess: &Preprocess) -> Result<ModelSpec, NablaError> {
    let mut spec = spec.clone();
    let target = &preprocess.target;
    if spec.task != target.task {
        return Err(NablaError::Usage(format!(
            "the network does {} but the preprocessing's target is for {}",
            spec.task.name(),
            target.task.name()
        )));
    }
    if spec.task == Task::Classification && !target.classes.is_empty() {
        if target.classes.len() != spec.outputs() {
            return Err(NablaError::Usage(format!(
                "{} class names in the preprocessing for a network of {} outputs",
                target.classes.len(),
                spec.outputs()
            )));
        }
        spec.classes = target.classes.clone();
    }
    Ok(spec)
}

fn to_json(value: &(impl Serialize + ?Sized)) -> Result<String, NablaError> {
    serde_json::to_string(value)
        .map_err(|e| NablaError::Usage(format!("cannot encode the model: {e}")))
}

/// The safetensors bytes of a network's `tensors` and `extras` (tensors and metadata).
pub fn encode_tensors(tensors: &[TensorRef], extras: &Extras) -> Result<Vec<u8>, NablaError> {
    let metadata = &extras.metadata;
    let mut all: BTreeMap<String, (&'static str, Vec<u64>, Vec<u8>)> = BTreeMap::new();
    let dims = |shape: &[usize]| shape.iter().map(|&d| d as u64).collect::<Vec<u64>>();
    for t in tensors {
        let (dtype, bytes) = match t.dtype {
            Dtype::F32 => ("F32", t.data.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Dtype::I64 => (
                "I64",
                t.data
                    .iter()
                    .flat_map(|&x| (x as i64).to_le_bytes())
                    .collect(),
            ),
        };
        all.insert(t.name.to_string(), (dtype, dims(t.shape), bytes));
    }
    for (name, (shape, values)) in &extras.tensors {
        if !name.starts_with(EXTRA_PREFIX) {
            return Err(NablaError::Usage(format!(
                "extra tensor {name} must start with {EXTRA_PREFIX}"
            )));
        }
        let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        all.insert(name.clone(), ("F32", dims(shape), bytes));
    }
    let mut header = serde_json::Map::new();
    let json = |e: serde_json::Error| NablaError::Usage(format!("cannot encode the model: {e}"));
    header.insert(
        "__metadata__".to_string(),
        serde_json::to_value(metadata).map_err(json)?,
    );
    let mut offset = 0u64;
    for (name, (dtype, shape, bytes)) in &all {
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
    if header.len() as u64 > MAX_HEADER {
        return Err(header_too_big(header.len() as u64));
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset as usize);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, _, bytes) in all.values() {
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// The refusal of a header of `n` bytes, beyond [`MAX_HEADER`].
fn header_too_big(n: u64) -> NablaError {
    NablaError::Usage(format!(
        "the model file's header would be {n} bytes, more than the {MAX_HEADER} bytes nabla reads back (class or feature names too long or too many, or too many layers); shorten the names or use fewer classes or layers"
    ))
}

/// The header length of the model file of `network` with `preprocess` and `training`, without
/// its tensor data: what a front end checks against [`MAX_HEADER`] before training.
pub fn header_len(
    network: &Network<Sequential>,
    preprocess: &Preprocess,
    training: &(impl Serialize + ?Sized),
) -> Result<u64, NablaError> {
    let metadata = model_metadata(network, preprocess, training)?;
    let json = |e: serde_json::Error| NablaError::Usage(format!("cannot encode the model: {e}"));
    let mut n = serde_json::to_string(&metadata).map_err(json)?.len() as u64;
    for t in network.tensors() {
        // `"NAME":{"dtype":"F32","shape":[..],"data_offsets":[..,..]},`
        let shape: String = t.shape.iter().map(|d| format!("{d},")).collect();
        n += t.name.len() as u64 + shape.len() as u64 + 90;
    }
    Ok(n + 32)
}

/// Saves `network` with its `preprocess` and `training` settings to `path`, atomically.
pub fn save(
    path: impl AsRef<Path>,
    network: &Network<Sequential>,
    preprocess: &Preprocess,
    training: &(impl Serialize + ?Sized),
) -> Result<(), NablaError> {
    let bytes = encode(network, preprocess, training)?;
    write_atomic(path.as_ref(), &bytes)
}

/// Saves a network alone, with no preprocessing of its own: the file's inputs `x0, x1, …` go
/// into the network unchanged. It loads like any model file ([`load`], `nabla predict`).
pub fn save_network(
    path: impl AsRef<Path>,
    network: &Network<Sequential>,
) -> Result<(), NablaError> {
    save(
        path,
        network,
        &identity(network.spec()),
        &serde_json::Value::Null,
    )
}

/// The preprocessing that changes nothing: inputs named `x0, x1, …`, center 0, scale 1.
fn identity(spec: &ModelSpec) -> Preprocess {
    let features: Vec<String> = (0..spec.inputs).map(|i| format!("x{i}")).collect();
    let columns = features
        .iter()
        .map(|n| ColumnEncoding::Numeric {
            name: n.clone(),
            impute: None,
        })
        .collect();
    Preprocess {
        center: vec![0.0; spec.inputs],
        scale: vec![1.0; spec.inputs],
        scaling: Scaling::None,
        columns,
        features,
        target: TargetEncoding {
            name: "y".into(),
            task: spec.task,
            classes: spec.classes.clone(),
            center: 0.0,
            scale: 1.0,
        },
    }
}

/// Saves the parameters and buffers of any network by name (PyTorch's `state_dict`), for
/// [`load_state`] into a network built the same way.
pub fn save_state<M: Module>(
    path: impl AsRef<Path>,
    network: &Network<M>,
) -> Result<(), NablaError> {
    let mut extras = Extras::default();
    extras.metadata.insert("format".into(), STATE_FORMAT.into());
    extras
        .metadata
        .insert("format_version".into(), FORMAT_VERSION.into());
    extras
        .metadata
        .insert(STATE_MODULE.into(), std::any::type_name::<M>().into());
    let bytes = encode_tensors(&network.tensors(), &extras)?;
    write_atomic(path.as_ref(), &bytes)
}

/// Loads a file written by [`save_state`] (or any model file) into `network` by name, like
/// PyTorch's `load_state_dict(strict=True)`: every tensor of the network must be there with its
/// shape, and the file may hold no other network tensor.
pub fn load_state<M: Module>(
    path: impl AsRef<Path>,
    network: &mut Network<M>,
) -> Result<(), NablaError> {
    load_state_with_extras(path.as_ref(), network).map(|_| ())
}

/// [`load_state`], also returning the [`Extras`] stored beside the network.
pub fn load_state_with_extras<M: Module>(
    path: &Path,
    network: &mut Network<M>,
) -> Result<Extras, NablaError> {
    let bytes = read_file(path)?;
    let Parsed {
        metadata,
        mut tensors,
    } = parse(path, &bytes)?;
    let extras = take_extras(&mut tensors, metadata);
    fill(path, network, tensors)?;
    Ok(extras)
}

/// Loads a model file, checking everything (see the module documentation).
pub fn load(path: impl AsRef<Path>) -> Result<ModelFile, NablaError> {
    let path = path.as_ref();
    decode(path, &read_file(path)?)
}

/// The whole file, its size checked before anything is allocated for it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, NablaError> {
    let (mut file, size) = crate::io::source::open(path)?;
    if size < 8 {
        return Err(too_short(path, size));
    }
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| NablaError::io(path, e))?;
    let n = u64::from_le_bytes(len);
    check_header_len(path, n, size)?;
    // Bounded by the file's real size, never by a number read from it.
    let mut all = Vec::with_capacity(8 + n as usize);
    all.extend_from_slice(&len);
    (&mut file)
        .take(n)
        .read_to_end(&mut all)
        .map_err(|e| NablaError::io(path, e))?;
    // Trailing bytes are refused before they are read (a huge sparse file costs nothing).
    if let Some(end) = data_end(&all[8..]) {
        let data = size - 8 - n;
        if data > end {
            return Err(trailing(path, data - end));
        }
    }
    all.reserve_exact((size - 8 - n) as usize);
    file.read_to_end(&mut all)
        .map_err(|e| NablaError::io(path, e))?;
    Ok(all)
}

/// The end of the last tensor's data as the header says (`None` if the header does not parse:
/// [`parse`] reports it).
fn data_end(header: &[u8]) -> Option<u64> {
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    Some(
        header
            .iter()
            .filter(|(n, _)| *n != "__metadata__")
            .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
            .max()
            .unwrap_or(0),
    )
}

fn bad(path: &Path, location: &str, message: impl Into<String>) -> NablaError {
    NablaError::data(path, location, message)
}

fn too_short(path: &Path, size: u64) -> NablaError {
    bad(
        path,
        "file",
        format!("{size} bytes: too short for a model file (truncated?)"),
    )
}

fn check_header_len(path: &Path, n: u64, size: u64) -> Result<(), NablaError> {
    if n == 0 || n > size - 8 {
        // An ONNX file, a CSV, anything else: its first 8 bytes are no header length.
        let message = match n > size {
            true => format!(
                "not a nabla model file: a .safetensors model starts with its header length, and these 8 bytes would say {n} bytes in a {size}-byte file (an ONNX or other file? give the model.safetensors that `nabla train` wrote)"
            ),
            false => format!(
                "the header length says {n} bytes but the file has {} after it (truncated or not a safetensors file)",
                size - 8
            ),
        };
        return Err(bad(path, "header", message));
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

/// A tensor as the file holds it: dtype, shape, raw little-endian bytes.
type RawTensor<'a> = (String, Vec<u64>, &'a [u8]);

/// A safetensors file taken apart: its metadata and every tensor, offsets checked.
struct Parsed<'a> {
    metadata: BTreeMap<String, String>,
    tensors: BTreeMap<String, RawTensor<'a>>,
}

/// Reads a model from the bytes of a file (`path` names it in errors).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<ModelFile, NablaError> {
    Ok(decode_with(path, bytes)?.0)
}

/// [`decode`], also returning the [`Extras`] stored beside the model.
pub fn decode_with(path: &Path, bytes: &[u8]) -> Result<(ModelFile, Extras), NablaError> {
    let Parsed {
        metadata,
        mut tensors,
    } = parse(path, bytes)?;
    let meta = |key: &str| {
        metadata.get(key).ok_or_else(|| {
            bad(
                path,
                "__metadata__",
                format!("the {key:?} entry is missing"),
            )
        })
    };
    if metadata.get("format").map(String::as_str) == Some(STATE_FORMAT) {
        return Err(state_file(path, &metadata, &tensors));
    }
    check_format(path, meta("format")?, meta("format_version")?)?;
    let spec: ModelSpec = serde_json::from_str(meta("spec")?)
        .map_err(|e| bad(path, "__metadata__.spec", format!("invalid JSON: {e}")))?;
    spec.validate()
        .map_err(|e| bad(path, "__metadata__.spec", e.to_string()))?;
    let preprocess = read_preprocess(path, meta("preprocess")?, spec.inputs)?;
    unique_classes(path, "__metadata__.spec", &spec.classes)?;
    unique_classes(path, "__metadata__.preprocess", &preprocess.target.classes)?;
    let training: serde_json::Value = match metadata.get("training") {
        Some(t) => serde_json::from_str(t)
            .map_err(|e| bad(path, "__metadata__.training", format!("invalid JSON: {e}")))?,
        None => serde_json::Value::Null,
    };
    check_spec_fits(path, &spec, &tensors)?;
    let extras = take_extras(&mut tensors, metadata.clone());
    let mut network =
        Network::from_spec(&spec, 0).map_err(|e| bad(path, "__metadata__.spec", e.to_string()))?;
    fill(path, &mut network, tensors)?;
    let file = ModelFile {
        network,
        preprocess,
        training,
    };
    Ok((file, extras))
}

/// Refuses a class named twice (predictions would have two `p_NAME` columns, one class could
/// never be told from the other); a long name is shown cut to 80 characters.
fn unique_classes(path: &Path, place: &str, classes: &[String]) -> Result<(), NablaError> {
    let mut seen = std::collections::HashSet::with_capacity(classes.len());
    for c in classes {
        if !seen.insert(c.as_str()) {
            let shown = crate::error::cut_name(c);
            return Err(bad(
                path,
                place,
                format!("the class {shown:?} is named twice; class names must be unique"),
            ));
        }
    }
    Ok(())
}

/// The spec's tensors must roughly fit in the file's network tensors before any is allocated
/// (a spec saying `linear 4 → 4e9` in a small file is refused here, not by the allocator).
fn check_spec_fits(
    path: &Path,
    spec: &ModelSpec,
    tensors: &BTreeMap<String, RawTensor>,
) -> Result<(), NablaError> {
    let have: u64 = tensors
        .iter()
        .filter(|(n, _)| !n.starts_with(EXTRA_PREFIX))
        .map(|(_, (_, _, raw))| raw.len() as u64)
        .sum();
    let need = spec
        .layers
        .iter()
        .try_fold(0u64, |acc, l| acc.checked_add(l.tensor_bytes()?));
    // A small mismatch is left to the per-tensor check, which names the tensor; what is
    // refused here is a spec whose allocation the file could not possibly fill.
    match need {
        Some(need) if need <= have.saturating_mul(2).saturating_add(1 << 20) => Ok(()),
        need => Err(bad(
            path,
            "__metadata__.spec",
            format!(
                "the spec's layers need {} bytes of tensors but the file holds {have}",
                need.map_or("more than 2^64".to_string(), |n| n.to_string())
            ),
        )),
    }
}

/// A state file ([`save_state`]) read as a model: it holds a user's modules, which only the
/// program that defines them can build. Names the module (or, for files that predate the
/// `module` entry, the tensors' top-level names) and what to do.
fn state_file(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    tensors: &BTreeMap<String, RawTensor>,
) -> NablaError {
    let module = match metadata.get(STATE_MODULE) {
        // The name as written (a crafted file's could be long: 200 characters at most).
        Some(m) => format!(
            "the user-defined module `{}`",
            m.chars().take(200).collect::<String>()
        ),
        None => {
            let mut tops: Vec<&str> = tensors
                .keys()
                .filter(|n| !n.starts_with(EXTRA_PREFIX))
                .filter_map(|n| n.split('.').next())
                .collect();
            tops.dedup();
            let shown = tops.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            format!("user-defined modules (parts {shown})")
        }
    };
    bad(
        path,
        "__metadata__.format",
        format!(
            "a state file (nabla::io::save_state) of {module}, not a model of built-in layers:              only the program that defines the module can build it, so this command cannot run it.              Load it there with nabla::io::load_state into a network built the same way; to use              inspect, predict, evaluate or export, build the network from built-in layers              (ModelSpec, or nabla train --layers) and save it with nabla::io::save_network"
        ),
    )
}

fn check_format(path: &Path, format: &str, version: &str) -> Result<(), NablaError> {
    if format != FORMAT {
        return Err(bad(
            path,
            "__metadata__.format",
            format!("{format:?}, expected \"{FORMAT}\""),
        ));
    }
    if ![FORMAT_VERSION, FORMAT_VERSION_IMAGES, FORMAT_VERSION_BLOCKS].contains(&version) {
        return Err(bad(
            path,
            "__metadata__.format_version",
            format!(
                "unknown format_version {version:?}; this nabla reads versions \"{FORMAT_VERSION}\", \"{FORMAT_VERSION_IMAGES}\" and \"{FORMAT_VERSION_BLOCKS}\" (a newer nabla may have written the file)"
            ),
        ));
    }
    Ok(())
}

fn read_preprocess(path: &Path, json: &str, inputs: usize) -> Result<Preprocess, NablaError> {
    let at = "__metadata__.preprocess";
    let preprocess: Preprocess =
        serde_json::from_str(json).map_err(|e| bad(path, at, format!("invalid JSON: {e}")))?;
    let p = &preprocess;
    if p.features.len() != inputs || p.center.len() != inputs || p.scale.len() != inputs {
        return Err(bad(
            path,
            at,
            format!(
                "{} features, {} centers and {} scales for a network of {inputs} inputs",
                p.features.len(),
                p.center.len(),
                p.scale.len(),
            ),
        ));
    }
    // Inputs are scaled in f32: each value must be a finite f32, and a scale non-zero in f32.
    let f32_ok = |v: f64| (v as f32).is_finite();
    if let Some(s) = p
        .scale
        .iter()
        .find(|s| !(f32_ok(**s) && (**s as f32) != 0.0 && (1.0 / (**s as f32)).is_finite()))
    {
        return Err(bad(
            path,
            at,
            format!("scale {s} (must be a finite non-zero number in f32)"),
        ));
    }
    if let Some(c) = p.center.iter().find(|c| !f32_ok(**c)) {
        return Err(bad(
            path,
            at,
            format!("center {c} (must be a finite number in f32)"),
        ));
    }
    Ok(preprocess)
}

/// The header and every tensor of a safetensors file, each tensor's offsets checked against
/// its dtype, shape and the data.
fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Parsed<'a>, NablaError> {
    let size = bytes.len() as u64;
    if size < 8 {
        return Err(too_short(path, size));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(len);
    check_header_len(path, n, size)?;
    let header_end = 8 + n as usize;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| {
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
    let mut tensors = BTreeMap::new();
    let mut ranges = Vec::new();
    for (name, value) in header.into_iter().filter(|(n, _)| n != "__metadata__") {
        let (raw, range) = tensor(path, &name, value, data)?;
        ranges.push((range, name.clone()));
        tensors.insert(name, raw);
    }
    check_layout(path, &mut ranges, data.len() as u64)?;
    Ok(Parsed { metadata, tensors })
}

/// Tensors may not share bytes, and nothing may follow the last one.
fn check_layout(
    path: &Path,
    ranges: &mut [([u64; 2], String)],
    data_len: u64,
) -> Result<(), NablaError> {
    ranges.sort();
    for pair in ranges.windows(2) {
        let ((a, a_name), (b, b_name)) = (&pair[0], &pair[1]);
        if b[0] < a[1] && b[0] < b[1] && a[0] < a[1] {
            return Err(bad(
                path,
                &format!("tensor {b_name}"),
                format!(
                    "offsets [{}, {}] overlap those of {a_name} [{}, {}]",
                    b[0], b[1], a[0], a[1]
                ),
            ));
        }
    }
    let end = ranges.iter().map(|(r, _)| r[1]).max().unwrap_or(0);
    if end != data_len {
        return Err(trailing(path, data_len - end));
    }
    Ok(())
}

fn trailing(path: &Path, extra: u64) -> NablaError {
    bad(
        path,
        "file",
        format!(
            "{extra} bytes after the last tensor (trailing garbage, or not a nabla model file)"
        ),
    )
}

/// One header entry checked against the data: its dtype, shape and bytes.
fn tensor<'a>(
    path: &Path,
    name: &str,
    value: serde_json::Value,
    data: &'a [u8],
) -> Result<(RawTensor<'a>, [u64; 2]), NablaError> {
    let at = format!("tensor {name}");
    let info: TensorInfo = serde_json::from_value(value)
        .map_err(|e| bad(path, &at, format!("bad header entry: {e}")))?;
    let width = match info.dtype.as_str() {
        "F32" => 4u64,
        "I64" | "F64" => 8,
        other => {
            return Err(bad(
                path,
                &at,
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
            &at,
            format!(
                "offsets [{begin}, {end}] do not hold a {} {:?} tensor within the {} data bytes (truncated or corrupt)",
                info.dtype,
                info.shape,
                data.len()
            ),
        ));
    }
    let raw = &data[begin as usize..end as usize];
    Ok(((info.dtype, info.shape, raw), [begin, end]))
}

fn f32s(raw: &[u8]) -> impl Iterator<Item = f32> + '_ {
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Moves the F32 tensors named `checkpoint.…` out of `tensors` into [`Extras`].
fn take_extras(
    tensors: &mut BTreeMap<String, RawTensor>,
    metadata: BTreeMap<String, String>,
) -> Extras {
    let mut extras = Extras {
        tensors: BTreeMap::new(),
        metadata,
    };
    for (name, (dtype, shape, raw)) in tensors.iter() {
        if name.starts_with(EXTRA_PREFIX) && dtype == "F32" {
            let shape = shape.iter().map(|&d| d as usize).collect();
            extras
                .tensors
                .insert(name.clone(), (shape, f32s(raw).collect()));
        }
    }
    tensors.retain(|name, _| !name.starts_with(EXTRA_PREFIX));
    extras
}

/// Fills every tensor of `network` from `tensors` by name, strictly: each must be there with
/// the network's shape and dtype, and none may be left over.
fn fill<M: Module>(
    path: &Path,
    network: &mut Network<M>,
    mut tensors: BTreeMap<String, RawTensor>,
) -> Result<(), NablaError> {
    network.load_tensors(|name, dtype, shape, dst| {
        // A counter (PyTorch's num_batches_tracked) may be left out: it keeps its value.
        if dtype == Dtype::I64 && !tensors.contains_key(name) {
            return Ok(());
        }
        let (got_dtype, got, raw) = tensors.remove(name).ok_or_else(|| {
            bad(
                path,
                "tensors",
                format!("{name} is missing (the spec needs it, shape {shape:?})"),
            )
        })?;
        let want: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let want_dtype = match dtype {
            Dtype::F32 => "F32",
            Dtype::I64 => "I64",
        };
        if got != want || got_dtype != want_dtype {
            return Err(bad(
                path,
                &format!("tensor {name}"),
                format!(
                    "{got_dtype} {got:?} in the file, but the spec needs {want_dtype} {want:?}"
                ),
            ));
        }
        match dtype {
            Dtype::F32 => {
                dst.iter_mut().zip(f32s(raw)).for_each(|(d, v)| *d = v);
                if let Some(i) = dst.iter().position(|v| !v.is_finite()) {
                    return Err(bad(
                        path,
                        &format!("tensor {name}"),
                        format!("element {i} is {} (weights must be finite numbers)", dst[i]),
                    ));
                }
            }
            Dtype::I64 => {
                for (d, c) in dst.iter_mut().zip(raw.chunks_exact(8)) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    *d = i64::from_le_bytes(b) as f32;
                }
            }
        }
        Ok(())
    })?;
    if let Some(extra) = tensors.keys().next() {
        return Err(bad(
            path,
            &format!("tensor {extra}"),
            "not part of the network the spec describes",
        ));
    }
    Ok(())
}

/// Buffers for [`Model::predict_into`], kept by the caller so that a prediction at a batch size
/// already seen allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    ws: Workspace,
    out: Vec<f32>,
}

impl Scratch {
    /// Empty buffers; they grow to the first batch's size.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A trained model ready to predict: a loaded model file whose preprocessing is applied to each
/// row before the network's evaluation-mode forward pass (the same [`Module::forward`] training
/// uses), then softmax (classification) or the target's units (regression).
///
/// ```
/// use nabla::io::Model;
/// use nabla::kernels::activation::Activation;
/// use nabla::nn::{ModelSpec, Network};
///
/// // A 2-input, 3-class network (normally trained by `nabla train --save model.safetensors`).
/// let network = Network::from_spec(&ModelSpec::mlp(2, &[8], Activation::Relu, 3), 1)?;
/// let path = std::env::temp_dir().join(format!("nabla-doc-{}.safetensors", std::process::id()));
/// nabla::io::save_network(&path, &network)?;
///
/// let model = Model::load(&path)?;
/// let p = model.predict(&[0.5, -1.0])?;
/// assert_eq!(p.len(), 3);
/// assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// assert_eq!(model.classes(), ["0", "1", "2"]);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Model {
    file: ModelFile,
}

impl Model {
    /// Loads a model file (see [`load`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, NablaError> {
        Ok(Self::new(load(path)?))
    }

    /// A model for an already loaded file.
    pub fn new(file: ModelFile) -> Self {
        Self { file }
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

    /// Class names in output order (classification; empty for regression): the data's, as the
    /// preprocessing holds them.
    pub fn classes(&self) -> &[String] {
        let target = &self.file.preprocess.target.classes;
        if target.is_empty() {
            &self.spec().classes
        } else {
            target
        }
    }

    /// Values per prediction: the class count, or 1 for regression.
    pub fn outputs(&self) -> usize {
        self.spec().outputs()
    }

    /// Predicts one sample. `sample` holds the *encoded* row in [`Model::features`] order
    /// (numbers as in the data file, 1/0 for one-hot categories, raw pixel bytes for images);
    /// the model applies `(x − center) / scale` itself. Returns class probabilities
    /// (classification) or the predicted value in the target's units (regression).
    pub fn predict(&self, sample: &[f32]) -> Result<Vec<f32>, NablaError> {
        self.predict_batch(sample, 1)
    }

    /// Predicts `rows` samples stored row-major in `samples` (see [`Model::predict`]); returns
    /// `rows × outputs` values.
    pub fn predict_batch(&self, samples: &[f32], rows: usize) -> Result<Vec<f32>, NablaError> {
        Ok(self
            .predict_into(samples, rows, &mut Scratch::new())?
            .to_vec())
    }

    /// [`Model::predict_batch`] into the caller's [`Scratch`]: allocates nothing once a batch of
    /// this size has been seen, and borrows only the scratch.
    pub fn predict_into<'s>(
        &self,
        samples: &[f32],
        rows: usize,
        scratch: &'s mut Scratch,
    ) -> Result<&'s [f32], NablaError> {
        let n = self.spec().inputs;
        if rows.checked_mul(n) != Some(samples.len()) {
            return Err(NablaError::Shape(format!(
                "{rows} samples of {n} inputs need {} values, got {}",
                rows.saturating_mul(n),
                samples.len()
            )));
        }
        let network = &self.file.network;
        let p = &self.file.preprocess;
        let mut tape = Tape::new(network.params(), &mut scratch.ws).without_grad();
        let x = tape.input_with(rows, n, |buf| {
            for (row, x) in buf.chunks_exact_mut(n).zip(samples.chunks_exact(n)) {
                for (((o, &v), &c), &s) in row.iter_mut().zip(x).zip(&p.center).zip(&p.scale) {
                    *o = ((f64::from(v) - c) / s) as f32;
                }
            }
        });
        let out = network.forward(&mut tape, x)?;
        let scores = tape.value(out);
        let (len, width) = (scores.len(), scores.cols());
        scratch.out.resize(len, 0.0);
        match network.spec().task {
            Task::Classification => softmax_rows(scores.data(), width, &mut scratch.out),
            Task::Regression => {
                let t = &p.target;
                for (o, &v) in scratch.out.iter_mut().zip(scores.data()) {
                    *o = (t.center + t.scale * f64::from(v)) as f32;
                }
            }
        }
        Ok(&scratch.out)
    }
}
