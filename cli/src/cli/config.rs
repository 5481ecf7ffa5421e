//! Config files for `nabla train`: a TOML file's keys are the flags' names (`batch_size = 64`
//! for `--batch-size 64`). `--config FILE` turns the file into flags placed before the ones on
//! the command line, so flags given as well override the file; an unknown key is an error that
//! suggests the closest known one. Every run writes `config.toml` from the parsed flags (given
//! or defaulted), so `nabla train --config runs/x/config.toml` repeats the run exactly.
//!
//! The keys are read off clap's own description of `nabla train`, so a new flag is a config key
//! with no change here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Command;
use nabla::config::RunConfig;

/// Flags that are about where and how a run is reported, not what it computes: they are never
/// written to config.toml and may not appear in a config file.
pub const NOT_SETTINGS: [&str; 10] = [
    "config",
    "overwrite",
    "accept_changed_data",
    "name",
    "run_dir",
    "no_save",
    "quiet",
    "verbose",
    "metrics_out",
    "help",
];

/// Keys holding paths, resolved against the config file's folder when relative.
const PATH_KEYS: [&str; 2] = ["data", "test_data"];

/// The setting keys of `nabla train`, in the order of its flags.
pub fn keys(train: &Command) -> Vec<String> {
    train
        .get_arguments()
        .filter(|a| !a.is_positional())
        .map(|a| a.get_id().to_string())
        .filter(|id| !NOT_SETTINGS.contains(&id.as_str()))
        .collect()
}

/// Expands `nabla train ... --config FILE ...`: the file's settings become flags inserted right
/// after `train`, before the user's own flags (the last occurrence of a flag wins).
pub fn expand(argv: Vec<OsString>, train: &Command) -> Result<Vec<OsString>> {
    if argv.get(1).and_then(|a| a.to_str()) != Some("train") {
        return Ok(argv);
    }
    let mut file = None;
    let mut rest = argv[2..].iter();
    while let Some(a) = rest.next() {
        let Some(a) = a.to_str() else { continue };
        if a == "--config" {
            file = rest.next().map(PathBuf::from);
        } else if let Some(f) = a.strip_prefix("--config=") {
            file = Some(PathBuf::from(f));
        } else if a == "--" {
            break;
        }
    }
    let Some(file) = file else {
        return Ok(argv);
    };
    let mut out: Vec<OsString> = argv[..2].to_vec();
    out.extend(flags_from_file(&file, train)?);
    out.extend(argv[2..].iter().cloned());
    Ok(out)
}

/// A config file's size limit: a run's settings take a few hundred bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Tables nested deeper than this are refused before parsing (settings are flat keys).
pub const MAX_CONFIG_NESTING: usize = 8;

/// Refuses a config file too large or too deeply nested to be a run's settings, before the
/// TOML parser spends memory on it.
fn check_shape(text: &str) -> std::result::Result<(), String> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "{} bytes; a config file holds at most {MAX_CONFIG_BYTES} (settings are a few hundred bytes)",
            text.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            deepest = deepest.max(header.matches('.').count() + 1);
        }
        for c in line.bytes() {
            match c {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b'#' => break,
                _ => {}
            }
            deepest = deepest.max(depth);
        }
    }
    if deepest > MAX_CONFIG_NESTING {
        return Err(format!(
            "tables or lists nested {deepest} deep; settings are flat keys (at most {MAX_CONFIG_NESTING} levels are read)"
        ));
    }
    Ok(())
}

/// The flags a config file stands for.
pub fn flags_from_file(path: &Path, train: &Command) -> Result<Vec<OsString>> {
    flags_from_table(path, &read_table(path)?, train)
}

/// Checks every setting of `config` with the flags' own parsers, as if each were given on the
/// command line: settings stored in a checkpoint (`source`) are validated like flags, so a
/// crafted `lr = -1` or `threads = 1000000` is refused (exit 2) naming the file and key.
pub fn check_settings(train: &Command, config: &RunConfig, source: &Path) -> Result<()> {
    let text = to_toml(train, config)?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        nabla::NablaError::data(source, "settings", format!("cannot be read back: {e}"))
    })?;
    flags_from_table(source, &table, train).map(|_| ())
}

/// The flags a table of settings stands for (`path`: the file it came from, in messages, and
/// the folder relative data paths are read from).
fn flags_from_table(path: &Path, table: &toml::Table, train: &Command) -> Result<Vec<OsString>> {
    let bad = |location: String, message: String| -> anyhow::Error {
        nabla::NablaError::data(path, location, message).into()
    };
    let known = keys(train);
    let mut flags = Vec::new();
    for (key, value) in table {
        let Some(arg) = train
            .get_arguments()
            .find(|a| a.get_id() == key.as_str() && known.contains(key))
        else {
            let hint = did_you_mean(key, &known)
                .map(|k| format!("; did you mean '{k}'?"))
                .unwrap_or_default();
            return Err(bad(
                format!("key '{key}'"),
                format!("unknown setting{hint} (known: {})", known.join(", ")),
            ));
        };
        let long = format!("--{}", arg.get_long().unwrap_or(key));
        let takes_value = arg.get_action().takes_values();
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    flags.push(OsString::from(&long));
                }
                continue;
            }
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(bad(
                    format!("key '{key}'"),
                    format!("expected a string, number, boolean or list, got {other}"),
                ));
            }
        };
        if !takes_value {
            return Err(bad(
                format!("key '{key}'"),
                format!("{long} is a switch: write {key} = true or false"),
            ));
        }
        let text = match path.parent() {
            Some(dir)
                if PATH_KEYS.contains(&key.as_str())
                    && Path::new(&text).is_relative()
                    && !dir.as_os_str().is_empty() =>
            {
                dir.join(&text).to_string_lossy().into_owned()
            }
            _ => text,
        };
        check_value(arg, &long, &text).map_err(|m| bad(format!("key '{key}'"), m))?;
        flags.push(OsString::from(long));
        flags.push(OsString::from(text));
    }
    Ok(flags)
}

/// The config file's TOML table; a syntax error names its line and column.
fn read_table(path: &Path) -> Result<toml::Table> {
    let bytes = nabla::io::source::read_at_most(path, MAX_CONFIG_BYTES as u64, "config file")
        .map_err(|e| anyhow::anyhow!(e).context("reading the config file"))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| nabla::NablaError::data(path, "file", format!("not UTF-8 text: {e}")))?;
    check_shape(&text).map_err(|m| nabla::NablaError::data(path, "file", m))?;
    text.parse().map_err(|e: toml::de::Error| {
        let place = e
            .span()
            .map(|span| line_and_column(&text, span.start))
            .unwrap_or_else(|| "TOML".into());
        nabla::NablaError::data(path, place, format!("TOML syntax: {}", e.message().trim())).into()
    })
}

/// Parses `long text` with the flag's own parser, so a bad value is reported with the config
/// file and key rather than only the flag.
fn check_value(arg: &clap::Arg, long: &str, text: &str) -> Result<(), String> {
    Command::new("nabla-train")
        .arg(arg.clone())
        .try_get_matches_from(["nabla-train", long, text])
        .map(|_| ())
        .map_err(|e| clap_message(&e))
}

/// `line 3, column 7` of the byte `offset` in `text` (both counted from 1).
fn line_and_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}")
}

/// A clap error as one line, without its `error:` prefix and usage block.
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    parts.join(" ")
}

/// The text of a run's `config.toml`: the resolved [`RunConfig`] (serialized by serde), one
/// line per setting flag in the flags' order; a setting left unset (the run does not depend on
/// it) is written as a comment. Lists are written as the flag takes them (`"256,128"`).
pub fn to_toml(train: &Command, config: &RunConfig) -> Result<String> {
    let serde_json::Value::Object(values) = serde_json::to_value(config)? else {
        anyhow::bail!("a run config serializes to a map");
    };
    let mut s = String::from(
        "# Every setting of this run: `nabla train --config config.toml` repeats it exactly\n\
         # (flags given as well override these values).\n",
    );
    for id in keys(train) {
        let line = match values.get(&id) {
            None | Some(serde_json::Value::Null) if is_switch(train, &id) => {
                format!("{id} = false")
            }
            None | Some(serde_json::Value::Null) => format!("# {id}: not set (its default)"),
            Some(serde_json::Value::Bool(b)) => format!("{id} = {b}"),
            Some(serde_json::Value::String(v)) if PATH_KEYS.contains(&id.as_str()) => {
                let p = std::fs::canonicalize(v).unwrap_or_else(|_| PathBuf::from(v));
                format!("{id} = {}", toml::Value::String(p.to_string_lossy().into()))
            }
            Some(serde_json::Value::String(v)) => format!("{id} = {}", literal(v)),
            Some(serde_json::Value::Number(n)) => format!("{id} = {}", literal(&n.to_string())),
            Some(serde_json::Value::Array(items)) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                match id.as_str() {
                    // `--hidden 256,128` is one value; `--features a,b` splits on commas.
                    "hidden" => format!("{id} = {}", literal(&items.join(","))),
                    _ => {
                        let quoted: Vec<String> = items
                            .into_iter()
                            .map(|v| toml::Value::String(v).to_string())
                            .collect();
                        format!("{id} = [{}]", quoted.join(", "))
                    }
                }
            }
            Some(other) => format!("# {id}: {other}"),
        };
        s += &line;
        s.push('\n');
    }
    Ok(s)
}

/// Whether the flag `id` is a switch (`--batch-norm`) rather than one taking a value.
fn is_switch(train: &Command, id: &str) -> bool {
    train
        .get_arguments()
        .any(|a| a.get_id() == id && !a.get_action().takes_values())
}

/// A number as a TOML number, anything else as a TOML string.
fn literal(v: &str) -> String {
    if v.parse::<i64>().is_ok() {
        return v.to_string();
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() && !v.contains(|c: char| c.is_alphabetic() && c != 'e') => {
            let t = toml::Value::Float(f).to_string();
            // Round-trips exactly: TOML floats are f64 and `to_string` is shortest-exact.
            if t.parse::<f64>().ok() == Some(f) {
                t
            } else {
                toml::Value::String(v.into()).to_string()
            }
        }
        _ => toml::Value::String(v.into()).to_string(),
    }
}

/// The known key closest to `key`, if it looks like a typo or a common alias of it.
pub fn did_you_mean(key: &str, known: &[String]) -> Option<String> {
    let key = key.replace('-', "_").to_lowercase();
    let alias = match key.as_str() {
        "learning_rate" | "lr_rate" | "rate" => Some("lr"),
        "hidden_layers" | "hidden_sizes" => Some("hidden"),
        "optim" => Some("optimizer"),
        _ => None,
    };
    if let Some(a) = alias.filter(|a| known.iter().any(|k| k == a)) {
        return Some(a.to_string());
    }
    known
        .iter()
        .map(|k| (levenshtein(&key, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k.clone())
}

/// Edit distance (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_key() {
        let known: Vec<String> = ["hidden", "lr", "batch_size", "epochs", "seed", "optimizer"]
            .map(String::from)
            .to_vec();
        let dym = |k| did_you_mean(k, &known);
        assert_eq!(dym("learning_rate").as_deref(), Some("lr"));
        assert_eq!(dym("batchsize").as_deref(), Some("batch_size"));
        assert_eq!(dym("batch-size").as_deref(), Some("batch_size"));
        assert_eq!(dym("epoch").as_deref(), Some("epochs"));
        assert_eq!(dym("sed").as_deref(), Some("seed"));
        assert_eq!(dym("completely_else"), None);
    }

    #[test]
    fn numbers_stay_numbers_and_everything_else_is_a_string() {
        assert_eq!(literal("32"), "32");
        assert_eq!(literal("0.001"), "0.001");
        assert_eq!(literal("256,128"), "\"256,128\"");
        assert_eq!(literal("relu"), "\"relu\"");
        assert_eq!(literal("inf"), "\"inf\"");
    }
}
