//! The library's one error type, and the structured messages it carries. Every variant carries
//! the facts a user needs to fix the problem without a debugger: the file, the record, what was
//! found and what was expected.
//!
//! What this module must not do: know how a front end spells its settings. A message that
//! names a run setting (the column to leave out, the validation fraction) stores it as a
//! [`Mention`] of a [`Setting`] inside a [`Message`], never as the text of a command-line flag.
//! `Display` words it in the library's terms, as the settings key (`` `drop` ``,
//! `` `val_split = 0` ``); a front end renders the very same message in its own words with
//! [`NablaError::render`] (the CLI: `--drop`, `--val-split 0`).
//!
//! ```
//! use nabla::error::{Mention, Message, NablaError, Setting};
//! let e = NablaError::Settings(
//!     Message::new().text("2 rows; pass ").value(Setting::ValSplit, "0"),
//! );
//! assert_eq!(e.to_string(), "2 rows; pass `val_split = 0`");
//! // A front end with its own names for settings:
//! let cli = e.render(|m: &Mention| match m {
//!     Mention::Value(s, v) => format!("--{} {v}", s.key().replace('_', "-")),
//!     other => other.library_words(),
//! });
//! assert_eq!(cli, "2 rows; pass --val-split 0");
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything that can go wrong in nabla's library code.
#[derive(Debug, thiserror::Error)]
pub enum NablaError {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {error}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error (part of the message, so not repeated as a `source`).
        error: std::io::Error,
    },
    /// A data file is malformed: names the file, where in it, and what was expected.
    #[error("{path}: {location}: {message}")]
    Data {
        /// The file involved.
        path: PathBuf,
        /// Where in the file: `line 12, column "age"`, `header`, `byte 16`, ...
        location: String,
        /// What was found and what was expected (it may name a setting that would help).
        message: Message,
    },
    /// Settings that cannot work together, or a value out of range, in plain text that names
    /// no setting (a message that does is a [`NablaError::Settings`]).
    #[error("{0}")]
    Usage(String),
    /// Settings that cannot work together, or a value out of range, in a message that names
    /// the settings involved (see [`NablaError::render`]).
    #[error("{0}")]
    Settings(Message),
    /// Tensor shapes that do not fit an operation.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Training produced a non-finite loss or gradient; the message advises on the settings.
    #[error("{0}")]
    Diverged(Message),
    /// Another process of a distributed run failed, or did not answer in time.
    #[error("{0}")]
    Distributed(String),
}

impl NablaError {
    /// True for errors caused by the user's data or settings (exit code 2 at the CLI), false for
    /// failures of the environment or of training itself (exit code 1).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            NablaError::Data { .. } | NablaError::Usage(_) | NablaError::Settings(_)
        )
    }

    /// Builds an [`NablaError::Data`] with a plain-text message.
    pub fn data(
        path: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::data_with(path, location, Message::new().text(message))
    }

    /// Builds an [`NablaError::Data`] whose message names settings.
    pub fn data_with(
        path: impl Into<PathBuf>,
        location: impl Into<String>,
        message: Message,
    ) -> Self {
        NablaError::Data {
            path: path.into(),
            location: location.into(),
            message,
        }
    }

    /// Builds an [`NablaError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NablaError::Io {
            path: path.into(),
            error: source,
        }
    }

    /// The error as `Display` shows it, but with every [`Mention`] worded by `words`: how a
    /// front end names the settings (a flag, a form field). `Display` is
    /// `render(Mention::library_words)`.
    pub fn render(&self, words: impl Fn(&Mention) -> String) -> String {
        match self {
            NablaError::Data {
                path,
                location,
                message,
            } => format!("{}: {location}: {}", path.display(), message.render(words)),
            NablaError::Settings(message) | NablaError::Diverged(message) => message.render(words),
            other => other.to_string(),
        }
    }
}

/// A run setting that a message can name. Each is known by its settings key ([`Setting::key`]):
/// the `config.toml` key of `nabla train` (or, for [`Setting::Weight`], of `nabla explain`),
/// which a front end spells its own way (the CLI's flags are the keys with dashes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    /// The target column's name.
    Target,
    /// The feature columns to read.
    Features,
    /// Columns to leave out.
    Drop,
    /// The CSV field delimiter.
    Delimiter,
    /// Classification or regression.
    Task,
    /// What to do with missing cells.
    Impute,
    /// A separate test file.
    TestData,
    /// The fraction of rows held out for testing.
    TestSplit,
    /// The fraction of training rows held out for validation.
    ValSplit,
    /// The number of epochs.
    Epochs,
    /// The hidden layers' sizes.
    Hidden,
    /// Rows per mini-batch.
    BatchSize,
    /// The (initial) learning rate; its key is `lr`.
    #[serde(rename = "lr")]
    LearningRate,
    /// Weight decay.
    WeightDecay,
    /// The dropout probability.
    Dropout,
    /// The gradient-norm clipping threshold.
    ClipGradNorm,
    /// Early stopping's patience (and keeping the best epoch's weights).
    EarlyStopping,
    /// Worker threads.
    Threads,
    /// The weight `nabla explain` follows (`W1[j,i]`, `b1[j]`).
    Weight,
    /// The layer stack, described in words (`conv 32 3 pad 1, relu, ...`).
    Layers,
    /// The shape `CxHxW` of one sample read as an image.
    ImageShape,
    /// Image augmentation (`shift=2,rotate=10,flip`).
    Augment,
    /// How inputs are scaled (`standard`, `minmax`, `none`).
    Scale,
}

impl Setting {
    /// Every setting, in declaration order.
    pub const ALL: [Setting; 23] = [
        Setting::Target,
        Setting::Features,
        Setting::Drop,
        Setting::Delimiter,
        Setting::Task,
        Setting::Impute,
        Setting::TestData,
        Setting::TestSplit,
        Setting::ValSplit,
        Setting::Epochs,
        Setting::Hidden,
        Setting::BatchSize,
        Setting::LearningRate,
        Setting::WeightDecay,
        Setting::Dropout,
        Setting::ClipGradNorm,
        Setting::EarlyStopping,
        Setting::Threads,
        Setting::Weight,
        Setting::Layers,
        Setting::ImageShape,
        Setting::Augment,
        Setting::Scale,
    ];

    /// The snake_case settings key: `val_split`, `lr`, ... (the `config.toml` key).
    pub fn key(self) -> &'static str {
        match self {
            Setting::Target => "target",
            Setting::Features => "features",
            Setting::Drop => "drop",
            Setting::Delimiter => "delimiter",
            Setting::Task => "task",
            Setting::Impute => "impute",
            Setting::TestData => "test_data",
            Setting::TestSplit => "test_split",
            Setting::ValSplit => "val_split",
            Setting::Epochs => "epochs",
            Setting::Hidden => "hidden",
            Setting::BatchSize => "batch_size",
            Setting::LearningRate => "lr",
            Setting::WeightDecay => "weight_decay",
            Setting::Dropout => "dropout",
            Setting::ClipGradNorm => "clip_grad_norm",
            Setting::EarlyStopping => "early_stopping",
            Setting::Threads => "threads",
            Setting::Weight => "weight",
            Setting::Layers => "layers",
            Setting::ImageShape => "image_shape",
            Setting::Augment => "augment",
            Setting::Scale => "scale",
        }
    }
}

/// Something a message names that a front end words its own way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mention {
    /// A setting by name: `` `dropout` ``.
    Setting(Setting),
    /// A setting given a value, written as the user would type it (a column name quoted):
    /// `` `drop = "id"` ``.
    Value(Setting, String),
    /// A learning-rate sweep: a short run that raises the rate exponentially and suggests one
    /// below where the loss was lowest (a front end may offer one as a command).
    LrSweep,
}

impl Mention {
    /// The library's own words: `` `dropout` ``, `` `val_split = 0` ``, `a learning-rate sweep`.
    pub fn library_words(&self) -> String {
        match self {
            Mention::Setting(s) => format!("`{}`", s.key()),
            Mention::Value(s, value) => format!("`{} = {value}`", s.key()),
            Mention::LrSweep => "a learning-rate sweep".to_string(),
        }
    }
}

impl fmt::Display for Mention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.library_words())
    }
}

/// One piece of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Words shown as they are.
    Text(String),
    /// A setting (or tool) that each front end names its own way.
    Mention(Mention),
}

/// A message for a user: text with [`Mention`]s of settings in it. `Display` words the mentions
/// in the library's terms; [`Message::render`] in the caller's.
///
/// ```
/// use nabla::error::{Message, Setting};
/// let m = Message::new().text("use ").setting(Setting::Dropout).text(" or more data");
/// assert_eq!(m.to_string(), "use `dropout` or more data");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Message {
    parts: Vec<Part>,
}

impl Message {
    /// An empty message, to be built with [`Message::text`], [`Message::setting`], ...
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends words.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// Appends a [`Mention`].
    pub fn mention(mut self, mention: Mention) -> Self {
        self.parts.push(Part::Mention(mention));
        self
    }

    /// Appends a setting by name ([`Mention::Setting`]).
    pub fn setting(self, setting: Setting) -> Self {
        self.mention(Mention::Setting(setting))
    }

    /// Appends a setting with a value ([`Mention::Value`]).
    pub fn value(self, setting: Setting, value: impl Into<String>) -> Self {
        self.mention(Mention::Value(setting, value.into()))
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The message with every mention worded by `words`.
    pub fn render(&self, words: impl Fn(&Mention) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Mention(mention) => out.push_str(&words(mention)),
            }
        }
        out
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Mention::library_words))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::new().text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::new().text(text)
    }
}

/// The most characters of a class name or category value a message shows.
pub const SHOWN_CHARS: usize = 80;

/// A class name or category value as messages show it: at most [`SHOWN_CHARS`] characters,
/// with an ellipsis (`…`) when cut, so a 50 MB name never fills a terminal.
pub fn cut_name(name: &str) -> String {
    match name.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(m: &Mention) -> String {
        match m {
            Mention::Setting(s) => format!("--{}", s.key().replace('_', "-")),
            Mention::Value(s, v) => format!("--{} {v}", s.key().replace('_', "-")),
            Mention::LrSweep => "nabla lr-find".into(),
        }
    }

    #[test]
    fn display_names_settings_by_key_and_render_by_the_callers_words() {
        let e = NablaError::data_with(
            "t.csv",
            "line 2",
            Message::new()
                .text("missing; pass ")
                .value(Setting::Impute, "mean")
                .text(" or ")
                .setting(Setting::TestData),
        );
        assert_eq!(
            e.to_string(),
            "t.csv: line 2: missing; pass `impute = mean` or `test_data`"
        );
        assert_eq!(
            e.render(flags),
            "t.csv: line 2: missing; pass --impute mean or --test-data"
        );
    }

    #[test]
    fn render_with_library_words_is_display_for_every_variant() {
        let errors = [
            NablaError::io("f", std::io::Error::other("gone")),
            NablaError::data("f", "header", "plain"),
            NablaError::Usage("plain".into()),
            NablaError::Settings(Message::new().setting(Setting::Threads).text(" must be 1+")),
            NablaError::Shape("2×3 and 4×5".into()),
            NablaError::Diverged(Message::new().text("NaN")),
        ];
        for e in &errors {
            assert_eq!(e.render(Mention::library_words), e.to_string());
            assert!(!e.to_string().contains("--"), "{e}");
        }
    }

    #[test]
    fn keys_are_unique_snake_case_and_match_serde() {
        let mut keys: Vec<&str> = Setting::ALL.iter().map(|s| s.key()).collect();
        for (s, key) in Setting::ALL.iter().zip(&keys) {
            assert_eq!(serde_json::to_string(s).unwrap(), format!("{key:?}"));
            assert!(key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Setting::ALL.len());
    }

    #[test]
    fn messages_round_trip_through_serde() {
        let m = Message::new()
            .text("try ")
            .mention(Mention::LrSweep)
            .value(Setting::ValSplit, "0");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
    }

    #[test]
    fn long_names_are_cut_to_80_characters() {
        assert_eq!(cut_name("short"), "short");
        let exact = "é".repeat(SHOWN_CHARS);
        assert_eq!(cut_name(&exact), exact);
        let long = "x".repeat(1000);
        assert_eq!(cut_name(&long), format!("{}…", "x".repeat(SHOWN_CHARS)));
    }
}
