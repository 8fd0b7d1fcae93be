//! The model zoo used by tests, examples, the CLI and the benchmarks.
//!
//! Each model is a plain type implementing [`crate::Model`]; [`ZooModel`] wraps them all
//! behind one type (for the CLI), and [`lookup`] finds one by name with its defaults.

mod brusselator;
mod classic;
mod stiff_test_set;
mod switching;

pub use brusselator::Brusselator1D;
pub use classic::{Lorenz, LotkaVolterra, LvPiecewise, Pendulum, Robertson, RobertsonDae, VanDerPol};
pub use stiff_test_set::{reference_solution, Akzo, Hires, Orego, Pollu, E5, POLLU_RATES};
pub use switching::{BouncingBall, OralDosing, Thermostat};

use crate::capabilities::Derivatives;
use crate::error::{DiffsimError, Result};
use crate::mass::MassMatrix;
use crate::problem::Model;
use crate::scalar::Scalar;

/// Any model of the zoo.
#[derive(Clone, Copy, Debug)]
pub enum ZooModel {
    /// [`Lorenz`].
    Lorenz(Lorenz),
    /// [`LotkaVolterra`].
    LotkaVolterra(LotkaVolterra),
    /// [`Robertson`].
    Robertson(Robertson),
    /// [`RobertsonDae`].
    RobertsonDae(RobertsonDae),
    /// [`VanDerPol`].
    VanDerPol(VanDerPol),
    /// [`Pendulum`].
    Pendulum(Pendulum),
    /// [`Brusselator1D`].
    Brusselator(Brusselator1D),
    /// [`LvPiecewise`].
    LvPiecewise(LvPiecewise),
    /// [`Hires`].
    Hires(Hires),
    /// [`Orego`].
    Orego(Orego),
    /// [`Pollu`].
    Pollu(Pollu),
    /// [`Akzo`].
    Akzo(Akzo),
    /// [`E5`].
    E5(E5),
    /// [`BouncingBall`].
    BouncingBall(BouncingBall),
    /// [`OralDosing`].
    OralDosing(OralDosing),
    /// [`Thermostat`].
    Thermostat(Thermostat),
}

/// Each zoo model converts into the enum: `ZooModel::from(Lorenz)`.
macro_rules! into_zoo {
    ($($variant:ident($model:ident)),*) => {$(
        impl From<$model> for ZooModel {
            fn from(m: $model) -> Self {
                ZooModel::$variant(m)
            }
        }
    )*};
}
into_zoo!(
    Lorenz(Lorenz),
    LotkaVolterra(LotkaVolterra),
    Robertson(Robertson),
    RobertsonDae(RobertsonDae),
    VanDerPol(VanDerPol),
    Pendulum(Pendulum),
    Brusselator(Brusselator1D),
    LvPiecewise(LvPiecewise),
    Hires(Hires),
    Orego(Orego),
    Pollu(Pollu),
    Akzo(Akzo),
    E5(E5),
    BouncingBall(BouncingBall),
    OralDosing(OralDosing),
    Thermostat(Thermostat)
);

macro_rules! each {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            ZooModel::Lorenz($m) => $body,
            ZooModel::LotkaVolterra($m) => $body,
            ZooModel::Robertson($m) => $body,
            ZooModel::RobertsonDae($m) => $body,
            ZooModel::VanDerPol($m) => $body,
            ZooModel::Pendulum($m) => $body,
            ZooModel::Brusselator($m) => $body,
            ZooModel::LvPiecewise($m) => $body,
            ZooModel::Hires($m) => $body,
            ZooModel::Orego($m) => $body,
            ZooModel::Pollu($m) => $body,
            ZooModel::Akzo($m) => $body,
            ZooModel::E5($m) => $body,
            ZooModel::BouncingBall($m) => $body,
            ZooModel::OralDosing($m) => $body,
            ZooModel::Thermostat($m) => $body,
        }
    };
}

impl Model for ZooModel {
    fn n_states(&self) -> usize {
        each!(self, m => m.n_states())
    }
    fn n_params(&self) -> usize {
        each!(self, m => m.n_params())
    }
    #[inline]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        each!(self, m => m.rhs(du, u, p, t))
    }
    fn derivatives(&self) -> Derivatives<'_> {
        each!(self, m => m.derivatives())
    }
    fn mass_matrix(&self) -> Option<MassMatrix> {
        each!(self, m => m.mass_matrix())
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        each!(self, m => m.tstops(p))
    }
    fn events(&self) -> Vec<crate::event::Event> {
        each!(self, m => m.events())
    }
    fn event_conditions<T: Scalar>(&self, g: &mut [T], u: &[T], p: &[T], t: T) {
        each!(self, m => m.event_conditions(g, u, p, t))
    }
    fn event_affect<T: Scalar>(&self, index: usize, u: &mut [T], p: &[T], t: T) {
        each!(self, m => m.event_affect(index, u, p, t))
    }
}

/// An action on a concrete zoo model: [`ZooModel::visit`] calls it with the model's own
/// type, so solves run without the enum's dispatch in their hot loop.
pub trait ZooVisitor {
    /// What the action returns.
    type Output;
    /// Act on the model.
    fn visit<M: Model + Clone + 'static>(self, model: M) -> Self::Output;
}

impl ZooModel {
    /// Run `visitor` on the concrete model inside.
    pub fn visit<V: ZooVisitor>(self, visitor: V) -> V::Output {
        each!(self, m => visitor.visit(m))
    }
}

/// A zoo entry: the model with its default initial state, parameters and span.
#[derive(Clone, Debug)]
pub struct ZooEntry {
    /// CLI name.
    pub name: String,
    /// One line about it.
    pub description: &'static str,
    /// The model.
    pub model: ZooModel,
    /// Parameter names.
    pub param_names: Vec<&'static str>,
    /// Default parameters.
    pub p: Vec<f64>,
    /// Default initial state.
    pub u0: Vec<f64>,
    /// Default time span.
    pub tspan: (f64, f64),
    /// Stiff at its default parameters and span (an implicit method is the sensible choice).
    pub stiff: bool,
}

/// The zoo's names (`brusselator` also accepts `brusselator-N` for N interior points). The
/// last seven are the stiff test set's problems, with [`reference_solution`]s at the ends of
/// their spans.
pub const NAMES: [&str; 18] = [
    "lorenz",
    "lotka-volterra",
    "robertson",
    "robertson-dae",
    "van-der-pol",
    "pendulum",
    "brusselator",
    "lv-piecewise",
    "bouncing-ball",
    "pk-oral",
    "thermostat",
    "hires",
    "orego",
    "pollu",
    "vdpol",
    "rober",
    "akzo",
    "e5",
];

/// POLLU's parameter names.
const POLLU_PARAM_NAMES: [&str; 25] = [
    "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17",
    "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25",
];

/// Find a model by name, with its defaults.
///
/// ```
/// let e = diffsim::models::lookup("robertson").unwrap();
/// assert_eq!(e.p, vec![0.04, 3e7, 1e4]);
/// assert!(diffsim::models::lookup("brusselator-64").is_ok());
/// assert!(diffsim::models::lookup("nope").is_err());
/// ```
pub fn lookup(name: &str) -> Result<ZooEntry> {
    const STIFF: bool = true;
    const NONSTIFF: bool = false;
    let e = |description, model, param_names: &[&'static str], p: &[f64], u0: Vec<f64>, tspan, stiff| ZooEntry {
        name: name.to_string(),
        description,
        model,
        param_names: param_names.to_vec(),
        p: p.to_vec(),
        u0,
        tspan,
        stiff,
    };
    Ok(match name {
        "lorenz" => e(
            "chaotic Lorenz attractor",
            ZooModel::Lorenz(Lorenz),
            &["sigma", "rho", "beta"],
            &[10.0, 28.0, 8.0 / 3.0],
            vec![1.0, 0.0, 0.0],
            (0.0, 100.0),
            NONSTIFF,
        ),
        "lotka-volterra" => e(
            "predator-prey",
            ZooModel::LotkaVolterra(LotkaVolterra),
            &["alpha", "beta", "gamma", "delta"],
            &[1.5, 1.0, 3.0, 1.0],
            vec![1.0, 1.0],
            (0.0, 10.0),
            NONSTIFF,
        ),
        "robertson" => e(
            "stiff chemical kinetics",
            ZooModel::Robertson(Robertson),
            &["k1", "k2", "k3"],
            &[0.04, 3e7, 1e4],
            vec![1.0, 0.0, 0.0],
            (0.0, 1e5),
            STIFF,
        ),
        "robertson-dae" => e(
            "Robertson as an index-1 DAE (mass matrix)",
            ZooModel::RobertsonDae(RobertsonDae),
            &["k1", "k2", "k3"],
            &[0.04, 3e7, 1e4],
            vec![1.0, 0.0, 0.0],
            (0.0, 1e5),
            STIFF,
        ),
        "van-der-pol" => e(
            "relaxation oscillator, stiff for large mu",
            ZooModel::VanDerPol(VanDerPol),
            &["mu"],
            &[1e3],
            vec![2.0, 0.0],
            (0.0, 3.0),
            STIFF,
        ),
        "bouncing-ball" => e(
            "a ball bouncing on a floor (an event at each bounce)",
            ZooModel::BouncingBall(BouncingBall),
            &["g", "restitution"],
            &[9.81, 0.8],
            vec![10.0, 0.0],
            (0.0, 10.0),
            NONSTIFF,
        ),
        "pk-oral" => e(
            "one-compartment pharmacokinetics, an oral dose of 100 every 12 h, six times (scheduled events)",
            ZooModel::OralDosing(OralDosing::default()),
            &["ka", "ke"],
            &[1.0, 0.2],
            vec![0.0, 0.0],
            (0.0, 96.0),
            NONSTIFF,
        ),
        "thermostat" => e(
            "a room heated between 19 and 21 degrees (two events: hysteresis)",
            ZooModel::Thermostat(Thermostat::default()),
            &["k", "power"],
            &[0.5, 10.0],
            vec![15.0, 1.0],
            (0.0, 24.0),
            NONSTIFF,
        ),
        "pendulum" => e(
            "damped nonlinear pendulum",
            ZooModel::Pendulum(Pendulum),
            &["g_over_l", "damping"],
            &[9.81, 0.0],
            vec![1.0, 0.0],
            (0.0, 10.0),
            NONSTIFF,
        ),
        "lv-piecewise" => e(
            "Lotka-Volterra with a rate switching at t = 1, 2, 3",
            ZooModel::LvPiecewise(LvPiecewise),
            &["p1", "p2", "p3", "p4"],
            &[1.0, 1.0, 1.0, 1.0],
            vec![1.0, 1.0],
            (0.0, 4.0),
            NONSTIFF,
        ),
        "hires" => e(
            "test set: HIRES, high irradiance response of phytochrome (8 states)",
            ZooModel::Hires(Hires),
            &["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "oks"],
            &[1.71, 0.43, 8.32, 0.69, 0.035, 8.32, 280.0, 0.69, 0.69, 0.0007],
            vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057],
            (0.0, 321.8122),
            STIFF,
        ),
        "orego" => e(
            "test set: OREGO, the Oregonator (Belousov-Zhabotinsky)",
            ZooModel::Orego(Orego),
            &["s", "w", "q"],
            &[77.27, 0.161, 8.375e-6],
            vec![1.0, 2.0, 3.0],
            (0.0, 360.0),
            STIFF,
        ),
        "pollu" => {
            let mut u0 = vec![0.0; 20];
            for (i, v) in [(1, 0.2), (3, 0.04), (6, 0.1), (7, 0.3), (8, 0.01), (16, 0.007)] {
                u0[i] = v;
            }
            e(
                "test set: POLLU, air pollution chemistry (20 species, 25 reactions)",
                ZooModel::Pollu(Pollu),
                &POLLU_PARAM_NAMES,
                &POLLU_RATES,
                u0,
                (0.0, 60.0),
                STIFF,
            )
        }
        "vdpol" => e(
            "test set: VDPOL, van der Pol with eps = 1/mu = 1e-6",
            ZooModel::VanDerPol(VanDerPol),
            &["mu"],
            &[1e6],
            vec![2.0, 0.0],
            (0.0, 2.0),
            STIFF,
        ),
        "rober" => e(
            "test set: ROBER, Robertson's kinetics up to t = 1e11",
            ZooModel::Robertson(Robertson),
            &["k1", "k2", "k3"],
            &[0.04, 3e7, 1e4],
            vec![1.0, 0.0, 0.0],
            (0.0, 1e11),
            STIFF,
        ),
        "akzo" => {
            let p = [18.7, 0.58, 0.09, 0.42, 34.4, 3.3, 115.83, 0.9, 737.0];
            e(
                "test set: chemical Akzo Nobel, index-1 DAE (mass matrix)",
                ZooModel::Akzo(Akzo),
                &["k1", "k2", "k3", "k4", "K", "klA", "Ks", "pCO2", "H"],
                &p,
                Akzo::initial_state(&p),
                (0.0, 180.0),
                STIFF,
            )
        }
        "e5" => e(
            "test set: E5, chemical pyrolysis up to t = 1e13",
            ZooModel::E5(E5),
            &["A", "B", "C", "M"],
            &[7.89e-10, 1.1e7, 1.13e3, 1e6],
            vec![1.76e-3, 0.0, 0.0, 0.0],
            (0.0, 1e13),
            STIFF,
        ),
        _ => {
            let grid = if name == "brusselator" {
                Some(32)
            } else {
                name.strip_prefix("brusselator-").and_then(|s| s.parse::<usize>().ok())
            };
            match grid {
                Some(n) if n >= 1 => {
                    let b = Brusselator1D { n };
                    e(
                        "1-D Brusselator reaction-diffusion (2N states, stiff)",
                        ZooModel::Brusselator(b),
                        &["A", "B", "alpha"],
                        &[1.0, 3.0, 0.02],
                        b.initial_state(),
                        (0.0, 10.0),
                        STIFF,
                    )
                }
                _ => {
                    return Err(DiffsimError::Unknown {
                        kind: "model",
                        name: name.to_string(),
                        choices: NAMES.join(", ") + " (or brusselator-N)",
                    })
                }
            }
        }
    })
}
