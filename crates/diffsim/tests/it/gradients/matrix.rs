//! The gradient test matrix (issue 17): every sensealg x applicable VJP x a model set x data
//! placements, each gradient against central differences of tight solves
//! (`finite_difference_gradient`). Methods that refuse a combination by design must return
//! the documented error; warnings the docs promise must be present.
//!
//! `cargo test --profile ci -p diffsim --test it matrix -- --nocapture` also prints
//! the worst error per sensealg and model. Its models are `ZooModel`s and variants of
//! `Custom`, so the matrix compiles no gradient stack of its own. A failure names its cell:
//! model, data placement, sensealg, VJP, then the error or the worst component.

use super::{zoo, Custom, CHAIN};
use diffsim::models::ZooModel;
use diffsim::nn::{Activation, Init, Mlp};
use diffsim::sensitivity::{
    finite_difference_gradient, gradient, GradientCheck, GradientWarning, Loss, SensAlg, VjpMethod,
};
use diffsim::{Algorithm, DiffsimError, Model, Problem, SolveOptions};
use std::collections::BTreeMap;

/// A model of the matrix: its problem, how it is solved, and what the methods owe it.
struct Case<M: Model> {
    name: &'static str,
    problem: Problem<M>,
    alg: Algorithm,
    rtol: f64,
    atol: f64,
    /// Data placements: a name and the save times.
    placements: Vec<(&'static str, Vec<f64>)>,
    /// The largest relative error accepted.
    bound: f64,
    /// The index (in `[p..., u0...]`) of a switch time that moves with the parameters.
    moving: Option<usize>,
    /// The model kinks on its state (its gradients must carry a warning).
    state_kink: bool,
}

/// Save times on the step boundaries the solver must land on (`stops`, then `t1`), the
/// same times moved off them, and (for switching models) just before and after each switch.
fn placements(stops: &[f64], t1: f64, around: Option<f64>) -> Vec<(&'static str, Vec<f64>)> {
    let on: Vec<f64> = stops.iter().copied().chain([t1]).collect();
    let off = on.iter().map(|t| t - 0.037).collect();
    let mut out = vec![("on", on), ("off", off)];
    if let Some(d) = around {
        out.push(("around", stops.iter().flat_map(|s| [s - d, s + d]).chain([t1]).collect()));
    }
    out
}

/// Where the switches in time are (data just before and after): 1e-3 away.
const NEAR: f64 = 1e-3;
/// Explicit solves of the matrix: the gradients are then accurate well below `BOUND`.
const TIGHT: f64 = 1e-11;
/// The relative error every method must reach against the reference.
const BOUND: f64 = 1e-6;

fn explicit<M: Model>(name: &'static str, problem: Problem<M>, placements: Vec<(&'static str, Vec<f64>)>) -> Case<M> {
    Case {
        name,
        problem,
        alg: Algorithm::Tsit5,
        rtol: TIGHT,
        atol: TIGHT,
        placements,
        bound: BOUND,
        moving: None,
        state_kink: false,
    }
}

fn at_rest() -> Case<ZooModel> {
    let problem = zoo("lv-piecewise", vec![1.0, 1.0], vec![1.0; 4], (0.0, 4.0));
    explicit("rest", problem, placements(&[1.0, 2.0, 3.0], 4.0, Some(NEAR)))
}

fn oscillating() -> Case<ZooModel> {
    let problem = zoo("lotka-volterra", vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 5.0));
    explicit("oscillating", problem, placements(&[1.25, 2.5, 3.75], 5.0, None))
}

fn chaotic() -> Case<ZooModel> {
    let problem = zoo("lorenz", vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0));
    explicit("chaotic", problem, placements(&[0.25, 0.5, 0.75], 1.0, None))
}

/// Van der Pol with `mu = 100`, started on its slow manifold `y = x / (1 - x^2)` and solved
/// up to before its first jump (near t = 0.8): stiff, and smooth in its inputs. Across the
/// jumps the loss is so curved in `u0` that the reference's step (`1e-3 |x|`) is off by
/// 4e-4; Robertson's zero initial states have no central difference at all (the moved
/// solves start negative and blow up).
fn stiff() -> Case<ZooModel> {
    let problem = zoo("van-der-pol", vec![2.0, -2.0 / 3.0], vec![100.0], (0.0, 0.5));
    Case {
        alg: Algorithm::Rodas5P,
        rtol: 1e-9,
        atol: 1e-9,
        ..explicit("stiff", problem, placements(&[0.125, 0.25, 0.375], 0.5, None))
    }
}

/// The same problem solved by BDF: its forward sensitivities and continuous adjoints
/// (whose backward solves use BDF too); the discrete adjoint refuses.
fn stiff_bdf() -> Case<ZooModel> {
    Case { name: "stiff-bdf", alg: Algorithm::Bdf, ..stiff() }
}

/// And by Radau IIA 5. Its dense output (the collocation polynomial) is of order 3 between
/// steps that are long at tight tolerances: the continuous adjoints, which read the forward
/// solution between steps, are held to a looser bound than the steps' own accuracy.
fn stiff_radau() -> Case<ZooModel> {
    Case { name: "stiff-radau", alg: Algorithm::Radau5, bound: 1e-5, ..stiff() }
}

/// And by Radau IIA 9: its steps are longer still (its collocation polynomial, of order 5
/// between them, is what the continuous adjoints read), so they are held to 5e-5; its
/// forward sensitivities meet the usual bound.
fn stiff_radau9() -> Case<ZooModel> {
    Case { name: "stiff-radau9", alg: Algorithm::Radau9, bound: 5e-5, ..stiff() }
}

fn tstops() -> Case<ZooModel> {
    let problem = zoo("lv-piecewise", vec![1.2, 0.8], vec![1.0, 1.5, 0.5, 2.0], (0.0, 4.0));
    explicit("tstops", problem, placements(&[1.0, 2.0, 3.0], 4.0, Some(NEAR)))
}

fn undeclared() -> Case<Custom> {
    let p = vec![1.5, 1.0, 3.0, 1.0, 2.5];
    let problem = Problem::new(Custom::UndeclaredSwitch, vec![1.0, 1.0], p, (0.0, 3.0)).unwrap();
    explicit("undeclared", problem, placements(&[1.5], 3.0, Some(NEAR)))
}

fn moving() -> Case<Custom> {
    let problem = Problem::new(Custom::MovingSwitch, vec![1.0, 1.0], vec![1.5, 0.8, 3.0, 1.5], (0.0, 3.0)).unwrap();
    // The reference moves the switch time by up to 1e-3 * 1.5 either way: data nearer than
    // that would be crossed by the moved switch, and the central difference would straddle
    // the loss's kink there.
    Case { moving: Some(3), ..explicit("moving", problem, placements(&[1.5], 3.0, Some(1e-2))) }
}

/// The spring starts above the saturation level `c`; with `c = 0.5` it would first reach it
/// at exactly t = 1, a data time: the loss is then only once differentiable in `c` and the
/// reference's Richardson step is off by 8e-4, so `c = 0.6`.
fn kink() -> Case<Custom> {
    let problem = Problem::new(Custom::SaturatingSpring, vec![1.0, 0.0], vec![2.0, 0.6], (0.0, 4.0)).unwrap();
    Case { state_kink: true, ..explicit("kink", problem, placements(&[1.0, 2.0, 3.0], 4.0, None)) }
}

fn neural() -> Case<Custom> {
    let net = Mlp::with_hidden(&[2, 5, 2], Activation::Tanh).unwrap();
    let p = net.init_params(Init::GlorotUniform, 17, 1.0);
    let problem = Problem::new(Custom::WithNet(net), vec![0.5, -0.3], p, (0.0, 1.5)).unwrap();
    explicit("neural", problem, placements(&[0.5, 1.0], 1.5, None))
}

fn many_params() -> Case<Custom> {
    let p = (0..CHAIN).flat_map(|i| [0.5 + 0.1 * i as f64, 0.8 - 0.05 * i as f64, 0.1 * (i % 3) as f64]).collect();
    let problem = Problem::new(Custom::Chain, vec![0.2; CHAIN], p, (0.0, 2.0)).unwrap();
    explicit("many-params", problem, placements(&[0.5, 1.0, 1.5], 2.0, None))
}

/// A weighted sum of the saved values, the weights varied so that no symmetry of a model
/// cancels a component.
fn loss(n_values: usize) -> Loss {
    Loss::Weighted((0..n_values).map(|k| 1.0 + 0.25 * ((3 * k) % 5) as f64).collect::<Vec<_>>().into())
}

/// What a cell must do: agree with the reference, or refuse with the documented error.
enum Expect {
    Agree,
    Refused(&'static str),
}

/// The outcome of one cell.
struct Cell {
    model: &'static str,
    placement: &'static str,
    sensealg: SensAlg,
    /// The judged relative error (`None` when the method refused as documented).
    error: Option<f64>,
    /// Why the cell failed, if it did.
    failure: Option<String>,
}

impl Cell {
    fn label(&self) -> String {
        let vjp = self.sensealg.vjp().map_or("-", VjpMethod::name);
        format!("{} / data {} / {} / vjp {}", self.model, self.placement, self.sensealg.name(), vjp)
    }
}

/// Every sensealg but the value-norm demonstration, with every VJP that applies.
fn all_methods<M: Model>(case: &Case<M>) -> Vec<SensAlg> {
    let mut vjps = vec![VjpMethod::Auto, VjpMethod::Forward, VjpMethod::Tape, VjpMethod::CompiledTape];
    if case.problem.model().derivatives().has_vjp() {
        vjps.push(VjpMethod::Model);
    }
    // Refused for stiff solves: kept to check the refusal.
    vjps.push(VjpMethod::FiniteDiff);
    let adjoints: [fn(VjpMethod) -> SensAlg; 6] = [
        SensAlg::Discrete,
        SensAlg::DiscreteCheckpointing,
        SensAlg::Interpolating,
        SensAlg::Checkpointing,
        SensAlg::Quadrature,
        SensAlg::Backsolve,
    ];
    let mut out = vec![SensAlg::Auto, SensAlg::Forward, SensAlg::ForwardAd];
    for make in adjoints {
        // Backsolve is documented as unstable on stiff problems: not applicable there.
        if case.alg.is_stiff() && make(VjpMethod::Auto) == SensAlg::Backsolve(VjpMethod::Auto) {
            continue;
        }
        out.extend(vjps.iter().map(|&v| make(v)));
    }
    out
}

/// The documented refusals; everything else must agree with the reference.
fn expect<M: Model>(case: &Case<M>, sensealg: SensAlg) -> Expect {
    let forward = matches!(sensealg, SensAlg::Forward | SensAlg::ForwardAd);
    if case.alg.is_stiff() && sensealg.vjp() == Some(VjpMethod::FiniteDiff) {
        Expect::Refused("finite-difference VJPs are too inaccurate for stiff solves")
    } else if matches!(case.alg, Algorithm::Bdf | Algorithm::Radau5 | Algorithm::Radau9)
        && matches!(sensealg, SensAlg::Discrete(_) | SensAlg::DiscreteCheckpointing(_))
    {
        Expect::Refused("the stiff discrete adjoint goes through rodas4 or rodas5p steps")
    } else if case.alg.is_stiff() && sensealg == SensAlg::ForwardAd {
        Expect::Refused("forward AD runs the explicit methods")
    } else if case.moving.is_some() && forward {
        Expect::Refused("depends on the parameters")
    } else if case.moving.is_some() && sensealg.vjp() == Some(VjpMethod::FiniteDiff) {
        Expect::Refused("moves with p")
    } else {
        Expect::Agree
    }
}

/// The warnings the docs promise for this cell.
fn promised<M: Model>(case: &Case<M>, resolved: SensAlg, times: &[f64]) -> Vec<GradientWarning> {
    let mut w = Vec::new();
    if case.state_kink {
        w.push(GradientWarning::StateDependentSwitch);
        if matches!(resolved, SensAlg::Discrete(_) | SensAlg::DiscreteCheckpointing(_)) {
            w.push(GradientWarning::DiscreteAcrossStateSwitch);
        }
    }
    if let Some(i) = case.moving {
        let t = case.problem.p()[i];
        if times.contains(&t) {
            w.push(GradientWarning::DataOnMovingSwitch { t });
        }
    }
    w
}

/// Run the cells of `case` whose placement and method `keep` accepts.
fn run<M: Model>(case: &Case<M>, keep: impl Fn(&str, SensAlg) -> bool) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (placement, times) in &case.placements {
        let methods: Vec<SensAlg> = all_methods(case).into_iter().filter(|&s| keep(placement, s)).collect();
        if methods.is_empty() {
            continue;
        }
        let opts = SolveOptions::default().rtol(case.rtol).atol(case.atol).saveat_times(times.clone());
        let loss = loss(times.len() * case.problem.u0().len());
        let reference = finite_difference_gradient(&case.problem, case.alg, &opts, &loss);
        for sensealg in methods {
            let (error, failure) = match &reference {
                Ok(fd) => judge(case, times, &opts, &loss, sensealg, fd),
                Err(e) => (None, Some(format!("the reference failed: {e}"))),
            };
            cells.push(Cell { model: case.name, placement, sensealg, error, failure });
        }
    }
    cells
}

/// One cell: the gradient, then the documented refusal or the comparison and warnings.
fn judge<M: Model>(
    case: &Case<M>,
    times: &[f64],
    opts: &SolveOptions,
    loss: &Loss,
    sensealg: SensAlg,
    fd: &[f64],
) -> (Option<f64>, Option<String>) {
    let result = gradient(&case.problem, case.alg, opts, loss, sensealg);
    match (expect(case, sensealg), result) {
        (Expect::Refused(why), Err(e)) => {
            let documented = matches!(e, DiffsimError::Unsupported { .. }) && e.to_string().contains(why);
            (None, (!documented).then(|| format!("refused with the wrong error: {e} (expected one saying {why:?})")))
        }
        (Expect::Refused(why), Ok(g)) => {
            (None, Some(format!("returned a gradient ({:?}) where it must refuse ({why:?})", g.dp)))
        }
        (Expect::Agree, Err(e)) => (None, Some(format!("error: {e}"))),
        (Expect::Agree, Ok(g)) => {
            let missing: Vec<GradientWarning> =
                promised(case, g.sensealg, times).into_iter().filter(|w| !g.warnings.contains(w)).collect();
            let check = GradientCheck::new(g, fd.to_vec()).expect("the reference has the gradient's layout");
            let (err, worst) = judged_worst(case, times, &check);
            let mut why = Vec::new();
            // A NaN error fails too.
            if err.is_nan() || err >= case.bound {
                let (g, r) = (check.computed().nth(worst).unwrap_or(f64::NAN), check.fd[worst]);
                why.push(format!(
                    "max_rel_err {err:.2e} > {:.0e} at {} (gradient {g:.12e}, reference {r:.12e}; computed by {})",
                    case.bound,
                    check.name(worst),
                    check.gradient.sensealg.name()
                ));
            }
            if !missing.is_empty() {
                why.push(format!("missing warnings {missing:?} (got {:?})", check.gradient.warnings));
            }
            (Some(err), (!why.is_empty()).then(|| why.join("; ")))
        }
    }
}

/// The largest relative error and its component. With data exactly on a switch that moves
/// with the parameters, the loss has a kink in the switch time: the gradient is documented
/// as the one-sided derivative, central differences average both sides, so that component
/// is left out (its warning is checked instead).
fn judged_worst<M: Model>(case: &Case<M>, times: &[f64], check: &GradientCheck) -> (f64, usize) {
    let skip = case.moving.filter(|&i| times.contains(&case.problem.p()[i]));
    let key = |x: f64| if x.is_nan() { f64::INFINITY } else { x };
    (0..check.rel_err.len())
        .filter(|&i| Some(i) != skip)
        .map(|i| (check.rel_err[i], i))
        .fold((0.0, 0), |best, (e, i)| if key(e) > key(best.0) { (e, i) } else { best })
}

/// Worst error per sensealg (rows) and model (columns); "refused" where every cell refused
/// as documented, "FAIL" where a cell failed without an error to show.
fn summary(cells: &[Cell]) -> String {
    let mut models: Vec<&str> = Vec::new();
    let mut table: BTreeMap<(&str, &str), (Option<f64>, bool)> = BTreeMap::new();
    for c in cells {
        if !models.contains(&c.model) {
            models.push(c.model);
        }
        let entry = table.entry((c.sensealg.name(), c.model)).or_insert((None, false));
        if let Some(e) = c.error {
            entry.0 = Some(entry.0.map_or(e, |w: f64| if e.is_nan() { e } else { w.max(e) }));
        }
        entry.1 |= c.failure.is_some();
    }
    let mut out = format!("{:<24}", "sensealg \\ model");
    models.iter().for_each(|m| out += &format!("{m:>12}"));
    for name in SensAlg::NAMES.iter().filter(|&&n| n != "forward-ad-value-norm") {
        out += &format!("\n{name:<24}");
        for m in &models {
            out += &match table.get(&(*name, *m)) {
                None => format!("{:>12}", "n/a"),
                Some((Some(e), failed)) => format!("{:>11.1e}{}", e, if *failed { "!" } else { " " }),
                Some((None, true)) => format!("{:>12}", "FAIL"),
                Some((None, false)) => format!("{:>12}", "refused"),
            };
        }
    }
    out + "\n(! marks a cell that failed; n/a: not applicable)"
}

/// Panic listing every failed cell.
fn assert_cells(cells: &[Cell]) {
    assert!(!cells.is_empty(), "no cells ran");
    let failures: Vec<String> =
        cells.iter().filter_map(|c| c.failure.as_ref().map(|f| format!("{}: {f}", c.label()))).collect();
    assert!(failures.is_empty(), "{} of {} cells failed:\n{}", failures.len(), cells.len(), failures.join("\n"));
}

/// All of it: it runs in about a second (the models are small), so CI runs the whole matrix.
#[test]
fn full_gradient_matrix() {
    let all = |_: &str, _: SensAlg| true;
    let mut cells = run(&at_rest(), all);
    cells.extend(run(&oscillating(), all));
    cells.extend(run(&chaotic(), all));
    cells.extend(run(&stiff(), all));
    cells.extend(run(&stiff_bdf(), all));
    cells.extend(run(&stiff_radau(), all));
    cells.extend(run(&stiff_radau9(), all));
    cells.extend(run(&tstops(), all));
    cells.extend(run(&undeclared(), all));
    cells.extend(run(&moving(), all));
    cells.extend(run(&kink(), all));
    cells.extend(run(&neural(), all));
    cells.extend(run(&many_params(), all));
    println!("worst relative error per sensealg and model, {} cells:\n{}", cells.len(), summary(&cells));
    assert_cells(&cells);
}
