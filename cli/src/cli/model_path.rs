//! `--model PATH` for every subcommand that reads a model: a model file, or a run folder
//! (`runs/first-try`) whose `model.safetensors` is meant. A path that is missing or cannot be
//! read is the user's error (exit code 2), like missing data.

use std::path::{Path, PathBuf};

use nabla::NablaError;
use nabla::io::ModelFile;

/// The model file `path` stands for: `path` itself, or `path/model.safetensors` for a folder.
pub fn resolve(path: &Path) -> Result<PathBuf, NablaError> {
    if path.is_dir() {
        let inside = path.join("model.safetensors");
        if inside.is_file() {
            return Ok(inside);
        }
        return Err(NablaError::data(
            path,
            "path",
            "a folder without model.safetensors (give a model file, or a run folder written by \
             `nabla train`)",
        ));
    }
    if !path.exists() {
        return Err(NablaError::data(path, "path", "no such model file"));
    }
    Ok(path.to_path_buf())
}

/// Loads the model `path` stands for (see [`resolve`]); a file that cannot be read is reported
/// as the user's error, with the reason.
pub fn load(path: &Path) -> Result<(PathBuf, ModelFile), NablaError> {
    let file = resolve(path)?;
    match nabla::io::load(&file) {
        Ok(model) => Ok((file, model)),
        Err(NablaError::Io { path, error }) => Err(NablaError::data(
            path,
            "file",
            format!("cannot read the model file: {error}"),
        )),
        Err(e) => Err(e),
    }
}

/// [`load`] for a command that runs rows through the network (predict, evaluate, explain): the
/// model's tensors and the values one row keeps must fit in the memory available
/// ([`super::memory::check_model`]) before any row is read.
pub fn load_to_run(path: &Path) -> Result<(PathBuf, ModelFile), NablaError> {
    let (file, model) = load(path)?;
    super::memory::check_model(model.network.spec(), 1)?;
    Ok((file, model))
}
