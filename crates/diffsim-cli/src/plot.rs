//! PNG plots with plotters.

use diffsim::Solution;
use plotters::prelude::*;

/// Plot every state (up to 6, one panel each) against time.
pub fn solution(path: &str, title: &str, sol: &Solution) -> Result<(), String> {
    let n = sol.n_states().min(6);
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
    let (t0, t1) = (sol.t()[0], sol.t()[sol.len() - 1]);
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
            sol.t().iter().zip(&ys).filter(|(_, y)| y.is_finite()).map(|(&t, &y)| (t, y)),
            Palette99::pick(i).stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// One curve of a panel: a line, or markers for data.
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
}

/// How a curve is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Dots at the points (data).
    Markers,
    /// A line.
    Line,
    /// A wide line, for a reference that thinner lines drawn after it may cover.
    Wide,
}

/// One panel: axis names, curves, and whether the y axis is logarithmic.
pub struct Panel {
    pub x_desc: String,
    pub y_desc: String,
    pub curves: Vec<Curve>,
    pub log_y: bool,
}

/// Panels stacked vertically in one PNG.
pub fn panels(path: &str, title: &str, panels: &[Panel]) -> Result<(), String> {
    draw_panels(path, title, panels).map_err(|e| format!("could not write plot {path}: {e}"))
}

fn draw_panels(path: &str, title: &str, panels: &[Panel]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (900, 300 * panels.len() as u32 + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    for (panel, area) in panels.iter().zip(root.split_evenly((panels.len(), 1))) {
        let pts = || {
            panel
                .curves
                .iter()
                .flat_map(|c| c.points.iter())
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!panel.log_y || *y > 0.0))
        };
        let (xl, xh) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &(x, _)| (l.min(x), h.max(x)));
        let (yl, yh) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &(_, y)| (l.min(y), h.max(y)));
        let usable = xl < xh && yl <= yh;
        if !usable {
            continue;
        }
        let mut builder = ChartBuilder::on(&area);
        builder.margin(8).x_label_area_size(28).y_label_area_size(70);
        macro_rules! fill {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(&panel.x_desc)
                    .y_desc(&panel.y_desc)
                    .label_style(("sans-serif", 13))
                    .draw()?;
                for (i, c) in panel.curves.iter().enumerate() {
                    let color = Palette99::pick(i).to_rgba();
                    let data = c
                        .points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!panel.log_y || *y > 0.0));
                    let legend_color = color;
                    if c.style == Style::Markers {
                        chart
                            .draw_series(data.map(|p| Circle::new(p, 3, color.filled())))?
                            .label(&c.label)
                            .legend(move |(x, y)| Circle::new((x + 10, y), 3, legend_color.filled()));
                    } else {
                        let width = if c.style == Style::Wide { 6 } else { 2 };
                        chart.draw_series(LineSeries::new(data, color.stroke_width(width)))?.label(&c.label).legend(
                            move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], legend_color.stroke_width(width)),
                        );
                    }
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 13))
                    .draw()?;
            }};
        }
        if panel.log_y {
            fill!(builder.build_cartesian_2d(xl..xh, (yl..yh * 1.0001).log_scale())?);
        } else {
            let pad = ((yh - yl) * 0.05).max(1e-12);
            fill!(builder.build_cartesian_2d(xl..xh, (yl - pad)..(yh + pad))?);
        }
    }
    root.present()?;
    Ok(())
}
