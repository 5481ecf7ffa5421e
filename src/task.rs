//! [`Task`]: what a dataset asks for and a network predicts. Its own module because data,
//! networks and losses all need it and none of them may import another for it.

use serde::{Deserialize, Serialize};

/// What the network predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// One of several classes (softmax output, cross-entropy loss).
    #[default]
    Classification,
    /// A real value (linear output, squared-error loss).
    Regression,
}

impl Task {
    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }
}
