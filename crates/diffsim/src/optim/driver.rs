//! The driver: runs an optimizer with a callback, early stopping, best-parameter tracking,
//! non-finite safety and checkpoints.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Checkpoint, OptimError, Optimizer, StepStatus};
use crate::error::DiffsimError;

/// Options of [`minimize`].
///
/// ```
/// use diffsim::optim::MinimizeOptions;
///
/// let opts = MinimizeOptions::default()
///     .max_iters(5000)
///     .early_stopping(50, 1e-4) // stop after 50 iterations without a 0.01% improvement
///     .target_loss(1e-10)
///     .checkpoint("fit.json", 100);
/// assert_eq!(opts.max_iters, 5000);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MinimizeOptions {
    /// Total iterations, counting those before a checkpoint when resuming. Default 1000.
    pub max_iters: u64,
    /// Stop after this many iterations without a sufficient improvement. Default none.
    pub patience: Option<u64>,
    /// A loss improves sufficiently when it is below `r - min_rel_improvement * |r|`, `r`
    /// the last sufficient improvement. Default 0 (any decrease).
    pub min_rel_improvement: f64,
    /// Stop once the best loss is at most this. Default none.
    pub target_loss: Option<f64>,
    /// Stop after this many skipped (non-finite) steps in a row. Default 20.
    pub max_consecutive_skips: u64,
    /// Checkpoint file. Default none.
    pub checkpoint: Option<PathBuf>,
    /// Write the checkpoint every this many iterations (and at the start and the end).
    pub checkpoint_every: u64,
    /// Also write it once this many seconds of wall time have passed since the last write.
    /// Default none. A write costs two `fsync`s (a millisecond or more), which is many
    /// iterations of a small model: a time interval bounds both the work an interruption
    /// loses and the share of the run spent writing.
    pub checkpoint_seconds: Option<f64>,
}

impl Default for MinimizeOptions {
    fn default() -> Self {
        MinimizeOptions {
            max_iters: 1000,
            patience: None,
            min_rel_improvement: 0.0,
            target_loss: None,
            max_consecutive_skips: 20,
            checkpoint: None,
            checkpoint_every: 100,
            checkpoint_seconds: None,
        }
    }
}

impl MinimizeOptions {
    /// Sets the total iteration budget.
    pub fn max_iters(mut self, max_iters: u64) -> Self {
        self.max_iters = max_iters;
        self
    }

    /// Stops after `patience` iterations without a relative improvement of `min_rel`.
    pub fn early_stopping(mut self, patience: u64, min_rel: f64) -> Self {
        self.patience = Some(patience);
        self.min_rel_improvement = min_rel;
        self
    }

    /// Stops once the loss is at most `target`.
    pub fn target_loss(mut self, target: f64) -> Self {
        self.target_loss = Some(target);
        self
    }

    /// Stops after `n` skipped steps in a row.
    pub fn max_consecutive_skips(mut self, n: u64) -> Self {
        self.max_consecutive_skips = n;
        self
    }

    /// Checkpoints to `path` every `every` iterations.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>, every: u64) -> Self {
        self.checkpoint = Some(path.into());
        self.checkpoint_every = every;
        self
    }

    /// Checkpoints to `path` whenever `seconds` of wall time have passed since the last
    /// write (and at the start and the end), however many iterations that took.
    pub fn checkpoint_interval(mut self, path: impl Into<PathBuf>, seconds: f64) -> Self {
        self.checkpoint = Some(path.into());
        self.checkpoint_every = u64::MAX;
        self.checkpoint_seconds = Some(seconds);
        self
    }

    fn check(&self) -> Result<(), DiffsimError> {
        let bad = |name, why: &str| Err(DiffsimError::InvalidOption { name, why: why.to_string() });
        if !(self.min_rel_improvement.is_finite() && (0.0..1.0).contains(&self.min_rel_improvement)) {
            return bad("min_rel_improvement", "must be in [0, 1); 1e-4 means 0.01%");
        }
        if self.target_loss.is_some_and(|t| !t.is_finite()) {
            return bad("target_loss", "must be finite");
        }
        if self.max_consecutive_skips == 0 {
            return bad("max_consecutive_skips", "must be at least 1");
        }
        if self.checkpoint.is_some() && self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be at least 1 iteration");
        }
        if self.checkpoint_seconds.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            return bad("checkpoint_seconds", "must be a finite number of seconds, at least 0");
        }
        Ok(())
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The iteration budget was used.
    MaxIters,
    /// The optimizer's convergence test passed.
    Converged,
    /// The optimizer could make no further progress.
    Stalled,
    /// The loss reached [`MinimizeOptions::target_loss`].
    TargetReached,
    /// No sufficient improvement for [`MinimizeOptions::patience`] iterations.
    NoImprovement,
    /// [`MinimizeOptions::max_consecutive_skips`] non-finite steps in a row.
    NonFinite,
    /// The callback returned [`Control::Stop`].
    Callback,
    /// The optimizer (a [`super::Chain`]) used all its stages.
    Finished,
}

/// What the callback wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this iteration.
    Stop,
}

/// What the callback sees after each iteration.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Iterations made so far (1 after the first).
    pub iteration: u64,
    /// The loss the step reported (see [`super::StepOutcome::at_entry`]).
    pub loss: f64,
    /// The gradient norm the step reported (NaN for derivative-free methods).
    pub grad_norm: f64,
    /// The parameters after the step.
    pub x: &'a [f64],
    /// The lowest finite loss so far.
    pub best_loss: f64,
    /// What the step did.
    pub status: StepStatus,
    /// The optimizer that made the step (the active stage of a chain).
    pub optimizer: &'a str,
}

/// The result of [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct MinimizeReport {
    /// The parameters with the lowest finite loss seen (the start if none was finite).
    pub best_x: Vec<f64>,
    /// That loss (`inf` if no loss was finite).
    pub best_loss: f64,
    /// The parameters where the optimizer stopped.
    pub final_x: Vec<f64>,
    /// Iterations made (in total, when resumed).
    pub iterations: u64,
    /// Objective evaluations made.
    pub evaluations: u64,
    /// Steps skipped because of non-finite values.
    pub skipped_steps: u64,
    /// Evaluations that gave a non-finite loss or gradient (skipped steps and line-search
    /// trials backtracked from).
    pub non_finite_evaluations: u64,
    /// Why the run ended.
    pub stop: StopReason,
    /// The loss reported by each iteration.
    pub history: Vec<f64>,
}

/// Minimizes `f` from `x0` with `optimizer` (which is [`Optimizer::reset`] first).
///
/// `f` writes the gradient into its second argument and returns the loss; see the
/// [module docs](super) for an example with a [`super::Chain`].
pub fn minimize<F, O>(
    x0: &[f64],
    f: F,
    optimizer: &mut O,
    options: &MinimizeOptions,
) -> Result<MinimizeReport, OptimError>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
    O: Optimizer + ?Sized,
{
    minimize_with_callback(x0, f, optimizer, options, |_| Control::Continue)
}

/// [`minimize`] with a callback after every iteration.
///
/// ```
/// use diffsim::optim::{minimize_with_callback, Adam, Control, MinimizeOptions, StopReason};
///
/// let f = |x: &[f64], g: &mut [f64]| { g[0] = 2.0 * x[0]; x[0] * x[0] };
/// let report = minimize_with_callback(&[1.0], f, &mut Adam::new(0.1), &MinimizeOptions::default(), |p| {
///     if p.iteration == 10 { Control::Stop } else { Control::Continue }
/// })
/// .unwrap();
/// assert_eq!((report.stop, report.iterations), (StopReason::Callback, 10));
/// ```
pub fn minimize_with_callback<F, O, C>(
    x0: &[f64],
    f: F,
    optimizer: &mut O,
    options: &MinimizeOptions,
    callback: C,
) -> Result<MinimizeReport, OptimError>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
    O: Optimizer + ?Sized,
    C: FnMut(&Progress<'_>) -> Control,
{
    options.check()?;
    optimizer.check()?;
    if x0.is_empty() {
        return Err(
            DiffsimError::InvalidOption { name: "x0", why: "is empty; pass at least one parameter".into() }.into()
        );
    }
    if let Some(index) = x0.iter().position(|v| !v.is_finite()) {
        return Err(DiffsimError::NonFinite { what: "x0", index }.into());
    }
    optimizer.reset();
    let run = Checkpoint::start(optimizer.name(), x0);
    if let Some(path) = &options.checkpoint {
        save(&run, &*optimizer, path)?;
    }
    drive(run, f, optimizer, options, callback)
}

/// Continues the run saved in the checkpoint at `path`; with the same deterministic
/// objective, optimizer and options the result is bit-for-bit that of an uninterrupted
/// run. `options.max_iters` counts the iterations before the checkpoint too.
///
/// The optimizer's complete state (its settings included) is replaced by the saved one;
/// it must be the same kind (for a chain, the same stages and budgets).
pub fn resume<F, O>(
    path: impl AsRef<Path>,
    f: F,
    optimizer: &mut O,
    options: &MinimizeOptions,
) -> Result<MinimizeReport, OptimError>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
    O: Optimizer + ?Sized,
{
    resume_with_callback(path, f, optimizer, options, |_| Control::Continue)
}

/// [`resume`] with a callback after every iteration.
pub fn resume_with_callback<F, O, C>(
    path: impl AsRef<Path>,
    f: F,
    optimizer: &mut O,
    options: &MinimizeOptions,
    callback: C,
) -> Result<MinimizeReport, OptimError>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
    O: Optimizer + ?Sized,
    C: FnMut(&Progress<'_>) -> Control,
{
    let run = load_for(path.as_ref(), optimizer, None)?;
    options.check()?;
    drive(run, f, optimizer, options, callback)
}

/// Resumes from `options.checkpoint` if that file exists (checking it holds `x0.len()`
/// parameters), otherwise starts from `x0`: the restartable-script pattern.
///
/// ```no_run
/// use diffsim::optim::{minimize_or_resume, Lbfgs, MinimizeOptions};
///
/// let f = |x: &[f64], g: &mut [f64]| { g[0] = 2.0 * x[0]; x[0] * x[0] };
/// let opts = MinimizeOptions::default().checkpoint("fit.json", 10);
/// let report = minimize_or_resume(&[3.0], f, &mut Lbfgs::default(), &opts).unwrap();
/// ```
pub fn minimize_or_resume<F, O>(
    x0: &[f64],
    f: F,
    optimizer: &mut O,
    options: &MinimizeOptions,
) -> Result<MinimizeReport, OptimError>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
    O: Optimizer + ?Sized,
{
    match &options.checkpoint {
        Some(path) if path.exists() => {
            let run = load_for(path, optimizer, Some(x0.len()))?;
            options.check()?;
            drive(run, f, optimizer, options, |_| Control::Continue)
        }
        _ => minimize(x0, f, optimizer, options),
    }
}

fn load_for<O: Optimizer + ?Sized>(path: &Path, optimizer: &mut O, n: Option<usize>) -> Result<Checkpoint, OptimError> {
    let run = Checkpoint::load(path)?;
    let mismatch = |why: String| OptimError::CheckpointMismatch { path: path.to_path_buf(), why };
    if let Some(n) = n.filter(|&n| n != run.n_params()) {
        return Err(mismatch(format!("it holds {} parameters, this run has {n}", run.n_params())));
    }
    if run.optimizer != optimizer.name() {
        return Err(mismatch(format!("it was written by '{}', this run uses '{}'", run.optimizer, optimizer.name())));
    }
    optimizer.restore(&run.optimizer_state, run.n_params()).map_err(|e| match e {
        OptimError::IncompatibleState { why } => mismatch(why),
        other => other,
    })?;
    Ok(run)
}

fn save<O: Optimizer + ?Sized>(run: &Checkpoint, optimizer: &O, path: &Path) -> Result<(), OptimError> {
    // The run state is small next to the optimizer's; a clone keeps `run` borrow-free.
    let mut cp = run.clone();
    cp.optimizer_state = optimizer.state_json();
    cp.save(path)
}

fn drive<F, O, C>(
    mut run: Checkpoint,
    mut f: F,
    optimizer: &mut O,
    options: &MinimizeOptions,
    mut callback: C,
) -> Result<MinimizeReport, OptimError>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
    O: Optimizer + ?Sized,
    C: FnMut(&Progress<'_>) -> Control,
{
    let mut x = run.x.clone();
    let mut x_entry = x.clone();
    let mut last_write = Instant::now();
    let mut stop = StopReason::MaxIters;
    while run.iteration < options.max_iters {
        x_entry.copy_from_slice(&x);
        let mut out = optimizer.step(&mut x, &mut f);
        if out.status == StepStatus::Finished {
            stop = StopReason::Finished;
            break;
        }
        if !super::all_finite(&x) {
            // Defence against a faulty custom optimizer: never keep non-finite parameters.
            x.copy_from_slice(&x_entry);
            out.status = StepStatus::Skipped;
        }
        run.iteration += 1;
        run.evaluations += out.evaluations as u64;
        run.non_finite += out.non_finite as u64;
        run.history.push(out.loss);
        if out.skipped() {
            run.skipped += 1;
            run.consecutive_skips += 1;
        } else {
            run.consecutive_skips = 0;
        }
        if out.loss.is_finite() && out.loss < run.best_loss {
            run.best_loss = out.loss;
            run.best_x.copy_from_slice(if out.at_entry { &x_entry } else { &x });
        }
        let r = run.reference_loss;
        if out.loss.is_finite() && (r.is_infinite() || out.loss < r - options.min_rel_improvement * r.abs()) {
            run.reference_loss = out.loss;
            run.since_improvement = 0;
        } else {
            run.since_improvement += 1;
        }
        run.x.copy_from_slice(&x);
        let progress = Progress {
            iteration: run.iteration,
            loss: out.loss,
            grad_norm: out.grad_norm,
            x: &x,
            best_loss: run.best_loss,
            status: out.status,
            optimizer: optimizer.active(),
        };
        let control = callback(&progress);
        if let Some(path) = &options.checkpoint {
            let due = options.checkpoint_seconds.is_some_and(|t| last_write.elapsed().as_secs_f64() >= t);
            if run.iteration % options.checkpoint_every == 0 || due {
                save(&run, &*optimizer, path)?;
                last_write = Instant::now();
            }
        }
        let reason = match out.status {
            StepStatus::Converged => Some(StopReason::Converged),
            StepStatus::Stalled => Some(StopReason::Stalled),
            _ if options.target_loss.is_some_and(|t| run.best_loss <= t) => Some(StopReason::TargetReached),
            _ if options.patience.is_some_and(|p| run.since_improvement >= p) => Some(StopReason::NoImprovement),
            _ if run.consecutive_skips >= options.max_consecutive_skips => Some(StopReason::NonFinite),
            _ if control == Control::Stop => Some(StopReason::Callback),
            _ => None,
        };
        if let Some(reason) = reason {
            stop = reason;
            break;
        }
    }
    if let Some(path) = &options.checkpoint {
        save(&run, &*optimizer, path)?;
    }
    Ok(MinimizeReport {
        best_x: run.best_x,
        best_loss: run.best_loss,
        final_x: x,
        iterations: run.iteration,
        evaluations: run.evaluations,
        skipped_steps: run.skipped,
        non_finite_evaluations: run.non_finite,
        stop,
        history: run.history,
    })
}
