//! The Lotka-Volterra universal differential equation: the linear terms are known, a small
//! network learns the interaction terms from 21 noisy points: four starts of Adam on growing
//! intervals and then on all the data, the best refined by L-BFGS.
//!
//! `cargo run --release -p diffsim-examples --example lv_ude`

use diffsim::optim::{Control, MinimizeOptions};
use diffsim_examples::{self as examples, lv_term_errors, Worked};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ex = examples::lv_ude(1, 1e-6, 1e-6)?;
    let initial = ex.loss(&ex.p0.clone());
    println!("lv-ude: {} network parameters, initial loss {initial:.4}", ex.p0.len());
    let start = Instant::now();
    let recipe = examples::LvRecipe::default();
    let report = examples::train_lv_ude(&mut ex, &recipe, &MinimizeOptions::default(), None, &mut |p| {
        if p.iteration % 250 == 0 {
            println!("  iteration {:4} ({})  loss {:.6}", p.iteration, p.optimizer, p.loss);
        }
        Control::Continue
    })?;
    println!("trained in {:.2} s: best loss {:.6}", start.elapsed().as_secs_f64(), report.best_loss);
    let (worst, rel) = lv_term_errors(&ex, &report.best_x);
    println!("learned interaction terms vs -beta x y, gamma x y on the data: largest error {worst:.3}, relative RMS {rel:.3}");
    Ok(())
}
