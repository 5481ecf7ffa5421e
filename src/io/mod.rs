//! Files that outlive the process: the one-file model format ([`model_file`]), the [`Model`]
//! type that loads one and predicts with it, and [`input`], which reads new rows (CSV columns
//! matched by name, IDX images) for a saved model; [`onnx`] writes a model as an ONNX graph.
//! Every input file is opened through [`source`] (regular files only, bounded reads).
//! This module owns the on-disk layouts; it must not train.

pub mod input;
pub mod model_file;
pub mod onnx;
pub mod output;
pub mod source;

pub use model_file::{
    EXTRA_PREFIX, Extras, FORMAT, FORMAT_VERSION, Model, ModelFile, STATE_FORMAT, Scratch, decode,
    decode_with, encode, encode_with, load, load_state, save, save_network, save_state,
    write_atomic,
};
