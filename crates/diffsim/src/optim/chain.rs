//! Optimizers run one after another, each for a budget of iterations.

use serde::{Deserialize, Serialize};

use super::{load_state, Objective, OptimError, Optimizer, StepOutcome, StepStatus};

/// Stages of optimizers, each run for at most its budget of iterations; a stage that
/// converges (or stalls) hands over early. The next stage starts fresh from the
/// parameters the previous one reached. After the last stage the chain is
/// [`StepStatus::Finished`]; it reports [`StepStatus::Converged`] only when the last stage
/// converges.
///
/// ```
/// use diffsim::optim::{Adam, Chain, Lbfgs, NelderMead, Optimizer};
///
/// let chain = Chain::new().then(Adam::new(0.05), 300).then(Lbfgs::default(), 100);
/// assert_eq!(chain.len(), 2);
/// assert_eq!(chain.active(), "adam");
/// let boxed: Vec<Box<dyn Optimizer>> = vec![Box::new(NelderMead::default())];
/// let _nm_only = boxed.into_iter().fold(Chain::new(), |c, o| c.then_boxed(o, 50));
/// ```
#[derive(Default)]
pub struct Chain {
    stages: Vec<(Box<dyn Optimizer>, u64)>,
    pos: Position,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Position {
    /// Index of the current stage.
    stage: usize,
    /// Iterations made by the current stage.
    done: u64,
    /// The current stage has converged or stalled: move on at the next step.
    handed_over: bool,
}

#[derive(Serialize, Deserialize)]
struct StageState {
    name: String,
    budget: u64,
    state: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct ChainState {
    position: Position,
    stages: Vec<StageState>,
}

impl Chain {
    /// An empty chain (which is finished at once).
    pub fn new() -> Self {
        Chain::default()
    }

    /// Appends a stage running `optimizer` for at most `iterations` iterations.
    pub fn then<O: Optimizer + 'static>(self, optimizer: O, iterations: u64) -> Self {
        self.then_boxed(Box::new(optimizer), iterations)
    }

    /// Appends a boxed optimizer as a stage.
    pub fn then_boxed(mut self, optimizer: Box<dyn Optimizer>, iterations: u64) -> Self {
        self.stages.push((optimizer, iterations));
        self
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether the chain has no stages.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Index of the stage making the current iteration (`len()` once finished).
    pub fn stage(&self) -> usize {
        self.pos.stage
    }

    /// Skips finished stages; returns whether a stage is left.
    fn advance(&mut self) -> bool {
        while let Some((_, budget)) = self.stages.get(self.pos.stage) {
            if self.pos.done < *budget && !self.pos.handed_over {
                return true;
            }
            self.pos = Position { stage: self.pos.stage + 1, done: 0, handed_over: false };
        }
        false
    }
}

impl Optimizer for Chain {
    fn name(&self) -> &str {
        "chain"
    }

    /// The stage that made the last step (or will make the next one).
    fn active(&self) -> &str {
        self.stages.get(self.pos.stage).map_or("finished", |(o, _)| o.active())
    }

    fn check(&self) -> Result<(), OptimError> {
        self.stages.iter().try_for_each(|(o, _)| o.check())
    }

    fn step(&mut self, x: &mut [f64], f: &mut Objective<'_>) -> StepOutcome {
        if !self.advance() {
            return StepOutcome::finished();
        }
        let last = self.pos.stage + 1 == self.stages.len();
        let mut out = self.stages[self.pos.stage].0.step(x, f);
        self.pos.done += 1;
        match out.status {
            StepStatus::Converged | StepStatus::Stalled | StepStatus::Finished if !last => {
                self.pos.handed_over = true;
                out.status = StepStatus::Moved;
            }
            _ => {}
        }
        out
    }

    fn reset(&mut self) {
        self.pos = Position::default();
        self.stages.iter_mut().for_each(|(o, _)| o.reset());
    }

    fn state_json(&self) -> serde_json::Value {
        let stages = self
            .stages
            .iter()
            .map(|(o, budget)| StageState { name: o.name().to_string(), budget: *budget, state: o.state_json() })
            .collect();
        super::save_state(self.name(), &ChainState { position: self.pos, stages })
    }

    fn restore(&mut self, state: &serde_json::Value, n_params: usize) -> Result<(), OptimError> {
        let saved: ChainState = load_state("chain", state)?;
        // Same optimizers in the same order; the budgets of the stages already finished
        // must match, while the current and later stages may be given more (or fewer)
        // iterations: resuming a run to train it for longer is the common case.
        let mine: Vec<String> = self.stages.iter().map(|(o, b)| format!("{} x {b}", o.name())).collect();
        let theirs: Vec<String> = saved.stages.iter().map(|s| format!("{} x {}", s.name, s.budget)).collect();
        let names_match = self.stages.len() == saved.stages.len()
            && self.stages.iter().zip(&saved.stages).all(|((o, _), s)| o.name() == s.name);
        if saved.position.stage > self.stages.len() {
            return Err(OptimError::IncompatibleState { why: "the chain position is past its last stage".into() });
        }
        let mut position = saved.position;
        let last = self.stages.len().saturating_sub(1);
        let extends_last = position.stage == self.stages.len()
            && names_match
            && !self.stages.is_empty()
            && self.stages[last].1 > saved.stages[last].budget;
        if extends_last {
            // A finished chain whose last stage got more iterations: continue that stage.
            position = Position { stage: last, done: saved.stages[last].budget, handed_over: false };
        }
        let finished_match =
            self.stages.iter().zip(&saved.stages).take(position.stage).all(|((_, b), s)| *b == s.budget);
        if !names_match || !finished_match {
            return Err(OptimError::IncompatibleState {
                why: format!("the chain stages are [{}] but the state is for [{}]", mine.join(", "), theirs.join(", ")),
            });
        }
        // Keep the current states, so a failure leaves this chain as it was.
        let before: Vec<serde_json::Value> = self.stages.iter().map(|(o, _)| o.state_json()).collect();
        for (k, ((o, _), s)) in self.stages.iter_mut().zip(&saved.stages).enumerate() {
            if let Err(e) = o.restore(&s.state, n_params) {
                // Put back the stages already restored.
                for ((o, _), old) in self.stages.iter_mut().zip(&before).take(k) {
                    if o.restore(old, n_params).is_err() {
                        o.reset(); // the old state was for another size: nothing worth keeping
                    }
                }
                return Err(e);
            }
        }
        self.pos = position;
        Ok(())
    }
}
