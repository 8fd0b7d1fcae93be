//! An ensemble of 100 Lotka-Volterra solves with seeded random parameters.
//!
//! Shows: `diffsim::ensemble::solve_ensemble` solving one problem for many parameter sets
//! in parallel (rayon), each member's own `Result` and `RetCode`, and reproducibility: the
//! parameters come from `ChaCha8Rng::seed_from_u64`, so the same seed gives the same
//! ensemble and the same numbers (results do not depend on the number of threads). It
//! prints the mean final state, the retcode counts and the total work.
//!
//! Run it with:
//!
//! ```sh
//! cargo run --release -p diffsim --example ensemble
//! ```

use diffsim::ensemble::{solve_ensemble, Member};
use diffsim::models::LotkaVolterra;
use diffsim::{Algorithm, Problem, SolveOptions, Stats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

const MEMBERS: usize = 100;
const SEED: u64 = 42;

fn main() -> Result<(), diffsim::DiffsimError> {
    // alpha, beta, gamma, delta; each member scales them by a factor in [0.8, 1.25].
    let p0 = [1.5, 1.0, 3.0, 1.0];
    let tspan = (0.0, 10.0);
    let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], p0.to_vec(), tspan)?;

    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let members: Vec<Member> = (0..MEMBERS)
        .map(|_| Member { u0: None, p: Some(p0.iter().map(|&x| x * rng.random_range(0.8..=1.25)).collect()) })
        .collect();

    // Keep only the end point of each member.
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(vec![tspan.1]);
    let start = std::time::Instant::now();
    let sols = solve_ensemble(&prob, Algorithm::Tsit5, &opts, &members);
    let ms = start.elapsed().as_secs_f64() * 1e3;

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sum = [0.0; 2];
    let mut ok = 0usize;
    let mut total = Stats::default();
    for sol in &sols {
        match sol {
            Ok(sol) => {
                *counts.entry(sol.retcode().as_str()).or_default() += 1;
                total += sol.stats();
                if sol.retcode().is_success() {
                    let u = sol.u(0);
                    sum[0] += u[0];
                    sum[1] += u[1];
                    ok += 1;
                }
            }
            Err(_) => *counts.entry("InputError").or_default() += 1,
        }
    }
    println!("Lotka-Volterra ensemble: {MEMBERS} members, seed {SEED}, Tsit5, rtol = atol = 1e-8");
    println!("retcodes: {counts:?}");
    if ok > 0 {
        let (x, y) = (sum[0] / ok as f64, sum[1] / ok as f64);
        println!("mean final state at t = {}: [{x:.6}, {y:.6}] (over {ok} successful members)", tspan.1);
    }
    println!(
        "total work: {} steps ({} rejected), {} f evals; wall time {ms:.2} ms",
        total.naccept, total.nreject, total.nf
    );
    let first = sols[0].as_ref().map(|s| s.u(0).to_vec());
    println!("member 0: p = {:?}, u(10) = {:?}", members[0].p.as_deref().unwrap_or(&[]), first);
    Ok(())
}
