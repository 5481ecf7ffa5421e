//! The fit verdict: reads the learning curves and says whether the run underfits, overfits or
//! fits well, which epoch was best, and what to try next.
//!
//! The monitored curve is the validation loss when there is a validation set, else the test
//! loss. Rules, applied in order:
//! - **overfitting**: the monitored loss has risen for at least 3 epochs after its best epoch
//!   to more than 10 % above its minimum while the training loss kept falling; or (for
//!   classification) training accuracy is above 0.98 while the monitored accuracy trails it by
//!   more than 0.08;
//! - **underfitting**: training accuracy (classification) is below 0.90, or the training loss
//!   still fell by more than 5 % (and 0.01) over the last epoch (more epochs would help);
//! - **good** otherwise.

use serde::{Deserialize, Serialize};

use super::fit::EpochMetrics;
use crate::error::{Mention, Message, Setting};

/// Under-, over- or well fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The model has not learned what it could.
    Underfitting,
    /// The model learned the training set at the expense of unseen data.
    Overfitting,
    /// Neither.
    Good,
}

/// The verdict with the facts behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The verdict.
    pub verdict: Verdict,
    /// The epoch with the lowest monitored loss (from 1).
    pub best_epoch: usize,
    /// Which curve was monitored: `"val_loss"` or `"test_loss"`.
    pub monitored: String,
    /// Why, in one sentence with the numbers.
    pub reason: String,
    /// What to try next. The settings it names are [`Mention`]s, so each front end words them
    /// its own way ([`Message::render`]).
    pub suggestion: Message,
}

/// Diagnoses a run from its per-epoch metrics; `None` for an empty history.
pub fn diagnose(history: &[EpochMetrics]) -> Option<Diagnosis> {
    let curves = Curves::read(history)?;
    let finding = rising_loss(&curves)
        .or_else(|| accuracy_gap(&curves))
        .or_else(|| low_accuracy(&curves))
        .or_else(|| still_falling(&curves))
        .unwrap_or_else(|| levelled_off(&curves));
    Some(Diagnosis {
        verdict: finding.verdict,
        best_epoch: curves.best_epoch,
        monitored: curves.monitored.to_string(),
        reason: finding.reason,
        suggestion: finding.suggestion,
    })
}

/// What the rules read off the history.
struct Curves<'a> {
    history: &'a [EpochMetrics],
    last: &'a EpochMetrics,
    /// `"val_loss"` when every epoch has a validation loss, else `"test_loss"`.
    monitored: &'static str,
    /// The epoch (from 1) with the lowest monitored loss (the first, on a tie), and that loss.
    best_epoch: usize,
    best: f64,
    /// The monitored loss at the last epoch.
    end: f64,
}

impl<'a> Curves<'a> {
    fn read(history: &'a [EpochMetrics]) -> Option<Self> {
        let last = history.last()?;
        let (monitored, curve): (&str, Vec<f64>) = if history.iter().all(|m| m.val_loss.is_some()) {
            (
                "val_loss",
                history.iter().filter_map(|m| m.val_loss).collect(),
            )
        } else {
            ("test_loss", history.iter().map(|m| m.test_loss).collect())
        };
        let (best_index, best) =
            curve
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |acc, (i, v)| if v < acc.1 { (i, v) } else { acc },
                );
        Some(Curves {
            history,
            last,
            monitored,
            best_epoch: best_index + 1,
            best,
            end: curve[history.len() - 1],
        })
    }

    /// The number of epochs.
    fn epochs(&self) -> usize {
        self.history.len()
    }

    /// The last epoch's training accuracy and monitored accuracy (classification only).
    fn accuracies(&self) -> Option<(f64, f64)> {
        let monitored = if self.monitored == "val_loss" {
            self.last.val_accuracy
        } else {
            self.last.test_accuracy
        };
        Some((self.last.train_accuracy?, monitored?))
    }
}

/// A rule's verdict, why, and what to try.
struct Finding {
    verdict: Verdict,
    reason: String,
    suggestion: Message,
}

/// Overfitting: the monitored loss rose for 3+ epochs past its best, to 10 % above it, while
/// the training loss kept falling.
fn rising_loss(c: &Curves) -> Option<Finding> {
    let (n, best_epoch, best, end) = (c.epochs(), c.best_epoch, c.best, c.end);
    let train_fell = c.last.train_loss < c.history[best_epoch - 1].train_loss;
    // Written as the condition that holds, so a NaN loss never counts as overfitting.
    let overfitting = n - best_epoch >= 3 && end > best * 1.1 && train_fell;
    if !overfitting {
        return None;
    }
    let monitored = c.monitored;
    Some(Finding {
        verdict: Verdict::Overfitting,
        reason: format!(
            "{monitored} rose from {best:.4} at epoch {best_epoch} to {end:.4} at epoch {n} while the training loss kept falling"
        ),
        suggestion: Message::new()
            .text("use ")
            .setting(Setting::EarlyStopping)
            .text(" (keeps the best epoch's weights), more data, ")
            .setting(Setting::Dropout)
            .text(" or ")
            .setting(Setting::WeightDecay)
            .text(", or fewer epochs"),
    })
}

/// Overfitting: training accuracy above 0.98 with the monitored accuracy 0.08 or more behind.
fn accuracy_gap(c: &Curves) -> Option<Finding> {
    let (t, m) = c.accuracies()?;
    let overfitting = t > 0.98 && t - m > 0.08;
    if !overfitting {
        return None;
    }
    Some(Finding {
        verdict: Verdict::Overfitting,
        reason: format!(
            "training accuracy {t:.4} but {} accuracy {m:.4}",
            &c.monitored[..c.monitored.len() - 5]
        ),
        suggestion: Message::new()
            .text("add regularisation (")
            .setting(Setting::Dropout)
            .text(", ")
            .setting(Setting::WeightDecay)
            .text("), more data, or stop earlier (")
            .setting(Setting::EarlyStopping)
            .text(")"),
    })
}

/// Underfitting: training accuracy below 0.90.
fn low_accuracy(c: &Curves) -> Option<Finding> {
    let t = c.last.train_accuracy.filter(|&t| t < 0.9)?;
    let n = c.epochs();
    Some(Finding {
        verdict: Verdict::Underfitting,
        reason: format!(
            "training accuracy is only {t:.4} after {n} epoch{}",
            if n == 1 { "" } else { "s" }
        ),
        suggestion: Message::new()
            .text("train for more epochs, raise the learning rate (try ")
            .mention(Mention::LrSweep)
            .text("), or use a larger network"),
    })
}

/// Underfitting: the training loss still fell by more than 5 % (and 0.01) over the last epoch.
fn still_falling(c: &Curves) -> Option<Finding> {
    let n = c.epochs();
    if n < 2 {
        return None;
    }
    let (prev, now) = (c.history[n - 2].train_loss, c.last.train_loss);
    let falling = now < prev * 0.95 && prev - now > 0.01;
    if !falling {
        return None;
    }
    Some(Finding {
        verdict: Verdict::Underfitting,
        reason: format!(
            "the training loss still fell {:.0} % in the last epoch ({prev:.4} → {now:.4})",
            (1.0 - now / prev) * 100.0
        ),
        suggestion: "train for more epochs or raise the learning rate".into(),
    })
}

/// Good: none of the rules above.
fn levelled_off(c: &Curves) -> Finding {
    let (monitored, best_epoch, best) = (c.monitored, c.best_epoch, c.best);
    Finding {
        verdict: Verdict::Good,
        reason: format!(
            "{monitored} is lowest at epoch {best_epoch} ({best:.4}) and the training loss has levelled off"
        ),
        suggestion: Message::new()
            .text("nothing pressing; ")
            .setting(Setting::EarlyStopping)
            .text(" keeps the best epoch's weights"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(e: usize, train: f64, test: f64, train_acc: f64, test_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train_loss: train,
            train_accuracy: Some(train_acc),
            val_loss: None,
            val_accuracy: None,
            val_r2: None,
            test_loss: test,
            test_accuracy: Some(test_acc),
            test_mae: None,
            test_rmse: None,
            test_r2: None,
            seconds: 0.0,
            learning_rate: 0.1,
        }
    }

    #[test]
    fn rising_test_loss_with_falling_train_loss_is_overfitting() {
        let h: Vec<_> = [(1.0, 0.8), (0.5, 0.5), (0.2, 0.55), (0.1, 0.6), (0.05, 0.7)]
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| epoch(i + 1, a, b, 0.9, 0.85))
            .collect();
        let d = diagnose(&h).unwrap();
        assert_eq!(d.verdict, Verdict::Overfitting);
        assert_eq!(d.best_epoch, 2);
    }

    #[test]
    fn low_training_accuracy_is_underfitting() {
        let d = diagnose(&[epoch(1, 2.0, 2.0, 0.3, 0.3)]).unwrap();
        assert_eq!(d.verdict, Verdict::Underfitting);
    }

    #[test]
    fn a_flat_curve_is_good() {
        let h: Vec<_> = (1..=5).map(|e| epoch(e, 0.1, 0.12, 0.97, 0.96)).collect();
        assert_eq!(diagnose(&h).unwrap().verdict, Verdict::Good);
    }

    #[test]
    fn a_wide_accuracy_gap_is_overfitting() {
        let h: Vec<_> = (1..=2).map(|e| epoch(e, 0.1, 0.1, 0.99, 0.85)).collect();
        let d = diagnose(&h).unwrap();
        assert_eq!(d.verdict, Verdict::Overfitting);
        assert_eq!(
            d.reason,
            "training accuracy 0.9900 but test accuracy 0.8500"
        );
    }

    #[test]
    fn suggestions_name_settings_by_key_not_by_flag() {
        let histories = [
            vec![epoch(1, 2.0, 2.0, 0.3, 0.3)],
            (1..=2).map(|e| epoch(e, 0.1, 0.1, 0.99, 0.85)).collect(),
            (1..=5).map(|e| epoch(e, 0.1, 0.12, 0.97, 0.96)).collect(),
        ];
        for h in &histories {
            let text = diagnose(h).unwrap().suggestion.to_string();
            assert!(!text.contains("--") && !text.contains("nabla"), "{text}");
        }
        let d = diagnose(&histories[2]).unwrap();
        assert_eq!(
            d.suggestion.to_string(),
            "nothing pressing; `early_stopping` keeps the best epoch's weights"
        );
    }

    #[test]
    fn an_empty_history_has_no_diagnosis() {
        assert_eq!(diagnose(&[]), None);
    }
}
