//! Library messages in the command line's words. The library names run settings by their keys
//! (`` `val_split = 0` ``, see [`nabla::error::Setting`]); here, and only here, they become the
//! flags a user types (`--val-split 0`). Every library error and fit diagnosis the binary prints
//! goes through [`words`].

use nabla::NablaError;
use nabla::error::{Mention, Message, Setting};
use nabla::train::{Diagnosis, Verdict};
use serde::Serialize;

/// The flag of a setting: its key with dashes (`val_split` → `--val-split`, `lr` → `--lr`);
/// config files use the keys themselves, so the two cannot drift apart.
pub fn flag(setting: Setting) -> String {
    format!("--{}", setting.key().replace('_', "-"))
}

/// A mention as the command line says it: `--dropout`, `--drop "id"`, `nabla lr-find`.
pub fn words(mention: &Mention) -> String {
    match mention {
        Mention::Setting(setting) => flag(*setting),
        Mention::Value(setting, value) => format!("{} {value}", flag(*setting)),
        Mention::LrSweep => "nabla lr-find".to_string(),
    }
}

/// A library message with flag names.
pub fn message(message: &Message) -> String {
    message.render(words)
}

/// What `{error:#}` prints (each cause after the last, joined by `: `), with every library error
/// in the chain worded for the command line.
pub fn error_chain(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|cause| match cause.downcast_ref::<NablaError>() {
            Some(e) => e.render(words),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// The diagnosis line printed after training.
pub fn diagnosis_line(d: &Diagnosis) -> String {
    format!(
        "diagnosis: {} — {}{}. Suggestion: {}.",
        match d.verdict {
            Verdict::Underfitting => "underfitting",
            Verdict::Overfitting => "overfitting",
            Verdict::Unstable => "unstable",
            Verdict::Good => "good",
            Verdict::Undecided => "undecided",
        },
        d.reason,
        d.best_epoch
            .map(|b| format!("; best epoch {b} (lowest validation loss)"))
            .unwrap_or_default(),
        message(&d.suggestion)
    )
}

/// A diagnosis as the metrics file holds it: the suggestion as one string with flag names.
#[derive(Serialize)]
pub struct DiagnosisJson<'a> {
    verdict: Verdict,
    /// `null` without a validation set.
    best_epoch: Option<usize>,
    monitored: &'a str,
    reason: &'a str,
    suggestion: String,
    /// The comparison with the linear baseline, when the network is not better.
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<String>,
}

impl<'a> DiagnosisJson<'a> {
    /// Words `d`'s suggestion (and the baseline note, if any) for the command line.
    pub fn new(d: &'a Diagnosis, baseline: Option<&Message>) -> Self {
        DiagnosisJson {
            verdict: d.verdict,
            best_epoch: d.best_epoch,
            monitored: &d.monitored,
            reason: &d.reason,
            suggestion: message(&d.suggestion),
            baseline: baseline.map(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use clap::CommandFactory;
    use nabla::data::csv::{CsvOptions, read_bytes};
    use std::path::Path;

    #[test]
    fn a_library_error_names_no_flag_but_the_cli_rendering_does() {
        let options = CsvOptions {
            target: Some("nope".into()),
            ..Default::default()
        };
        let e = read_bytes(Path::new("t.csv"), b"a,y\n1,2\n", &options).unwrap_err();
        let library = e.to_string();
        assert!(!library.contains("--"), "{library}");
        assert!(library.contains("`target = \"nope\"`"), "{library}");
        let cli = e.render(words);
        assert_eq!(
            cli,
            "t.csv: --target \"nope\": no such column; the header has \"a\", \"y\""
        );
        let chained = anyhow::Error::from(e).context("loading the data");
        assert_eq!(
            error_chain(&chained),
            format!("loading the data: {cli}"),
            "a context in front keeps anyhow's `{{:#}}` layout"
        );
    }

    #[test]
    fn the_chain_of_other_errors_is_what_anyhow_prints() {
        let io = std::io::Error::other("disk full");
        let e = Err::<(), _>(NablaError::io("m.json", io))
            .context("writing the metrics file")
            .unwrap_err();
        assert_eq!(error_chain(&e), format!("{e:#}"));
        let plain = anyhow::anyhow!("plain").context("outer");
        assert_eq!(error_chain(&plain), format!("{plain:#}"));
    }

    #[test]
    fn every_setting_is_a_flag_of_train_or_explain() {
        let cli = super::super::Cli::command();
        let longs: Vec<String> = ["train", "explain"]
            .iter()
            .filter_map(|name| cli.find_subcommand(name))
            .flat_map(|c| c.get_arguments().filter_map(|a| a.get_long()))
            .map(|long| format!("--{long}"))
            .collect();
        for setting in Setting::ALL {
            assert!(
                longs.contains(&flag(setting)),
                "{setting:?}: no {}",
                flag(setting)
            );
        }
    }

    #[test]
    fn diagnosis_suggestions_name_flags() {
        let m = Message::new()
            .text("use ")
            .setting(Setting::EarlyStopping)
            .text(", try ")
            .mention(Mention::LrSweep);
        assert_eq!(message(&m), "use --early-stopping, try nabla lr-find");
        assert_eq!(
            m.to_string(),
            "use `early_stopping`, try a learning-rate sweep"
        );
    }
}
