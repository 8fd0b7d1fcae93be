//! The one step-control loop shared by every method family: step-size control, tstops,
//! saving, dense output, callbacks, statistics and return codes.

use super::controller::{error_norm_sq, initial_step, PiController};
use super::dense::DenseOutput;
use super::options::{SaveAt, SolveOptions};
use super::solution::{RetCode, Solution, Stats, StepLog, StepRecord};
use super::stepper::Stepper;
use super::stiffness::PowerIteration;
use super::Algorithm;
use crate::error::Result;
use crate::problem::check_inputs;
use crate::{Model, Scalar};

/// A per-step callback: called after every accepted step with `(t, u)`; return `false` to
/// stop the solve (it then ends with [`RetCode::Terminated`]).
pub type StepCallback<'a, T> = &'a mut dyn FnMut(f64, &[T]) -> bool;

/// The smallest representable step away from `t` in direction `dir`: used to evaluate `f`
/// just past a discontinuity, on the side the integration is heading to.
#[inline]
fn just_past(t: f64, dir: f64) -> f64 {
    if dir > 0.0 {
        t.next_up()
    } else {
        t.next_down()
    }
}

/// The smallest representable step back from `t` against direction `dir`: the stages at the
/// end of a step that lands on a discontinuity are evaluated there, on the step's side.
#[inline]
fn just_before(t: f64, dir: f64) -> f64 {
    just_past(t, -dir)
}

/// `h |lambda|` beyond which Tsit5's step is limited by stability (its real stability
/// interval reaches about -3.5; a little margin).
const STABILITY_BOUNDARY: f64 = 3.0;

/// Integrate with `stepper` from `tspan.0` to `tspan.1`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn integrate<T: Scalar, M: Model, S: Stepper<T, M>>(
    model: &M,
    u0: &[T],
    p: &[T],
    tspan: (f64, f64),
    opts: &SolveOptions,
    stepper: &mut S,
    alg: Algorithm,
    mut callback: Option<StepCallback<'_, T>>,
    stop_when_stiff: bool,
) -> Result<Solution<T>> {
    check_inputs(model, u0, p, tspan)?;
    opts.validate(tspan)?;
    let n = model.n_states();
    let atol = opts.atol.expand(n, "atol")?;
    let controlled = opts.error_states.map_or(n, |k| k.clamp(1, n.max(1)));
    let rtol = opts.rtol.expand(n, "rtol")?;
    if atol.iter().zip(&rtol).any(|(a, r)| *a == 0.0 && *r == 0.0) {
        return Err(crate::DiffsimError::InvalidTolerance(
            "a component has atol = rtol = 0; at least one must be positive".into(),
        ));
    }
    let (t0, t1) = tspan;
    let dir = (t1 - t0).signum();
    let span = t1 - t0;

    // Stops: the model's discontinuities, the user's, and the end; strictly after t0.
    let pv: Vec<f64> = p.iter().map(|x| x.value()).collect();
    let mut stops: Vec<f64> = model.tstops(&pv).into_iter().chain(opts.tstops.iter().copied()).collect();
    stops.retain(|&s| (s - t0) * dir > 0.0 && (s - t1) * dir < 0.0);
    stops.push(t1);
    stops.sort_by(|a, b| ((a - b) * dir).total_cmp(&0.0));
    stops.dedup();

    let (save_every, mut save_times) = match &opts.saveat {
        SaveAt::EveryStep => (true, Vec::new()),
        SaveAt::Times(ts) => {
            let mut ts = ts.clone();
            ts.sort_by(|a, b| ((a - b) * dir).total_cmp(&0.0));
            (false, ts)
        }
    };
    let keep_dense = opts.dense.unwrap_or(save_every);

    let mut stats = Stats::default();
    let mut sol = Solution {
        t: Vec::new(),
        u_flat: Vec::new(),
        n,
        retcode: RetCode::Success,
        stats,
        alg,
        t_reached: t0,
        u_reached: Vec::new(),
        switched: false,
        next_step: 0.0,
        dense: keep_dense.then(|| DenseOutput::new(n, t0, u0, stepper.interpolant())),
        steps: opts.record_steps.then(StepLog::default),
    };
    let mut si = 0; // next save time
    if save_every {
        sol.t.push(t0);
        sol.u_flat.extend_from_slice(u0);
    } else {
        while si < save_times.len() && save_times[si] == t0 {
            sol.t.push(t0);
            sol.u_flat.extend_from_slice(u0);
            si += 1;
        }
    }

    let mut t = t0;
    let mut u = u0.to_vec();
    let mut u_new = vec![T::zero(); n];
    let mut err = vec![T::zero(); n];
    let mut interp = vec![T::zero(); n];

    let f0_finite = stepper.ensure_f0(model, p, t, &u, &mut stats).iter().all(|x| x.is_finite());
    if !f0_finite {
        sol.retcode = RetCode::InitialFailure;
        sol.stats = stats;
        return Ok(sol);
    }
    let mut h = match opts.dt {
        Some(dt) => dir * dt.min(span.abs()),
        None => {
            let mut a = vec![T::zero(); n];
            let mut b = vec![T::zero(); n];
            let f0 = stepper.ensure_f0(model, p, t, &u, &mut stats).to_vec();
            let (h, evals) =
                initial_step(model, p, t, &u, &f0, span, stepper.order(), &atol, &rtol, controlled, &mut a, &mut b);
            stats.nf += evals;
            h
        }
    };
    let mut controller = PiController::new(stepper.error_order());
    let mut stop_idx = 0;
    let mut after_discontinuity = false;
    let mut after_reject = false;
    // Hairer's rule: stiff after 15 stability-limited accepted steps, reset by 6 others;
    // and a power-iteration probe of J's spectral radius (see `stiffness`).
    let (mut stiff_count, mut nonstiff_count) = (0u32, 0u32);
    let mut probe = stop_when_stiff.then(|| PowerIteration::new(n, p.len()));
    let mut probe_hits = 0;

    let retcode = loop {
        if stats.nsteps >= opts.max_steps {
            break RetCode::MaxIters;
        }
        let next_stop = stops[stop_idx];
        // `h` already carries the direction; a branch (not abs, min and a multiply) keeps the
        // common case off the step's critical path.
        let mut h_try = if h.abs() <= opts.dt_max { h } else { dir * opts.dt_max };
        let mut lands = false;
        // Land on the stop; also stretch slightly to it rather than leave a sliver.
        if (t + h_try * 1.000_001 - next_stop) * dir >= 0.0 {
            h_try = next_stop - t;
            lands = true;
        }
        let end = if lands { next_stop } else { t + h_try };
        // Stops other than the last are discontinuities: no stage sees the far side.
        let at_discontinuity = lands && stop_idx + 1 < stops.len();
        let times = StepRecord {
            t,
            h: h_try,
            first: if after_discontinuity { just_past(t, dir) } else { t },
            last: if at_discontinuity { just_before(end, dir) } else { end },
            end,
        };
        stepper.attempt(model, p, &times, &u, &mut u_new, &mut err, &mut stats);
        stats.nsteps += 1;
        // The squared error norm (accept when <= 1).
        let e = if opts.adaptive {
            error_norm_sq(&err[..controlled], &u, &u_new, &atol, &rtol, opts.error_norm)
        } else {
            0.0
        };
        let finite = e.is_finite() && u_new.iter().all(|x| x.is_finite());
        if finite && e <= 1.0 {
            stats.naccept += 1;
            let t_new = end;
            // Save.
            if save_every {
                sol.t.push(t_new);
                sol.u_flat.extend_from_slice(&u_new);
            } else {
                while si < save_times.len() && (save_times[si] - t_new) * dir <= 0.0 {
                    let ts = save_times[si];
                    if ts == t_new {
                        sol.u_flat.extend_from_slice(&u_new);
                    } else {
                        let theta = (ts - t) / (t_new - t);
                        let interpolant = stepper.interpolant();
                        let data = stepper.dense_data(model, p, &times, &u, &u_new, &mut stats);
                        interpolant.evaluate(theta, h_try, &u, &u_new, data, &mut interp);
                        sol.u_flat.extend_from_slice(&interp);
                    }
                    sol.t.push(ts);
                    si += 1;
                }
            }
            if keep_dense {
                let data = stepper.dense_data(model, p, &times, &u, &u_new, &mut stats);
                if let Some(d) = sol.dense.as_mut() {
                    d.push(t_new, &u_new, data);
                }
            }
            if let Some(log) = sol.steps.as_mut() {
                if log.records.len() % opts.record_state_every.max(1) == 0 {
                    log.u_start.extend_from_slice(&u);
                }
                log.records.push(times);
                // A step cut to land on a stop says nothing about what accuracy asked for.
                log.error_sq.push(if lands { f64::NAN } else { e });
            }
            after_discontinuity = at_discontinuity;
            stepper.accept(after_discontinuity);
            std::mem::swap(&mut u, &mut u_new);
            t = t_new;
            sol.t_reached = t;
            if lands {
                stop_idx += 1;
                if stop_idx == stops.len() {
                    break RetCode::Success;
                }
            }
            if let Some(cb) = callback.as_mut() {
                if !cb(t, &u) {
                    break RetCode::Terminated;
                }
            }
            if let Some(probe) = probe.as_mut() {
                // Every 25 accepted steps: is h beyond what stability allows?
                if stats.naccept % 25 == 0 {
                    let rho = probe.estimate(model, p, t, &u, 4);
                    probe_hits = if h_try.abs() * rho > STABILITY_BOUNDARY { probe_hits + 1 } else { 0 };
                    if probe_hits >= 2 {
                        sol.switched = true;
                        break RetCode::Success;
                    }
                }
                if stepper.stiffness_ratio().unwrap_or(0.0) > 1.0 {
                    nonstiff_count = 0;
                    stiff_count += 1;
                    if stiff_count >= 15 {
                        sol.switched = true;
                        break RetCode::Success;
                    }
                } else {
                    nonstiff_count += 1;
                    if nonstiff_count >= 6 {
                        stiff_count = 0;
                    }
                }
            }
            if opts.adaptive {
                // A step shortened to land on a stop says little about the next one.
                let h_base = if lands { dir * h.abs().max(h_try.abs()) } else { h_try };
                h = h_base * controller.accept(e, after_reject);
            }
            after_reject = false;
        } else {
            stats.nreject += 1;
            after_reject = true;
            h = h_try * controller.reject(e);
            let floor = opts.dt_min.max(4.0 * f64::EPSILON * t.abs().max(t0.abs()).max(t1.abs()));
            if h.abs() < floor || !opts.adaptive {
                break if finite { RetCode::DtLessThanMin } else { RetCode::Unstable };
            }
        }
    };
    sol.retcode = retcode;
    sol.stats = stats;
    if stats.naccept > 0 && h.is_finite() {
        sol.next_step = h.abs();
    }
    sol.u_reached = u;
    save_times.clear();
    Ok(sol)
}
