//! Lorenz attractor: Tsit5 against Vern7 at rtol = atol = 1e-8.
//!
//! Shows: solving the same non-stiff, chaotic problem with two explicit Runge-Kutta
//! methods, sampling each solution's dense output (the method's own interpolant) on a
//! uniform grid, the difference between the two on that grid (it grows with t, as it must
//! for a chaotic system), and the step statistics (accepted / rejected steps, f evaluations).
//!
//! Run it with:
//!
//! ```sh
//! cargo run --release -p diffsim --example lorenz
//! ```

use diffsim::models::Lorenz;
use diffsim::{solve, Algorithm, Problem, Solution, SolveOptions};
use std::time::Instant;

fn main() -> Result<(), diffsim::DiffsimError> {
    let tspan = (0.0, 20.0);
    let prob = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], tspan)?;
    // Save every step (the default) and keep the dense output for interpolation.
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).dense(true);

    let mut sols: Vec<(Algorithm, Solution)> = Vec::new();
    println!("Lorenz on t in [{}, {}], rtol = atol = 1e-8\n", tspan.0, tspan.1);
    println!("{:<6} {:>8} {:>9} {:>9} {:>10}", "method", "accepted", "rejected", "f evals", "time (ms)");
    for alg in [Algorithm::Tsit5, Algorithm::Vern7] {
        let start = Instant::now();
        let sol = solve(&prob, alg, &opts)?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        assert!(sol.retcode().is_success(), "{alg}: {}", sol.retcode().as_str());
        let s = sol.stats();
        println!("{:<6} {:>8} {:>9} {:>9} {:>10.3}", alg.name(), s.naccept, s.nreject, s.nf, ms);
        sols.push((alg, sol));
    }

    // Dense output sampled on a uniform grid: t = 0, 1, ..., 20.
    println!("\nDense output on a grid (x component) and the max-norm difference between the methods:");
    println!("{:>5} {:>18} {:>18} {:>12}", "t", "x (tsit5)", "x (vern7)", "|diff|");
    let (tsit5, vern7) = (&sols[0].1, &sols[1].1);
    for i in 0..=20 {
        let t = tspan.0 + (tspan.1 - tspan.0) * i as f64 / 20.0;
        let a = tsit5.interpolate(t)?;
        let b = vern7.interpolate(t)?;
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        println!("{t:>5.1} {:>18.10} {:>18.10} {diff:>12.3e}", a[0], b[0]);
    }
    println!("\nBoth end states (saved at the last step, t = {}):", tspan.1);
    for (alg, sol) in &sols {
        println!("  {:<6} {:?}", alg.name(), sol.last().unwrap_or(&[]));
    }
    Ok(())
}
