//! Records of the forward solve's evaluations, so the discrete adjoint's VJPs can start
//! from them ([`crate::capabilities::RecordedVjp`]).
//!
//! The discrete adjoint calls the VJP at exactly the points `(t, Y)` the forward solve
//! evaluated `f` at (it rebuilds the stage inputs bit for bit). The explicit stepper of the
//! forward solve evaluates its stages through a [`Recorder`]: each goes through
//! `RecordedVjp::rhs_record` and its record is filed under the exact bits of `(t, Y)`. The
//! sweep looks each stage up; a miss (a point the forward solve did not evaluate, or a full
//! store) falls back to the plain VJP, so records only ever save work. The key is the point
//! itself, not a step and stage number, so that a record can only ever be used at the point
//! it was made, whatever the stepper's order of evaluation (first-same-as-last stages,
//! rejected attempts, lazily evaluated dense-output stages). `p` is fixed for the lifetime
//! of a store (one gradient evaluation), which is what makes a record valid.
//!
//! For the spiral neural ODE this skips the network's forward pass in every VJP: a third of
//! the network passes of a gradient.

use crate::blocks::{BlockSlice, BlockVec};
use crate::problem::Model;
use crate::solve::StageEval;
use std::cell::RefCell;

thread_local! {
    /// The last finished store of this thread: a training loop's gradients reuse its memory
    /// (fresh allocations of this size page-faulted on every gradient).
    static SPARE: RefCell<Option<RecordStore>> = const { RefCell::new(None) };
}

/// Largest store (in numbers, 8 bytes each) a thread keeps for reuse.
const MAX_SPARE: usize = 1 << 20;

/// Most numbers a store keeps (8 bytes each): past this, evaluations are not recorded.
const MAX_STORED: usize = 1 << 22;

/// How far back from the last hit a lookup searches before it asks the hash index: the
/// sweep visits a step's stages in reverse order of their evaluation, with at most a few
/// rejected attempts' evaluations in between.
const SEARCH_BACK: usize = 24;

/// Records in evaluation order, found by the exact bits of `(t, u)`.
#[derive(Debug)]
pub(crate) struct RecordStore {
    n: usize,
    len: usize,
    /// Keys `[t, u (n)]` in evaluation order, compact so that searching them stays in cache.
    keys: Vec<f64>,
    /// The records, in the same order.
    records: BlockVec<f64>,
    slots: Vec<BlockSlice>,
    /// Where the last lookup found its record: the next one searches backwards from here.
    cursor: usize,
    /// A hash index (open addressing, `entry + 1`, 0 = empty), built at the first lookup
    /// the backward search misses; dropped by an insert.
    index: Option<Vec<u32>>,
    max_entries: usize,
    /// Lookups that found a record (for tests and tuning).
    pub(crate) hits: usize,
    /// Lookups that did not.
    pub(crate) misses: usize,
}

impl RecordStore {
    /// A store for states of `n` and records of `len` numbers, reusing this thread's spare
    /// store's memory if there is one.
    fn take(n: usize, len: usize) -> Self {
        match SPARE.with(|s| s.borrow_mut().take()) {
            Some(mut store) => {
                store.keys.clear();
                store.records.clear();
                store.slots.clear();
                store.cursor = 0;
                store.index = None;
                store.n = n;
                store.len = len;
                store.max_entries = Self::capacity(n, len);
                (store.hits, store.misses) = (0, 0);
                store
            }
            None => Self::new(n, len),
        }
    }

    /// Give the store's memory to the next gradient on this thread (unless it is larger than
    /// [`MAX_SPARE`]: a thread does not hold on to a big solve's memory).
    pub(crate) fn recycle(mut self) {
        self.index = None;
        // BlockSlice is 12 bytes: count it as 1.5 numbers.
        if self.records.capacity() + self.keys.capacity() + 3 * self.slots.capacity() / 2 <= MAX_SPARE {
            SPARE.with(|s| *s.borrow_mut() = Some(self));
        }
    }

    fn capacity(n: usize, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            MAX_STORED / (1 + n + len)
        }
    }

    /// A store for states of `n` and records of `len` numbers.
    pub(crate) fn new(n: usize, len: usize) -> Self {
        Self {
            n,
            len,
            keys: Vec::new(),
            records: BlockVec::default(),
            slots: Vec::new(),
            cursor: 0,
            index: None,
            max_entries: Self::capacity(n, len),
            hits: 0,
            misses: 0,
        }
    }

    /// The record to fill for an evaluation at `(t, u)`; `None` when the store is full.
    pub(crate) fn insert(&mut self, t: f64, u: &[f64]) -> Option<&mut [f64]> {
        if self.slots.len() >= self.max_entries {
            return None;
        }
        self.index = None;
        self.keys.push(t);
        self.keys.extend_from_slice(u);
        let (at, record) = self.records.push_slot(self.len, 0.0);
        self.slots.push(at);
        self.cursor = self.slots.len() - 1;
        Some(record)
    }

    /// Whether entry `e` is the evaluation at exactly `(t, u)` (compared as bits).
    #[inline]
    fn is_at(&self, e: usize, t: f64, u: &[f64]) -> bool {
        let key = &self.keys[e * (1 + self.n)..(e + 1) * (1 + self.n)];
        key[0].to_bits() == t.to_bits() && key[1..].iter().zip(u).all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// The record of an evaluation at exactly `(t, u)`, if one was kept. (Of several
    /// evaluations at the same point, any: with the same `p` their records are equal.)
    pub(crate) fn get(&mut self, t: f64, u: &[f64]) -> Option<&[f64]> {
        let entries = self.slots.len();
        let near = (self.cursor.saturating_sub(SEARCH_BACK)..=self.cursor.min(entries.saturating_sub(1)))
            .rev()
            .find(|&e| e < entries && self.is_at(e, t, u));
        let found = near.or_else(|| self.indexed(t, u));
        match found {
            Some(e) => {
                self.hits += 1;
                self.cursor = e;
                Some(self.records.get(self.slots[e]))
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn hash(t: f64, u: &[f64]) -> u64 {
        // FxHash-style mixing of the bits; keys are compared in full on lookup.
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = t.to_bits().wrapping_mul(K);
        for x in u {
            h = (h.rotate_left(5) ^ x.to_bits()).wrapping_mul(K);
        }
        h
    }

    /// Look `(t, u)` up in the hash index, building it first if needed.
    fn indexed(&mut self, t: f64, u: &[f64]) -> Option<usize> {
        let stride = 1 + self.n;
        if self.index.is_none() {
            let size = (2 * self.slots.len()).next_power_of_two().max(16);
            let mut index = vec![0u32; size];
            for e in 0..self.slots.len() {
                let key = &self.keys[e * stride..(e + 1) * stride];
                let mut i = (Self::hash(key[0], &key[1..]) >> 32) as usize & (size - 1);
                while index[i] != 0 {
                    i = (i + 1) & (size - 1);
                }
                index[i] = e as u32 + 1;
            }
            self.index = Some(index);
        }
        let index = self.index.as_ref()?;
        let mask = index.len() - 1;
        let mut i = (Self::hash(t, u) >> 32) as usize & mask;
        loop {
            match index[i] {
                0 => return None,
                k if self.is_at(k as usize - 1, t, u) => return Some(k as usize - 1),
                _ => i = (i + 1) & mask,
            }
        }
    }
}

/// The forward solve's stage evaluations, recorded (see the module docs): the explicit
/// stepper evaluates its stages through it, and hands it back after the solve.
pub(crate) struct Recorder {
    /// `None` when nothing is recorded (the model keeps no records, or recording is off).
    store: Option<RecordStore>,
}

impl Recorder {
    /// Record the stages of a solve of `model` when `on` and the model keeps records.
    pub(crate) fn new<M: Model>(model: &M, on: bool) -> Self {
        let len = model.derivatives().record_len();
        Self { store: (on && len > 0).then(|| RecordStore::take(model.n_states(), len)) }
    }

    /// The records, once the forward solve is done.
    pub(crate) fn into_store(mut self) -> Option<RecordStore> {
        self.store.take()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // A solve that returned early (an error) leaves its store to be recycled.
        if let Some(store) = self.store.take() {
            store.recycle();
        }
    }
}

impl<M: Model> StageEval<f64, M> for Recorder {
    #[inline]
    fn rhs(&mut self, model: &M, du: &mut [f64], u: &[f64], p: &[f64], t: f64) {
        if let (Some(store), Some(own)) = (self.store.as_mut(), model.derivatives().record_vjp()) {
            if let Some(record) = store.insert(t, u) {
                own.rhs_record(du, u, p, t, record);
                return;
            }
        }
        model.rhs(du, u, p, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{AnalyticVjp, Derivatives, RecordedVjp};
    use crate::scalar::Scalar;

    #[test]
    fn records_are_found_by_exact_bits_only() {
        let mut store = RecordStore::new(2, 3);
        for i in 0..1000 {
            let x = i as f64 * 0.1;
            store.insert(x, &[x, -x]).unwrap().copy_from_slice(&[x, 2.0 * x, 3.0 * x]);
        }
        for i in (0..1000).rev() {
            let x = i as f64 * 0.1;
            assert_eq!(store.get(x, &[x, -x]), Some(&[x, 2.0 * x, 3.0 * x][..]));
        }
        // One bit off in t or in u: not found.
        assert!(store.get(0.1f64.next_up(), &[0.1, -0.1]).is_none());
        assert!(store.get(0.1, &[0.1, (-0.1f64).next_down()]).is_none());
        assert!(store.get(0.0, &[-0.0, 0.0]).is_none());
        assert_eq!((store.hits, store.misses), (1000, 3));
        // Out of order: found through the hash index.
        for i in [3, 900, 17, 500] {
            let x = i as f64 * 0.1;
            assert_eq!(store.get(x, &[x, -x]).unwrap()[1], 2.0 * x);
        }
        assert!(store.index.is_some());
        // An insert drops the index; the search still finds everything.
        store.insert(7.0, &[7.0, 8.0]).unwrap()[0] = 9.0;
        assert!(store.index.is_none());
        assert_eq!(store.get(7.0, &[7.0, 8.0]).unwrap()[0], 9.0);
        assert_eq!(store.get(0.2, &[0.2, -0.2]).unwrap()[2], 3.0 * 0.2);
        assert_eq!((store.hits, store.misses), (1006, 3));
    }

    /// `f = -u`, recording `u` itself.
    struct Decay;
    impl Model for Decay {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = -u[0];
        }
        fn derivatives(&self) -> Derivatives<'_> {
            Derivatives::none().recorded_vjp(self)
        }
    }
    impl AnalyticVjp for Decay {
        type Workspace = ();
        fn workspace(&self) {}
        fn vjp(&self, _: &mut (), w: &[f64], _u: &[f64], _p: &[f64], _t: f64, du: &mut [f64], _dp: &mut [f64]) {
            du[0] -= w[0];
        }
    }
    impl RecordedVjp for Decay {
        fn record_len(&self) -> usize {
            1
        }
        fn rhs_record(&self, du: &mut [f64], u: &[f64], _p: &[f64], _t: f64, record: &mut [f64]) {
            du[0] = -u[0];
            record[0] = u[0];
        }
        fn vjp_from_record(
            &self,
            ws: &mut (),
            w: &[f64],
            u: &[f64],
            p: &[f64],
            t: f64,
            _record: &[f64],
            du: &mut [f64],
            dp: &mut [f64],
            _pending: &mut Vec<f64>,
        ) {
            self.vjp(ws, w, u, p, t, du, dp)
        }
    }

    fn eval(recorder: &mut Recorder, x: f64) -> f64 {
        let mut du = [0.0];
        StageEval::<f64, Decay>::rhs(recorder, &Decay, &mut du, &[x], &[], 0.0);
        du[0]
    }

    #[test]
    fn a_recorder_files_each_evaluation_by_its_point() {
        let mut on = Recorder::new(&Decay, true);
        assert_eq!(eval(&mut on, 1.0), -1.0);
        assert_eq!(eval(&mut on, 4.0), -4.0);
        let mut store = on.into_store().expect("Decay keeps records");
        assert_eq!(store.get(0.0, &[4.0]), Some(&[4.0][..]));
        assert_eq!(store.get(0.0, &[1.0]), Some(&[1.0][..]));
        assert!(store.get(0.0, &[2.0]).is_none());
        // Off, or a model that keeps no records: evaluated alike, nothing recorded.
        let mut off = Recorder::new(&Decay, false);
        assert_eq!(eval(&mut off, 2.0), -2.0);
        assert!(off.into_store().is_none());
        assert!(Recorder::new(&crate::models::LotkaVolterra, true).into_store().is_none());
    }

    #[test]
    fn a_full_store_declines() {
        let mut store = RecordStore::new(1, MAX_STORED / 4);
        assert!(store.insert(0.0, &[1.0]).is_some());
        assert!(store.insert(1.0, &[1.0]).is_some());
        assert!(store.insert(2.0, &[1.0]).is_some());
        assert!(store.insert(3.0, &[1.0]).is_none());
        assert!(RecordStore::new(1, 0).insert(0.0, &[1.0]).is_none());
    }
}
