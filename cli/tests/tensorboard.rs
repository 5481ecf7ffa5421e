//! TensorBoard event files: every record's two CRC-32C checksums hold, the records decode as
//! `Event`s, the first is the file version, and the values equal history.json's: every
//! per-epoch value (as f32), one `iteration/loss` and `iteration/learning_rate` point per
//! iteration, and the confusion-matrix image is the PNG of the plot. TensorBoard's own reader
//! checks the same files in CI (cli/tests/python/check_tensorboard.py).

mod common;
use common::{stdout, temp_dir};

#[path = "../src/cli/tensorboard/proto.rs"]
mod proto;
#[path = "../src/cli/tensorboard/record.rs"]
mod record;

use prost::Message;
use proto::Event;

/// The events of the one event file in `dir`.
fn events(dir: &std::path::Path) -> Vec<Event> {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    let records = record::read(&bytes).expect("every record's checksums hold");
    records
        .iter()
        .map(|r| Event::decode(*r).expect("an Event"))
        .collect()
}

/// (step, value) of every scalar `tag`.
fn scalars(events: &[Event], tag: &str) -> Vec<(i64, f32)> {
    let values = events
        .iter()
        .filter_map(|e| Some((e.step, e.summary.as_ref()?)));
    let values = values.flat_map(|(step, s)| s.value.iter().map(move |v| (step, v)));
    values
        .filter(|(_, v)| v.tag == tag)
        .filter_map(|(s, v)| Some((s, v.simple_value?)))
        .collect()
}

#[test]
fn a_run_folder_holds_events_that_match_history_json() {
    let dir = temp_dir("run");
    let run = dir.join("run");
    let metrics = dir.join("metrics.json");
    stdout(&[
        "train",
        "--epochs",
        "3",
        "--hidden",
        "16",
        "--val-split",
        "0.1",
        "--schedule",
        "step",
        "--seed",
        "2",
        "--run-dir",
        &run.display().to_string(),
        "--metrics-out",
        &metrics.display().to_string(),
    ]);
    let events = events(&run);
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("history.json")).unwrap()).unwrap();
    let epochs = history["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    let fields = [
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
        "learning_rate",
    ];
    for field in fields {
        let want: Vec<(i64, f32)> = epochs
            .iter()
            .map(|e| {
                (
                    e["epoch"].as_i64().unwrap(),
                    e[field].as_f64().unwrap() as f32,
                )
            })
            .collect();
        assert_eq!(scalars(&events, &format!("epoch/{field}")), want, "{field}");
    }
    assert!(scalars(&events, "epoch/test_r2").is_empty());
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metrics).unwrap()).unwrap();
    let per_epoch = metrics["iterations_per_epoch"].as_i64().unwrap();
    let losses = scalars(&events, "iteration/loss");
    let steps: Vec<i64> = losses.iter().map(|&(s, _)| s).collect();
    assert_eq!(steps, (1..=3 * per_epoch).collect::<Vec<_>>());
    for (step, lr) in scalars(&events, "iteration/learning_rate") {
        let epoch = &epochs[((step - 1) / per_epoch) as usize];
        assert_eq!(
            lr,
            epoch["learning_rate"].as_f64().unwrap() as f32,
            "iteration {step}"
        );
    }
    let images: Vec<_> = events
        .iter()
        .filter_map(|e| e.summary.as_ref())
        .flat_map(|s| &s.value)
        .filter_map(|v| Some((v.tag.as_str(), v.image.as_ref()?)))
        .collect();
    assert_eq!(images.len(), 1);
    let (tag, image) = images[0];
    assert_eq!(tag, "confusion_matrix");
    assert_eq!(
        image.encoded_image_string,
        std::fs::read(run.join("confusion_matrix.png")).unwrap()
    );
    assert!(image.width > 100 && image.height > 100 && image.colorspace >= 3);
}
