//! The end of the "training:" line: what the defaults decided about validation, early stopping
//! and regularisation for this data, in the command line's words (see
//! `nabla::config::defaults::SMALL_DATA_ROWS`).

use nabla::config::{AutoValidation, RunConfig, RunData, defaults};

/// `small data (96 training rows < 10,000, no --epochs or --val-split): ...`; `defaulted`:
/// neither --epochs nor --val-split was given.
pub fn describe(config: &RunConfig, data: &RunData, defaulted: bool) -> String {
    let rows = data.train.len() + data.val.as_ref().map_or(0, |v| v.len());
    let patience = config.early_stopping;
    match (data.auto_validation, &data.val) {
        (Some(AutoValidation::SmallData), _) => format!(
            "small data ({rows} training rows < {}, no --epochs or --val-split): {} % held out for validation, at most {} epochs, early stopping after {} epochs without a lower validation loss keeps the best epoch, weight decay {}",
            thousands(defaults::SMALL_DATA_ROWS),
            defaults::AUTO_VAL_SPLIT * 100.0,
            config.epochs.unwrap_or_default(),
            patience.unwrap_or_default(),
            config.weight_decay.unwrap_or_default()
        ),
        (Some(AutoValidation::EarlyStopping), _) => format!(
            "early stopping (patience {}) on {} % of the training rows held out for validation (no --val-split; the test set never chooses)",
            patience.unwrap_or_default(),
            defaults::AUTO_VAL_SPLIT * 100.0
        ),
        (None, Some(_)) => match patience {
            Some(p) => format!(
                "early stopping after {p} epochs without a lower validation loss; the best validation epoch is kept"
            ),
            None => "the epoch with the lowest validation loss is kept".to_string(),
        },
        (None, None) if defaulted && rows >= defaults::SMALL_DATA_ROWS => format!(
            "no validation split (large data: {rows} training rows ≥ {}): every epoch is trained and the last kept; the fit verdict reads the training curve alone (add --val-split 0.1 to judge on held-out rows)",
            thousands(defaults::SMALL_DATA_ROWS)
        ),
        (None, None) => "no validation set: nothing is chosen, the last epoch is kept and the fit verdict reads the training curve alone".to_string(),
    }
}

/// `10,000`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
