//! Learning-rate schedules for [`super::Adam`].

use serde::{Deserialize, Serialize};

use super::{check_setting, OptimError};

/// How the learning rate changes with the update count `k = 0, 1, 2, ...`.
///
/// `lr(base, k)` for each variant:
///
/// | variant | learning rate |
/// |---|---|
/// | `Constant` | `base` |
/// | `Exponential { decay }` | `base * decay^k` |
/// | `Step { every, factor }` | `base * factor^floor(k / every)` |
/// | `Cosine { period, min_lr }` | `min_lr + (base - min_lr) (1 + cos(pi min(k, period) / period)) / 2` |
/// | `Warmup { steps, then }` | `base (k + 1) / steps` for `k < steps`, then `then.lr(base, k - steps)` |
///
/// ```
/// use diffsim::optim::Schedule;
///
/// let s = Schedule::Step { every: 100, factor: 0.5 };
/// assert_eq!(s.lr(0.1, 99), 0.1);
/// assert_eq!(s.lr(0.1, 100), 0.05);
/// let w = Schedule::Warmup { steps: 10, then: Box::new(Schedule::Constant) };
/// assert_eq!(w.lr(1.0, 4), 0.5);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum Schedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply by `decay` (in (0, 1]) every update.
    Exponential {
        /// Factor per update.
        decay: f64,
    },
    /// Multiply by `factor` every `every` updates.
    Step {
        /// Updates per stage (at least 1).
        every: u64,
        /// Factor per stage, in (0, 1].
        factor: f64,
    },
    /// Half a cosine from `base` down to `min_lr` over `period` updates, then `min_lr`.
    Cosine {
        /// Updates to reach `min_lr` (at least 1).
        period: u64,
        /// Final rate, in [0, base].
        min_lr: f64,
    },
    /// Linear ramp from `base / steps` up to `base` over `steps` updates, then `then`
    /// (whose update count starts at 0 after the warm-up).
    Warmup {
        /// Warm-up length (at least 1).
        steps: u64,
        /// The schedule after the warm-up.
        then: Box<Schedule>,
    },
}

impl Schedule {
    /// The learning rate for update `k` (counting from 0) with base rate `base`.
    pub fn lr(&self, base: f64, k: u64) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Exponential { decay } => base * decay.powf(k as f64),
            Schedule::Step { every, factor } => base * factor.powf((k / (*every).max(1)) as f64),
            Schedule::Cosine { period, min_lr } => {
                let period = (*period).max(1);
                let frac = k.min(period) as f64 / period as f64;
                min_lr + (base - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
            }
            Schedule::Warmup { steps, then } => {
                if k < *steps {
                    base * (k + 1) as f64 / *steps as f64
                } else {
                    then.lr(base, k - steps)
                }
            }
        }
    }

    /// Checks the parameters (for base rate `base`).
    pub(crate) fn check(&self, base: f64) -> Result<(), OptimError> {
        match self {
            Schedule::Constant => Ok(()),
            Schedule::Exponential { decay } => {
                check_setting("schedule decay", *decay, *decay > 0.0 && *decay <= 1.0, "use a factor in (0, 1]")
            }
            Schedule::Step { every, factor } => {
                check_setting("schedule every", *every as f64, *every >= 1, "use at least 1 update per stage")?;
                check_setting("schedule factor", *factor, *factor > 0.0 && *factor <= 1.0, "use a factor in (0, 1]")
            }
            Schedule::Cosine { period, min_lr } => {
                check_setting("schedule period", *period as f64, *period >= 1, "use a period of at least 1 update")?;
                check_setting("schedule min_lr", *min_lr, *min_lr >= 0.0 && *min_lr <= base, "use 0 <= min_lr <= lr")
            }
            Schedule::Warmup { steps, then } => {
                check_setting("schedule steps", *steps as f64, *steps >= 1, "use a warm-up of at least 1 update")?;
                then.check(base)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_values() {
        let b = 0.2;
        assert_eq!(Schedule::Constant.lr(b, 1000), 0.2);
        let e = Schedule::Exponential { decay: 0.5 };
        assert_eq!(e.lr(b, 0), 0.2);
        assert_eq!(e.lr(b, 3), 0.025);
        let s = Schedule::Step { every: 10, factor: 0.1 };
        assert_eq!(s.lr(b, 9), 0.2);
        assert!((s.lr(b, 10) - 0.02).abs() < 1e-17);
        assert!((s.lr(b, 25) - 0.002).abs() < 1e-17);
        let c = Schedule::Cosine { period: 100, min_lr: 0.02 };
        assert_eq!(c.lr(b, 0), 0.2);
        assert!((c.lr(b, 50) - 0.11).abs() < 1e-15);
        assert!((c.lr(b, 100) - 0.02).abs() < 1e-15);
        assert!((c.lr(b, 500) - 0.02).abs() < 1e-15);
        let w = Schedule::Warmup { steps: 4, then: Box::new(e) };
        assert_eq!(w.lr(b, 0), 0.05);
        assert_eq!(w.lr(b, 3), 0.2);
        assert_eq!(w.lr(b, 4), 0.2);
        assert_eq!(w.lr(b, 5), 0.1);
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(Schedule::Exponential { decay: 1.5 }.check(0.1).is_err());
        assert!(Schedule::Step { every: 0, factor: 0.5 }.check(0.1).is_err());
        assert!(Schedule::Cosine { period: 10, min_lr: 1.0 }.check(0.1).is_err());
        let nested = Schedule::Warmup { steps: 3, then: Box::new(Schedule::Exponential { decay: f64::NAN }) };
        assert!(nested.check(0.1).is_err());
        assert!(Schedule::Cosine { period: 10, min_lr: 0.0 }.check(0.1).is_ok());
    }
}
