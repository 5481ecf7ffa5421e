//! Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed) during training: the first asks
//! the run to stop after the step in progress, save what it has (marked "interrupted") and exit
//! 130 / 143 / 129; a second one exits at once. After training the trained model is saved
//! before anything else, and a signal then skips the baselines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The stop request of a run: set by the first SIGINT, SIGTERM or SIGHUP.
pub struct Stop {
    /// Set when a signal arrived (the trainer checks it after every step).
    pub flag: Arc<AtomicBool>,
    /// The exit code the signal asks for: 130 (SIGINT), 143 (SIGTERM) or 129 (SIGHUP); 0
    /// before any.
    code: Arc<AtomicUsize>,
}

impl Stop {
    /// Installs the handlers. If they cannot be installed the signals keep their default
    /// action (the process ends) and a warning says so.
    pub fn install() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let code = Arc::new(AtomicUsize::new(0));
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            use signal_hook::flag;
            let installed = [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)]
                .iter()
                .try_for_each(|&(sig, exit)| {
                    // Registered first, so it sees the flag as the previous signal left it: a
                    // second signal ends the process at once.
                    flag::register_conditional_shutdown(sig, exit, Arc::clone(&flag))?;
                    flag::register_usize(sig, Arc::clone(&code), exit as usize)?;
                    flag::register(sig, Arc::clone(&flag)).map(|_| ())
                });
            if let Err(e) = installed {
                eprintln!("warning: cannot handle Ctrl-C ({e}); an interrupted run saves nothing");
            }
        }
        Self { flag, code }
    }

    /// The exit code asked for, once a signal arrived.
    pub fn requested(&self) -> Option<u8> {
        match self.code.load(Ordering::SeqCst) {
            0 => None,
            c => u8::try_from(c).ok(),
        }
    }
}

/// The error that ends an interrupted run with its exit code (the run's outputs are saved and
/// reported before it is returned).
#[derive(Debug)]
pub struct Interrupted(pub u8);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted")
    }
}

impl std::error::Error for Interrupted {}
