//! PNG plots with plotters.

use diffsim::Solution;
use plotters::prelude::*;

/// Plot every state (up to 6, one panel each) against time.
pub fn solution(path: &str, title: &str, sol: &Solution) -> Result<(), String> {
    let n = sol.n.min(6);
    if sol.is_empty() || n == 0 {
        return Err("nothing to plot".into());
    }
    draw(path, title, sol, n).map_err(|e| format!("could not write plot {path}: {e}"))
}

fn draw(path: &str, title: &str, sol: &Solution, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (900, 220 * n as u32 + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let panels = root.split_evenly((n, 1));
    let (t0, t1) = (sol.t[0], sol.t[sol.len() - 1]);
    let (tl, th) = if t0 < t1 { (t0, t1) } else { (t1, t0) };
    for (i, panel) in panels.iter().enumerate() {
        let ys: Vec<f64> = sol.states().map(|u| u[i]).collect();
        let lo = ys.iter().copied().filter(|y| y.is_finite()).fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().filter(|y| y.is_finite()).fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.05).max(1e-12 * hi.abs().max(1.0));
        let mut chart = ChartBuilder::on(panel)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(tl..th.max(tl + 1e-300), (lo - pad)..(hi + pad))?;
        chart.configure_mesh().x_desc("t").y_desc(format!("u[{i}]")).label_style(("sans-serif", 13)).draw()?;
        chart.draw_series(LineSeries::new(
            sol.t.iter().zip(&ys).filter(|(_, y)| y.is_finite()).map(|(&t, &y)| (t, y)),
            Palette99::pick(i).stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}
