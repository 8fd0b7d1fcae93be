//! A line search for the strong Wolfe conditions: Nocedal & Wright, *Numerical
//! Optimization* (2nd ed.), Algorithm 3.5 (bracketing) and 3.6 (zoom), with the cubic
//! interpolation of their eq. (3.59), safeguarded to the inner 80% of the bracket.
//!
//! A trial whose value or slope is non-finite counts as "too far": it becomes the upper end
//! of the bracket and the next trial is the bisection towards the last good step
//! (backtracking), so the search still ends at a finite point with sufficient decrease.

/// Line-search constants.
///
/// ```
/// use diffsim::optim::LineSearch;
///
/// let ls = LineSearch { c2: 0.1, ..LineSearch::default() }; // a more exact search
/// assert_eq!(ls.c1, 1e-4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LineSearch {
    /// Sufficient-decrease constant: `phi(a) <= phi(0) + c1 a phi'(0)`. Default 1e-4.
    pub c1: f64,
    /// Curvature constant: `|phi'(a)| <= c2 |phi'(0)|`, `c1 < c2 < 1`. Default 0.9.
    pub c2: f64,
    /// Most evaluations of `phi` per search. Default 30.
    pub max_evals: usize,
    /// Largest step. Default 1e10.
    pub alpha_max: f64,
}

impl Default for LineSearch {
    fn default() -> Self {
        LineSearch { c1: 1e-4, c2: 0.9, max_evals: 30, alpha_max: 1e10 }
    }
}

/// How a line search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSearchStatus {
    /// Both strong Wolfe conditions hold at the returned step.
    StrongWolfe,
    /// Only sufficient decrease holds (evaluation budget spent, bracket collapsed, or the
    /// largest step reached); the step still lowers the function.
    SufficientDecrease,
    /// No step with sufficient decrease was found; `alpha` is 0.
    Failed,
}

/// The step found by [`strong_wolfe`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineSearchResult {
    /// The step length (0 when failed).
    pub alpha: f64,
    /// `phi(alpha)`.
    pub f: f64,
    /// `phi'(alpha)`.
    pub dphi: f64,
    /// How it ended.
    pub status: LineSearchStatus,
    /// Evaluations of `phi`.
    pub evaluations: usize,
    /// Trials whose value or slope was non-finite (each backtracked from).
    pub non_finite: usize,
}

#[derive(Clone, Copy)]
struct Pt {
    a: f64,
    f: f64,
    d: f64,
}

impl Pt {
    fn finite(&self) -> bool {
        self.f.is_finite() && self.d.is_finite()
    }
}

/// Searches along a descent direction for a step `alpha` satisfying the strong Wolfe
/// conditions. `phi(alpha)` returns the function value and directional derivative at
/// `alpha`; `f0`, `dphi0` are those at 0 (`dphi0 < 0`), `alpha0 > 0` the first trial.
///
/// The evaluation at the returned `alpha` is not always the last one made (after a spent
/// budget it is the best earlier point); callers that keep per-point data should check.
///
/// ```
/// use diffsim::optim::{strong_wolfe, LineSearch, LineSearchStatus};
///
/// // phi(a) = (a - 3)^2: phi(0) = 9, phi'(0) = -6.
/// let mut phi = |a: f64| ((a - 3.0) * (a - 3.0), 2.0 * (a - 3.0));
/// let r = strong_wolfe(&mut phi, 9.0, -6.0, 1.0, &LineSearch::default());
/// assert_eq!(r.status, LineSearchStatus::StrongWolfe);
/// assert!(r.f <= 9.0 + 1e-4 * r.alpha * -6.0 && r.dphi.abs() <= 0.9 * 6.0);
/// ```
pub fn strong_wolfe(
    phi: &mut dyn FnMut(f64) -> (f64, f64),
    f0: f64,
    dphi0: f64,
    alpha0: f64,
    params: &LineSearch,
) -> LineSearchResult {
    let mut s = Search { phi, f0, dphi0, p: *params, evals: 0, non_finite: 0 };
    if !(f0.is_finite() && dphi0.is_finite() && dphi0 < 0.0 && alpha0 > 0.0 && alpha0.is_finite()) {
        return s.result(Pt { a: 0.0, f: f0, d: dphi0 }, LineSearchStatus::Failed);
    }
    let mut prev = Pt { a: 0.0, f: f0, d: dphi0 };
    let mut a = alpha0.min(params.alpha_max);
    loop {
        if s.evals >= s.p.max_evals {
            return s.best(prev);
        }
        let cur = s.eval(a);
        if !cur.finite() || !s.armijo(cur) || (s.evals > 1 && cur.f >= prev.f) {
            return s.zoom(prev, cur);
        }
        if s.curvature(cur) {
            return s.result(cur, LineSearchStatus::StrongWolfe);
        }
        if cur.d >= 0.0 {
            return s.zoom(cur, prev);
        }
        if a >= s.p.alpha_max {
            return s.result(cur, LineSearchStatus::SufficientDecrease);
        }
        prev = cur;
        a = (2.0 * a).min(s.p.alpha_max);
    }
}

struct Search<'a> {
    phi: &'a mut dyn FnMut(f64) -> (f64, f64),
    f0: f64,
    dphi0: f64,
    p: LineSearch,
    evals: usize,
    non_finite: usize,
}

impl Search<'_> {
    fn eval(&mut self, a: f64) -> Pt {
        let (f, d) = (self.phi)(a);
        self.evals += 1;
        let pt = Pt { a, f, d };
        if !pt.finite() {
            self.non_finite += 1;
        }
        pt
    }

    fn armijo(&self, p: Pt) -> bool {
        p.f <= self.f0 + self.p.c1 * p.a * self.dphi0
    }

    fn curvature(&self, p: Pt) -> bool {
        p.d.abs() <= -self.p.c2 * self.dphi0
    }

    fn result(&self, p: Pt, status: LineSearchStatus) -> LineSearchResult {
        let (alpha, f, dphi) =
            if status == LineSearchStatus::Failed { (0.0, self.f0, self.dphi0) } else { (p.a, p.f, p.d) };
        LineSearchResult { alpha, f, dphi, status, evaluations: self.evals, non_finite: self.non_finite }
    }

    /// The best point known to satisfy sufficient decrease (`lo` of the bracket).
    fn best(&self, lo: Pt) -> LineSearchResult {
        let status = if lo.a > 0.0 { LineSearchStatus::SufficientDecrease } else { LineSearchStatus::Failed };
        self.result(lo, status)
    }

    /// Algorithm 3.6: `lo` satisfies sufficient decrease with the lowest value so far; the
    /// bracket between `lo` and `hi` contains strong Wolfe steps.
    fn zoom(&mut self, mut lo: Pt, mut hi: Pt) -> LineSearchResult {
        loop {
            let width = hi.a - lo.a;
            if self.evals >= self.p.max_evals || width.abs() <= 1e-14 * lo.a.abs().max(hi.a.abs()) {
                return self.best(lo);
            }
            let mid = lo.a + 0.5 * width;
            let a = if hi.finite() {
                let (lo_b, hi_b) = (lo.a + 0.1 * width, hi.a - 0.1 * width);
                let (min, max) = if lo_b < hi_b { (lo_b, hi_b) } else { (hi_b, lo_b) };
                match cubic_min(lo, hi) {
                    Some(c) if c >= min && c <= max => c,
                    _ => mid,
                }
            } else {
                mid
            };
            let cur = self.eval(a);
            if !cur.finite() || !self.armijo(cur) || cur.f >= lo.f {
                hi = cur;
            } else {
                if self.curvature(cur) {
                    return self.result(cur, LineSearchStatus::StrongWolfe);
                }
                if cur.d * (hi.a - lo.a) >= 0.0 {
                    hi = lo;
                }
                lo = cur;
            }
        }
    }
}

/// Minimiser of the cubic interpolating values and slopes at two points (N&W eq. 3.59).
fn cubic_min(p1: Pt, p2: Pt) -> Option<f64> {
    let d1 = p1.d + p2.d - 3.0 * (p1.f - p2.f) / (p1.a - p2.a);
    let disc = d1 * d1 - p1.d * p2.d;
    if disc.is_nan() || disc < 0.0 {
        return None;
    }
    let d2 = (p2.a - p1.a).signum() * disc.sqrt();
    let a = p2.a - (p2.a - p1.a) * (p2.d + d2 - d1) / (p2.d - p1.d + 2.0 * d2);
    a.is_finite().then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_is_exact_for_a_cubic() {
        // p(a) = a^3 - 3a has its local minimum at a = 1.
        let p = |a: f64| Pt { a, f: a * a * a - 3.0 * a, d: 3.0 * a * a - 3.0 };
        let m = cubic_min(p(0.0), p(2.0)).unwrap();
        assert!((m - 1.0).abs() < 1e-14, "{m}");
    }

    #[test]
    fn non_finite_trials_backtrack() {
        // phi(a) = -a for a < 0.3, NaN beyond: the search must end at a < 0.3.
        let mut phi = |a: f64| if a < 0.3 { (-a + a * a, -1.0 + 2.0 * a) } else { (f64::NAN, f64::NAN) };
        let r = strong_wolfe(&mut phi, 0.0, -1.0, 1.0, &LineSearch::default());
        assert!(r.non_finite > 0);
        assert!(r.alpha > 0.0 && r.alpha < 0.3 && r.f.is_finite(), "{r:?}");
        assert_ne!(r.status, LineSearchStatus::Failed);
    }

    #[test]
    fn ascent_direction_fails_without_evaluating() {
        let mut phi = |_a: f64| -> (f64, f64) { panic!("must not be called") };
        let r = strong_wolfe(&mut phi, 1.0, 0.5, 1.0, &LineSearch::default());
        assert_eq!((r.status, r.alpha, r.evaluations), (LineSearchStatus::Failed, 0.0, 0));
    }
}
