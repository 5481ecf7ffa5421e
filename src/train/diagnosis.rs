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
    /// What to try next.
    pub suggestion: String,
}

/// Diagnoses a run from its per-epoch metrics; `None` for an empty history.
pub fn diagnose(history: &[EpochMetrics]) -> Option<Diagnosis> {
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
    let best_epoch = best_index + 1;
    let n = history.len();
    let end = curve[n - 1];
    let since_best = n - best_epoch;
    let train_fell = last.train_loss < history[best_index].train_loss;
    let monitored_acc = if monitored == "val_loss" {
        last.val_accuracy
    } else {
        last.test_accuracy
    };
    let gap = match (last.train_accuracy, monitored_acc) {
        (Some(t), Some(m)) => Some((t, m)),
        _ => None,
    };
    let diagnosis = |verdict, reason: String, suggestion: &str| Diagnosis {
        verdict,
        best_epoch,
        monitored: monitored.to_string(),
        reason,
        suggestion: suggestion.to_string(),
    };

    if since_best >= 3 && end > best * 1.1 && train_fell {
        return Some(diagnosis(
            Verdict::Overfitting,
            format!(
                "{monitored} rose from {best:.4} at epoch {best_epoch} to {end:.4} at epoch {n} while the training loss kept falling"
            ),
            "use --early-stopping (keeps the best epoch's weights), more data, --dropout or --weight-decay, or fewer epochs",
        ));
    }
    if let Some((t, m)) = gap
        && t > 0.98
        && t - m > 0.08
    {
        return Some(diagnosis(
            Verdict::Overfitting,
            format!(
                "training accuracy {t:.4} but {} accuracy {m:.4}",
                &monitored[..monitored.len() - 5]
            ),
            "add regularisation (--dropout, --weight-decay), more data, or stop earlier (--early-stopping)",
        ));
    }
    if let Some(t) = last.train_accuracy
        && t < 0.9
    {
        return Some(diagnosis(
            Verdict::Underfitting,
            format!(
                "training accuracy is only {t:.4} after {n} epoch{}",
                if n == 1 { "" } else { "s" }
            ),
            "train for more epochs, raise the learning rate (try nabla lr-find), or use a larger network",
        ));
    }
    if n >= 2 {
        let (prev, now) = (history[n - 2].train_loss, last.train_loss);
        if now < prev * 0.95 && prev - now > 0.01 {
            return Some(diagnosis(
                Verdict::Underfitting,
                format!(
                    "the training loss still fell {:.0} % in the last epoch ({prev:.4} → {now:.4})",
                    (1.0 - now / prev) * 100.0
                ),
                "train for more epochs or raise the learning rate",
            ));
        }
    }
    Some(diagnosis(
        Verdict::Good,
        format!(
            "{monitored} is lowest at epoch {best_epoch} ({best:.4}) and the training loss has levelled off"
        ),
        "nothing pressing; --early-stopping keeps the best epoch's weights",
    ))
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
}
