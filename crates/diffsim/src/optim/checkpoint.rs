//! Checkpoints: the complete state of a [`super::minimize`] run as a JSON file, written
//! atomically (temporary file in the same directory, fsync, rename, fsync of the directory)
//! so that a crash leaves either the previous checkpoint or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{serde_f64, OptimError};

const FORMAT: &str = "diffsim-optim-checkpoint";
const VERSION: u32 = 1;

/// Everything needed to continue a run exactly: parameters, best parameters, counters,
/// loss history and the optimizer's full state.
///
/// ```no_run
/// use diffsim::optim::Checkpoint;
///
/// let cp = Checkpoint::load("fit.json").unwrap();
/// println!("iteration {}: best loss {} at {:?}", cp.iteration, cp.best_loss, cp.best_x);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always `"diffsim-optim-checkpoint"`.
    pub format: String,
    /// File format version (1).
    pub version: u32,
    /// [`super::Optimizer::name`] of the optimizer that wrote it.
    pub optimizer: String,
    /// Iterations made.
    pub iteration: u64,
    /// Objective evaluations made.
    pub evaluations: u64,
    /// Steps skipped because of non-finite values.
    pub skipped: u64,
    /// Evaluations with a non-finite loss or gradient.
    pub non_finite: u64,
    /// The parameters the next iteration starts from.
    pub x: Vec<f64>,
    /// The parameters with the lowest finite loss seen.
    pub best_x: Vec<f64>,
    /// That loss (`inf` before any finite loss).
    #[serde(with = "serde_f64::one")]
    pub best_loss: f64,
    /// Loss reported by each iteration.
    #[serde(with = "serde_f64::many")]
    pub history: Vec<f64>,
    /// Early stopping: iterations since the last sufficient improvement.
    pub since_improvement: u64,
    /// Early stopping: the loss that counted as the last sufficient improvement.
    #[serde(with = "serde_f64::one")]
    pub reference_loss: f64,
    /// Skipped steps in a row.
    pub consecutive_skips: u64,
    /// [`super::Optimizer::state_json`].
    pub optimizer_state: serde_json::Value,
}

impl Checkpoint {
    /// The checkpoint of a run about to start from `x0`.
    pub(crate) fn start(optimizer: &str, x0: &[f64]) -> Self {
        Checkpoint {
            format: FORMAT.into(),
            version: VERSION,
            optimizer: optimizer.into(),
            iteration: 0,
            evaluations: 0,
            skipped: 0,
            non_finite: 0,
            x: x0.to_vec(),
            best_x: x0.to_vec(),
            best_loss: f64::INFINITY,
            history: Vec::new(),
            since_improvement: 0,
            reference_loss: f64::INFINITY,
            consecutive_skips: 0,
            optimizer_state: serde_json::Value::Null,
        }
    }

    /// Number of parameters.
    pub fn n_params(&self) -> usize {
        self.x.len()
    }

    /// Reads and checks a checkpoint file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, OptimError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|e| OptimError::CheckpointIo {
            action: "read",
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let format_err = |message: String| OptimError::CheckpointFormat { path: path.to_path_buf(), message };
        let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| format_err(e.to_string()))?;
        cp.validate().map_err(format_err)?;
        Ok(cp)
    }

    fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("the format field is \"{}\", expected \"{FORMAT}\"", self.format));
        }
        if self.version != VERSION {
            return Err(format!("version {} is not supported (this library reads version {VERSION})", self.version));
        }
        if self.x.is_empty() || self.best_x.len() != self.x.len() {
            return Err(format!("x has {} values and best_x {}", self.x.len(), self.best_x.len()));
        }
        if let Some(i) = self.x.iter().chain(&self.best_x).position(|v| !v.is_finite()) {
            return Err(format!("parameter value {i} is not finite"));
        }
        if self.history.len() as u64 != self.iteration {
            return Err(format!("the history has {} losses for {} iterations", self.history.len(), self.iteration));
        }
        if self.skipped > self.iteration
            || self.non_finite > self.evaluations
            || self.consecutive_skips > self.skipped
            || self.best_loss.is_nan()
        {
            return Err("the counters are inconsistent".into());
        }
        Ok(())
    }

    /// Writes the checkpoint atomically: a crash leaves the old file or the new one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), OptimError> {
        let path = path.as_ref();
        let io_err = |e: io::Error| OptimError::CheckpointIo {
            action: "write",
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let text = serde_json::to_vec(self).map_err(|e| io_err(io::Error::other(e)))?;
        write_atomic(path, &text).map_err(io_err)
    }
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, renames it over `path`
/// and syncs the directory. On failure the temporary file is removed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{}-{unique}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (not possible on every platform; best effort).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_non_finite_losses_and_every_bit() {
        let dir = std::env::temp_dir().join(format!("diffsim-cp-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cp.json");
        let mut cp = Checkpoint::start("adam", &[0.1, 1.0 / 3.0, -2.5e-300]);
        cp.history = vec![f64::NAN, f64::INFINITY, 0.1 + 0.2, f64::NEG_INFINITY];
        cp.iteration = 4;
        cp.best_loss = 0.1 + 0.2;
        cp.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert!(back.history[0].is_nan());
        assert_eq!(back.history[1..], cp.history[1..]);
        assert!(back.x.iter().zip(&cp.x).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(back.best_loss.to_bits(), cp.best_loss.to_bits());
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cp.json")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_path_is_an_error_and_leaves_nothing() {
        let path = std::env::temp_dir().join("diffsim-no-such-dir-xyz").join("cp.json");
        let e = Checkpoint::start("adam", &[1.0]).save(&path).unwrap_err();
        assert!(matches!(e, OptimError::CheckpointIo { action: "write", .. }), "{e}");
    }
}
