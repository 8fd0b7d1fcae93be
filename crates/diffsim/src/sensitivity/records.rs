//! Records of the forward solve's evaluations, so the discrete adjoint's VJPs can start
//! from them ([`crate::capabilities::RecordedVjp`]).
//!
//! The discrete adjoint calls the VJP at exactly the points `(t, Y)` the forward solve
//! evaluated `f` at (it rebuilds the stage inputs bit for bit). [`Recording`] wraps the model
//! for the forward solve: each `f64` evaluation goes through `RecordedVjp::rhs_record` and its
//! record is filed under the exact bits of `(t, Y)`. The sweep looks each stage up; a miss
//! (a point the forward solve did not evaluate, or a full store) falls back to the plain VJP,
//! so records only ever save work. `p` is fixed for the lifetime of a store (one gradient
//! evaluation), which is what makes a record valid.
//!
//! For the spiral neural ODE this skips the network's forward pass in every VJP: a third of
//! the network passes of a gradient.

use crate::blocks::{BlockSlice, BlockVec};
use crate::capabilities::Derivatives;
use crate::problem::Model;
use crate::scalar::Scalar;
use crate::scalar::{as_float, as_float_mut};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The model for a forward solve whose `f64` evaluations are recorded (see the module docs).
///
/// The store lives in a thread-local slot ([`LIVE`]), not behind a lock inside the wrapper:
/// `Model` is `Sync`, but one solve evaluates `f` on one thread, and a mutex cost two atomic
/// operations per evaluation (a few percent of a spiral gradient). Evaluations on another
/// thread, or while a different recording holds this thread's slot (a gradient nested inside
/// a right-hand side), are simply not recorded: records only ever save work.
pub(crate) struct Recording<'a, M> {
    model: &'a M,
    /// This recording's key in [`LIVE`], when it holds the slot.
    id: Option<u64>,
}

thread_local! {
    /// The store of the recording that is running on this thread, with its id.
    static LIVE: RefCell<Option<(u64, RecordStore)>> = const { RefCell::new(None) };
}

/// Ids of recordings: a stale slot can never be mistaken for a live one.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl<'a, M: Model> Recording<'a, M> {
    /// Record when `on`, the model keeps records and this thread's slot is free.
    pub(crate) fn new(model: &'a M, on: bool) -> Self {
        let len = model.derivatives().record_len();
        let id = (on && len > 0)
            .then(|| {
                LIVE.with(|live| {
                    let mut live = live.try_borrow_mut().ok()?;
                    if live.is_some() {
                        return None;
                    }
                    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                    *live = Some((id, RecordStore::take(model.n_states(), len)));
                    Some(id)
                })
            })
            .flatten();
        Self { model, id }
    }

    /// The records, once the forward solve is done.
    pub(crate) fn into_store(mut self) -> Option<RecordStore> {
        self.release()
    }
}

impl<M> Recording<'_, M> {
    /// Empty this thread's slot if it is this recording's.
    fn release(&mut self) -> Option<RecordStore> {
        let id = self.id.take()?;
        LIVE.with(|live| {
            let mut live = live.try_borrow_mut().ok()?;
            match live.take() {
                Some((owner, store)) if owner == id => Some(store),
                other => {
                    *live = other;
                    None
                }
            }
        })
    }
}

impl<M> Drop for Recording<'_, M> {
    fn drop(&mut self) {
        // A solve that returned early (an error) leaves its store to be recycled.
        if let Some(store) = self.release() {
            store.recycle();
        }
    }
}

impl<M: Model> Model for Recording<'_, M> {
    const STATES: Option<usize> = M::STATES;
    fn n_states(&self) -> usize {
        self.model.n_states()
    }
    fn n_params(&self) -> usize {
        self.model.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        if let (Some(id), Some(uf), Some(pf), Some(duf)) =
            (self.id, as_float::<T, f64>(u), as_float::<T, f64>(p), as_float_mut::<T, f64>(du))
        {
            let recorded = LIVE.with(|live| {
                let Ok(mut live) = live.try_borrow_mut() else { return false };
                let Some((owner, store)) = live.as_mut() else { return false };
                if *owner != id {
                    return false;
                }
                let tf = t.value();
                let Some(own) = self.model.derivatives().record_vjp() else { return false };
                match store.insert(tf, uf) {
                    Some(record) => {
                        own.rhs_record(duf, uf, pf, tf, record);
                        true
                    }
                    None => false,
                }
            });
            if !recorded {
                self.model.rhs(duf, uf, pf, t.value());
            }
            return;
        }
        self.model.rhs(du, u, p, t)
    }
    fn mass_matrix(&self) -> Option<Vec<f64>> {
        self.model.mass_matrix()
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        self.model.tstops(p)
    }
    fn derivatives(&self) -> Derivatives<'_> {
        self.model.derivatives()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{AnalyticVjp, RecordedVjp};

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

    fn eval(model: &impl Model, x: f64) -> f64 {
        let mut du = [0.0];
        model.rhs(&mut du, &[x], &[], 0.0);
        du[0]
    }

    #[test]
    fn one_recording_per_thread_and_only_on_its_thread() {
        let outer = Recording::new(&Decay, true);
        assert_eq!(eval(&outer, 1.0), -1.0);
        // A recording started while another holds this thread's slot evaluates but does
        // not record, and does not disturb the other's store.
        let inner = Recording::new(&Decay, true);
        assert_eq!(eval(&inner, 2.0), -2.0);
        assert!(inner.into_store().is_none());
        // Another thread's evaluations are not recorded either.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(eval(&outer, 3.0), -3.0));
        });
        assert_eq!(eval(&outer, 4.0), -4.0);
        let mut store = outer.into_store().expect("the first recording holds the slot");
        assert_eq!(store.get(0.0, &[4.0]), Some(&[4.0][..]));
        assert_eq!(store.get(0.0, &[1.0]), Some(&[1.0][..]));
        assert!(store.get(0.0, &[2.0]).is_none());
        assert!(store.get(0.0, &[3.0]).is_none());
        // A recording dropped without handing over its store frees the slot.
        drop(Recording::new(&Decay, true));
        let again = Recording::new(&Decay, true);
        assert_eq!(eval(&again, 5.0), -5.0);
        assert!(again.into_store().unwrap().get(0.0, &[5.0]).is_some());
        // Off: nothing is recorded.
        assert!(Recording::new(&Decay, false).into_store().is_none());
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
