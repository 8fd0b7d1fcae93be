//! Robertson's stiff chemical kinetics with Rodas5P, as an ODE and as an index-1 DAE.
//!
//! Shows: the same chemistry written two ways, `Robertson` (three ODEs) and `RobertsonDae`
//! (two ODEs plus the conservation law `0 = y1 + y2 + y3 - 1`, i.e. a singular mass
//! matrix diag(1, 1, 0)), both solved by Rodas5P and compared at t = 40 with Hairer &
//! Wanner's reference solution; then `Algorithm::Auto` on both forms, where `sol.alg()` tells
//! which method finished the solve (Auto starts with Tsit5 and switches to Rodas5P once
//! it detects stiffness; mass-matrix problems go to Rodas5P directly).
//!
//! Run it with:
//!
//! ```sh
//! cargo run --release -p diffsim --example stiff_robertson
//! ```

use diffsim::models::{Robertson, RobertsonDae};
use diffsim::{solve, Algorithm, Model, Problem, Solution, SolveOptions};

/// Hairer & Wanner, Solving ODEs II: Robertson at t = 40.
const REFERENCE_T40: [f64; 3] = [0.7158270687, 9.185534764e-6, 0.2841637457];

fn solve_at_40<M: Model>(model: M, alg: Algorithm) -> Result<Solution, diffsim::DiffsimError> {
    let prob = Problem::new(model, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 40.0))?;
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-12).saveat_times(vec![40.0]);
    solve(&prob, alg, &opts)
}

fn report(label: &str, sol: &Solution) {
    let u = sol.u(0);
    let rel: Vec<f64> = u.iter().zip(REFERENCE_T40).map(|(x, r)| ((x - r) / r).abs()).collect();
    let s = sol.stats();
    println!("{label}");
    println!("  retcode {}, method that finished: {}", sol.retcode().as_str(), sol.alg().name());
    println!("  u(40)          = [{:.10}, {:.9e}, {:.10}]", u[0], u[1], u[2]);
    println!("  relative error = [{:.2e}, {:.2e}, {:.2e}]", rel[0], rel[1], rel[2]);
    println!("  y1 + y2 + y3 - 1 = {:.2e}", u.iter().sum::<f64>() - 1.0);
    println!(
        "  {} steps ({} rejected), {} f evals, {} Jacobians, {} LU factorisations\n",
        s.naccept, s.nreject, s.nf, s.njac, s.nlu
    );
}

fn main() -> Result<(), diffsim::DiffsimError> {
    println!("Robertson at t = 40, rtol 1e-8, atol 1e-12");
    println!("reference     = [{:.10}, {:.9e}, {:.10}]\n", REFERENCE_T40[0], REFERENCE_T40[1], REFERENCE_T40[2]);

    let ode = solve_at_40(Robertson, Algorithm::Rodas5P)?;
    report("ODE form, Rodas5P", &ode);
    let dae = solve_at_40(RobertsonDae, Algorithm::Rodas5P)?;
    report("DAE form (mass matrix diag(1, 1, 0)), Rodas5P", &dae);

    let diff = ode.u(0).iter().zip(dae.u(0)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    println!("ODE vs DAE at t = 40: max |difference| = {diff:.2e}\n");

    // Auto: Tsit5 with a stiffness test; sol.alg is the method used last.
    let auto_ode = solve_at_40(Robertson, Algorithm::Auto)?;
    report("ODE form, Auto (Tsit5 -> Rodas5P on stiffness)", &auto_ode);
    let auto_dae = solve_at_40(RobertsonDae, Algorithm::Auto)?;
    report("DAE form, Auto (mass matrix: Rodas5P from the start)", &auto_dae);
    Ok(())
}
