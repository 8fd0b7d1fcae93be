//! Errors of the optimizer driver: bad input, and checkpoints that cannot be used.

use std::path::PathBuf;
use thiserror::Error;

use crate::error::DiffsimError;

/// Why [`super::minimize`] or [`super::resume`] could not run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptimError {
    /// Bad input: parameters, options or optimizer settings.
    #[error(transparent)]
    Input(#[from] DiffsimError),
    /// The checkpoint file could not be read or written.
    #[error("cannot {action} checkpoint {path}: {message}; check that the path exists and is writable")]
    CheckpointIo {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// The file is not a valid checkpoint (truncated, edited, or from another program).
    #[error(
        "{path} is not a valid diffsim optimizer checkpoint: {message}; point resume at an intact \
         checkpoint or start a new run with minimize"
    )]
    CheckpointFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The checkpoint is valid but was written by another run (other optimizer, chain
    /// stages or parameter count).
    #[error(
        "checkpoint {path} does not fit this run: {why}; resume with the optimizer (and chain stages) \
         and parameter count that wrote it, or delete the file to start afresh"
    )]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        why: String,
    },
    /// An optimizer state given to [`super::Optimizer::restore`] does not fit the optimizer.
    #[error("cannot restore the optimizer state: {why}; restore a state written by the same optimizer")]
    IncompatibleState {
        /// What differs.
        why: String,
    },
}
