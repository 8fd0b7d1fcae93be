//! The spiral neural ODE: 252 network parameters trained through Tsit5 with the discrete
//! adjoint, 300 Adam iterations.
//!
//! `cargo run --release -p diffsim-examples --example spiral`

use diffsim::optim::{Adam, Control, MinimizeOptions};
use diffsim_examples::{self as examples, Worked};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ex = examples::spiral(0, 1e-7, 1e-9)?;
    let p0 = ex.p0.clone();
    let mut grad = vec![0.0; p0.len()];
    // One loss-and-gradient, timed (median of 50).
    let mut times: Vec<f64> = (0..50)
        .map(|_| {
            let t = Instant::now();
            ex.loss_and_gradient(&p0, &mut grad);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let initial = ex.loss(&p0);
    println!("spiral: {} parameters, initial loss {initial:.4}", p0.len());
    println!("one loss-and-gradient ({}): {:.3} ms (median of 50)", ex.sensealg_name()?, times[25] * 1e3);
    let start = Instant::now();
    let opts = MinimizeOptions::default().max_iters(300);
    let report = ex.train(&p0, &mut Adam::new(0.05), &opts, None, &mut |p| {
        if p.iteration % 50 == 0 {
            println!("  iteration {:4}  loss {:.6}", p.iteration, p.loss);
        }
        Control::Continue
    })?;
    println!(
        "300 Adam iterations: {:.3} s; best loss {:.6} ({:.0}x lower)",
        start.elapsed().as_secs_f64(),
        report.best_loss,
        initial / report.best_loss
    );
    Ok(())
}
