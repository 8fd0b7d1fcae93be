//! A discrete echo state network: a fixed random recurrent reservoir driven by a series,
//! and a linear readout fitted by ridge regression.
//!
//! ```text
//! r_{k+1} = (1 - a) r_k + a tanh(W r_k + W_in x_k + b),      x_{k+1} ~ W_out [r_{k+1}; 1]
//! ```
//!
//! `W` is sparse (about `degree` entries per row, uniform in [-1, 1]) and scaled to the
//! spectral radius asked for, `W_in` dense uniform in `[-input_scale, input_scale]`, `b`
//! uniform in `[-bias, bias]`, all from one seed. Training drives the reservoir with the
//! series (teacher forcing), drops a washout, and solves the ridge problem
//! `min |R W_out^T - X|^2 + ridge |W_out|^2` as the least-squares problem of the stacked
//! matrix `[R; sqrt(ridge) I]` by column-pivoted QR (no normal equations, whose condition
//! number is the square of `R`'s). Prediction feeds each output back as the next input.

use crate::error::{DiffsimError, Result};
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The reservoir's hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EsnOptions {
    /// Reservoir size.
    pub reservoir: usize,
    /// Spectral radius of `W` (below 1 for the echo state property, as a rule of thumb).
    pub spectral_radius: f64,
    /// Nonzeros per row of `W` on average.
    pub degree: usize,
    /// Leak rate `a` in (0, 1].
    pub leak: f64,
    /// Scale of the input weights.
    pub input_scale: f64,
    /// Scale of the biases.
    pub bias: f64,
    /// Ridge weight of the readout.
    pub ridge: f64,
    /// Steps of the training series that only warm the reservoir up.
    pub washout: usize,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for EsnOptions {
    fn default() -> Self {
        Self {
            reservoir: 300,
            spectral_radius: 0.9,
            degree: 6,
            leak: 1.0,
            input_scale: 0.1,
            bias: 0.1,
            ridge: 1e-6,
            washout: 100,
            seed: 1,
        }
    }
}

/// A trained echo state network. Serialisable: a trained network is saved and reused.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Esn {
    opts: EsnOptions,
    n_in: usize,
    /// `W`, by rows: `(column, value)` pairs.
    w: Vec<Vec<(usize, f64)>>,
    /// `W_in`, row-major (`reservoir x n_in`).
    w_in: Vec<f64>,
    b: Vec<f64>,
    /// `W_out`, row-major (`n_in x (reservoir + 1)`; the last column multiplies 1).
    w_out: Vec<f64>,
    /// The reservoir state after the training series.
    state: Vec<f64>,
}

impl Esn {
    /// Train on `series` (`steps x n` values, step-major): fit the readout to predict each
    /// step from the reservoir driven by the ones before it.
    ///
    /// ```
    /// use diffsim::surrogate::{Esn, EsnOptions};
    /// // A sine sampled 20 times per period, learned and continued.
    /// let series: Vec<f64> = (0..600).map(|k| (k as f64 * std::f64::consts::TAU / 20.0).sin()).collect();
    /// let esn = Esn::train(&series, 1, &EsnOptions { reservoir: 50, ..EsnOptions::default() }).unwrap();
    /// let next = esn.predict(40);
    /// let want = |k: usize| ((600 + k) as f64 * std::f64::consts::TAU / 20.0).sin();
    /// assert!((0..40).all(|k| (next[k] - want(k)).abs() < 1e-3));
    /// ```
    pub fn train(series: &[f64], n: usize, opts: &EsnOptions) -> Result<Self> {
        let steps = check(series, n, opts)?;
        let mut esn = Self::reservoir(n, opts)?;
        // Drive the reservoir; the states after the washout are the regression's rows.
        let size = opts.reservoir;
        let rows = steps - 1 - opts.washout;
        let mut r = vec![0.0; size];
        let mut next = vec![0.0; size];
        let mut a = Mat::<f64>::zeros(rows + size + 1, size + 1);
        let mut y = Mat::<f64>::zeros(rows + size + 1, n);
        for k in 0..steps - 1 {
            esn.update(&r, &series[k * n..(k + 1) * n], &mut next);
            std::mem::swap(&mut r, &mut next);
            if let Some(row) = k.checked_sub(opts.washout) {
                for (c, &v) in r.iter().enumerate() {
                    a[(row, c)] = v;
                }
                a[(row, size)] = 1.0;
                for c in 0..n {
                    y[(row, c)] = series[(k + 1) * n + c];
                }
            }
        }
        // The ridge rows.
        let s = opts.ridge.sqrt();
        for c in 0..=size {
            a[(rows + c, c)] = s;
        }
        let x = a.col_piv_qr().solve_lstsq(&y);
        esn.w_out = (0..n).flat_map(|o| (0..=size).map(move |c| (o, c))).map(|(o, c)| x[(c, o)]).collect();
        if esn.w_out.iter().any(|v| !v.is_finite()) {
            return Err(DiffsimError::InvalidOption {
                name: "series",
                why: "the readout's least-squares problem gave non-finite weights; raise `ridge`".into(),
            });
        }
        // The state after the last step of the series, ready to predict the next one.
        esn.update(&r, &series[(steps - 1) * n..], &mut next);
        esn.state = next;
        Ok(esn)
    }

    /// The next `steps` values after the training series (`steps x n`, step-major), each
    /// output fed back as the next input.
    pub fn predict(&self, steps: usize) -> Vec<f64> {
        let n = self.n_in;
        let mut out = Vec::with_capacity(steps * n);
        let mut r = self.state.clone();
        let mut next = vec![0.0; r.len()];
        let mut x = vec![0.0; n];
        for _ in 0..steps {
            self.readout(&r, &mut x);
            out.extend_from_slice(&x);
            self.update(&r, &x, &mut next);
            std::mem::swap(&mut r, &mut next);
        }
        out
    }

    /// The options it was built with.
    pub fn options(&self) -> &EsnOptions {
        &self.opts
    }

    /// A random reservoir (readout empty) for `n` inputs.
    fn reservoir(n: usize, opts: &EsnOptions) -> Result<Self> {
        let size = opts.reservoir;
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let w = sparse_reservoir(size, opts.degree, opts.spectral_radius, &mut rng)?;
        let w_in = (0..size * n).map(|_| uniform(&mut rng, opts.input_scale)).collect();
        let b = (0..size).map(|_| uniform(&mut rng, opts.bias)).collect();
        Ok(Self { opts: opts.clone(), n_in: n, w, w_in, b, w_out: Vec::new(), state: vec![0.0; size] })
    }

    /// `next = (1 - a) r + a tanh(W r + W_in x + b)`.
    fn update(&self, r: &[f64], x: &[f64], next: &mut [f64]) {
        let (a, n) = (self.opts.leak, self.n_in);
        for (i, out) in next.iter_mut().enumerate() {
            let wr: f64 = self.w[i].iter().map(|&(c, v)| v * r[c]).sum();
            let wx: f64 = self.w_in[i * n..(i + 1) * n].iter().zip(x).map(|(w, x)| w * x).sum();
            *out = (1.0 - a) * r[i] + a * (wr + wx + self.b[i]).tanh();
        }
    }

    /// `x = W_out [r; 1]`.
    fn readout(&self, r: &[f64], x: &mut [f64]) {
        let size = r.len();
        for (o, xo) in x.iter_mut().enumerate() {
            let row = &self.w_out[o * (size + 1)..(o + 1) * (size + 1)];
            *xo = row[..size].iter().zip(r).map(|(w, r)| w * r).sum::<f64>() + row[size];
        }
    }
}

/// The number of steps of a valid training series, or what is wrong with it.
fn check(series: &[f64], n: usize, opts: &EsnOptions) -> Result<usize> {
    let bad = |name: &'static str, why: String| Err(DiffsimError::InvalidOption { name, why });
    if n == 0 || series.len() % n != 0 {
        return bad("series", format!("{} values are not whole steps of {n} values", series.len()));
    }
    if series.iter().any(|v| !v.is_finite()) {
        return bad("series", "the series has a NaN or infinite value".into());
    }
    let steps = series.len() / n;
    if steps < opts.washout + 2 {
        return bad("washout", format!("the series has {steps} steps; the washout of {} leaves none", opts.washout));
    }
    let leak_ok = opts.leak > 0.0 && opts.leak <= 1.0;
    if opts.reservoir == 0 || opts.degree == 0 || !leak_ok || opts.ridge.is_nan() || opts.ridge < 0.0 {
        return bad("reservoir", "reservoir and degree must be at least 1, leak in (0, 1], ridge >= 0".into());
    }
    Ok(steps)
}

/// A uniform draw in `[-scale, scale]`.
pub(super) fn uniform(rng: &mut ChaCha8Rng, scale: f64) -> f64 {
    scale * rng.random_range(-1.0..=1.0)
}

/// A sparse `size x size` matrix, by rows of `(column, value)`: each entry present with
/// probability `degree / size`, uniform in [-1, 1], then scaled to `spectral_radius`.
pub(super) fn sparse_reservoir(
    size: usize,
    degree: usize,
    spectral_radius: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<(usize, f64)>>> {
    let p = (degree as f64 / size as f64).min(1.0);
    let mut w: Vec<Vec<(usize, f64)>> = vec![Vec::new(); size];
    for row in w.iter_mut() {
        for c in 0..size {
            if rng.random::<f64>() < p {
                row.push((c, rng.random_range(-1.0..1.0)));
            }
        }
    }
    let rho = spectral_radius_of(&w, rng);
    if rho.is_nan() || rho <= 0.0 {
        return Err(DiffsimError::InvalidOption {
            name: "degree",
            why: format!("the random reservoir matrix is nilpotent (degree {degree}): raise `degree`"),
        });
    }
    let scale = spectral_radius / rho;
    w.iter_mut().flatten().for_each(|(_, v)| *v *= scale);
    Ok(w)
}

/// The spectral radius of the sparse matrix `w`, from the growth of `|W^k x|` (a pair of
/// complex eigenvalues of largest modulus makes the plain power iteration's ratio
/// oscillate, the geometric mean of the growth over many steps does not).
fn spectral_radius_of(w: &[Vec<(usize, f64)>], rng: &mut ChaCha8Rng) -> f64 {
    let n = w.len();
    let mut x: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut y = vec![0.0; n];
    let (burn, count) = (100, 200);
    let mut log_growth = 0.0;
    for k in 0..burn + count {
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = w[i].iter().map(|&(c, v)| v * x[c]).sum();
        }
        let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return 0.0;
        }
        if k >= burn {
            log_growth += norm.ln();
        }
        x.iter_mut().zip(&y).for_each(|(a, b)| *a = b / norm);
    }
    (log_growth / count as f64).exp()
}
