//! Ensembles: one problem solved for many parameter sets or initial states, in parallel.

use crate::error::Result;
use crate::problem::{Model, Problem};
use crate::solve::{solve, Algorithm, Solution, SolveOptions};
use rayon::prelude::*;

/// One member of an ensemble: replaces the problem's `u0` and/or `p`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Member {
    /// Initial state, or `None` for the problem's.
    pub u0: Option<Vec<f64>>,
    /// Parameters, or `None` for the problem's.
    pub p: Option<Vec<f64>>,
}

/// Solve every member (in parallel with rayon) and return the results in input order.
/// Each member gets its own `Result` (bad input for one member does not stop the others)
/// and its own [`crate::RetCode`]; results do not depend on the number of threads.
///
/// ```
/// use diffsim::{ensemble::{solve_ensemble, Member}, models::Robertson, Algorithm, Problem, SolveOptions};
/// let prob = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1.0)).unwrap();
/// let members: Vec<Member> = (1..=4).map(|i| Member { p: Some(vec![0.01 * i as f64, 3e7, 1e4]), u0: None }).collect();
/// let sols = solve_ensemble(&prob, Algorithm::Rodas5P, &SolveOptions::default().saveat_times(vec![1.0]), &members);
/// assert_eq!(sols.len(), 4);
/// assert!(sols.iter().all(|s| s.as_ref().unwrap().retcode().is_success()));
/// ```
pub fn solve_ensemble<M: Model + Clone>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    members: &[Member],
) -> Vec<Result<Solution<f64>>> {
    members
        .par_iter()
        .map(|m| {
            let prob = problem.remake(m.u0.clone(), m.p.clone())?;
            solve(&prob, alg, opts)
        })
        .collect()
}
