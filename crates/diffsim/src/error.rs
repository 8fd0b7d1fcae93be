//! Typed errors for bad input. Solver failures are not errors: they are a
//! [`crate::RetCode`] on a returned (partial) solution.

use thiserror::Error;

/// What was wrong with the input, and what to do about it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DiffsimError {
    /// A vector has the wrong length.
    #[error("{what} has length {got} but the model needs {expected}; pass exactly {expected} values")]
    SizeMismatch {
        /// Which input.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{what}[{index}] is not finite; every value of {what} must be a finite number")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// First offending index.
        index: usize,
    },
    /// The time span cannot be integrated.
    #[error("invalid time span ({t0}, {t1}): {why}")]
    InvalidSpan {
        /// Start.
        t0: f64,
        /// End.
        t1: f64,
        /// Why.
        why: &'static str,
    },
    /// A tolerance is negative, non-finite, or both tolerances are zero.
    #[error("invalid tolerance: {0}")]
    InvalidTolerance(String),
    /// Some other option is out of range or inconsistent.
    #[error("invalid option {name}: {why}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong and what to do.
        why: String,
    },
    /// The method cannot solve this problem (e.g. an explicit method with a mass matrix).
    #[error("{alg} cannot solve this problem: {why}")]
    Unsupported {
        /// The algorithm.
        alg: &'static str,
        /// Why, and what to use instead.
        why: String,
    },
    /// The model contradicts itself (for example its `STATES` and its `n_states()`).
    #[error("the model is inconsistent: {why}")]
    InvalidModel {
        /// What disagrees, and how to fix it.
        why: String,
    },
    /// The initial state does not satisfy the model's algebraic equations (a DAE), and its
    /// algebraic states could not be solved from them.
    #[error("inconsistent initial state: {why}")]
    InconsistentStart {
        /// What failed, and what to do.
        why: String,
    },
    /// A name (model, algorithm) that is not known.
    #[error("unknown {kind} '{name}'; choose one of: {choices}")]
    Unknown {
        /// What kind of name.
        kind: &'static str,
        /// The name given.
        name: String,
        /// The valid names.
        choices: String,
    },
    /// A data file that cannot be used: where, and what is wrong.
    #[error("{path}:{line}:{column}: {why}")]
    Data {
        /// The file.
        path: String,
        /// 1-based line (0 when the problem is the whole file).
        line: usize,
        /// 1-based column, counted in fields (0 when the problem is the whole line).
        column: usize,
        /// What is wrong, and the expected form.
        why: String,
    },
}

/// Result with a [`DiffsimError`].
pub type Result<T, E = DiffsimError> = std::result::Result<T, E>;
