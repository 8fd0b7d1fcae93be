//! Records of the forward solve's evaluations, so the discrete adjoint's VJPs can start
//! from them ([`Model::record_len`]).
//!
//! The discrete adjoint calls the VJP at exactly the points `(t, Y)` the forward solve
//! evaluated `f` at (it rebuilds the stage inputs bit for bit). [`Recording`] wraps the model
//! for the forward solve: each `f64` evaluation goes through [`Model::rhs_record`] and its
//! record is filed under the exact bits of `(t, Y)`. The sweep looks each stage up; a miss
//! (a point the forward solve did not evaluate, or a full store) falls back to the plain VJP,
//! so records only ever save work. `p` is fixed for the lifetime of a store (one gradient
//! evaluation), which is what makes a record valid.
//!
//! For the spiral neural ODE this skips the network's forward pass in every VJP: a third of
//! the network passes of a gradient.

use crate::blocks::{BlockSlice, BlockVec};
use crate::nn::simd::{as_float, as_float_mut};
use crate::{Model, Scalar};
use std::cell::RefCell;
use std::sync::Mutex;

thread_local! {
    /// The last finished store of this thread: a training loop's gradients reuse its memory
    /// (fresh allocations of this size page-faulted on every gradient).
    static SPARE: RefCell<Option<RecordStore>> = const { RefCell::new(None) };
}

/// Largest store (in numbers, 8 bytes each) a thread keeps for reuse.
const MAX_SPARE: usize = 1 << 20;

/// Most numbers a store keeps (8 bytes each): past this, evaluations are not recorded.
const MAX_STORED: usize = 1 << 22;

/// Records filed by the exact bits of `(t, u)`.
#[derive(Debug)]
pub(crate) struct RecordStore {
    n: usize,
    len: usize,
    /// Entries `[t, u (n), record (len)]`.
    entries: BlockVec<f64>,
    /// Open addressing (linear probing) into `slots`: `index + 1`, 0 = empty.
    table: Vec<u32>,
    slots: Vec<BlockSlice>,
    max_entries: usize,
    /// Lookups that found / did not find a record (for tests and tuning).
    pub(crate) hits: usize,
    pub(crate) misses: usize,
}

impl RecordStore {
    /// A store for states of `n` and records of `len` numbers, reusing this thread's spare
    /// store's memory if there is one.
    fn take(n: usize, len: usize) -> Self {
        match SPARE.with(|s| s.borrow_mut().take()) {
            Some(mut store) => {
                store.entries.clear();
                store.slots.clear();
                store.table.fill(0);
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
    pub(crate) fn recycle(self) {
        if self.entries.capacity() <= MAX_SPARE {
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
            entries: BlockVec::default(),
            table: vec![0; 64],
            slots: Vec::new(),
            max_entries: Self::capacity(n, len),
            hits: 0,
            misses: 0,
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

    /// The table position of `(t, u)`: `Ok(slot)` if present, `Err(empty position)` if not.
    fn find(&self, t: f64, u: &[f64]) -> Result<usize, usize> {
        let mask = self.table.len() - 1;
        let mut i = (Self::hash(t, u) >> 32) as usize & mask;
        loop {
            match self.table[i] {
                0 => return Err(i),
                k => {
                    let slot = k as usize - 1;
                    let e = self.entries.get(self.slots[slot]);
                    if e[0].to_bits() == t.to_bits() && e[1..=self.n].iter().zip(u).all(|(a, b)| a.to_bits() == b.to_bits())
                    {
                        return Ok(slot);
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The record to fill for an evaluation at `(t, u)` (an existing one is overwritten);
    /// `None` when the store is full.
    pub(crate) fn insert(&mut self, t: f64, u: &[f64]) -> Option<&mut [f64]> {
        let slot = match self.find(t, u) {
            Ok(slot) => slot,
            Err(pos) => {
                if self.slots.len() >= self.max_entries {
                    return None;
                }
                let (at, e) = self.entries.push_filled(1 + self.n + self.len, 0.0);
                e[0] = t;
                e[1..=self.n].copy_from_slice(u);
                self.slots.push(at);
                self.table[pos] = self.slots.len() as u32;
                if 2 * self.slots.len() > self.table.len() {
                    self.grow();
                }
                self.slots.len() - 1
            }
        };
        Some(&mut self.entries.get_mut(self.slots[slot])[1 + self.n..])
    }

    /// The record of an evaluation at exactly `(t, u)`, if one was kept.
    pub(crate) fn get(&mut self, t: f64, u: &[f64]) -> Option<&[f64]> {
        match self.find(t, u) {
            Ok(slot) => {
                self.hits += 1;
                Some(&self.entries.get(self.slots[slot])[1 + self.n..])
            }
            Err(_) => {
                self.misses += 1;
                None
            }
        }
    }

    /// Double the table and re-file every entry.
    fn grow(&mut self) {
        self.table = vec![0; 2 * self.table.len()];
        let mask = self.table.len() - 1;
        for (slot, &at) in self.slots.iter().enumerate() {
            let e = self.entries.get(at);
            let mut i = (Self::hash(e[0], &e[1..=self.n]) >> 32) as usize & mask;
            while self.table[i] != 0 {
                i = (i + 1) & mask;
            }
            self.table[i] = slot as u32 + 1;
        }
    }
}

/// The model for a forward solve whose `f64` evaluations are recorded (see the module docs).
pub(crate) struct Recording<'a, M> {
    model: &'a M,
    store: Option<Mutex<RecordStore>>,
}

impl<'a, M: Model> Recording<'a, M> {
    /// Record when `on` and the model keeps records.
    pub(crate) fn new(model: &'a M, on: bool) -> Self {
        let len = model.record_len();
        let store = (on && len > 0).then(|| Mutex::new(RecordStore::take(model.n_states(), len)));
        Self { model, store }
    }

    /// The records, once the forward solve is done.
    pub(crate) fn into_store(self) -> Option<RecordStore> {
        self.store.map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<M: Model> Model for Recording<'_, M> {
    fn n_states(&self) -> usize {
        self.model.n_states()
    }
    fn n_params(&self) -> usize {
        self.model.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        if let (Some(store), Some(uf), Some(pf)) = (&self.store, as_float::<T, f64>(u), as_float::<T, f64>(p)) {
            let tf = t.value();
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            if let (Some(record), Some(duf)) = (store.insert(tf, uf), as_float_mut::<T, f64>(du)) {
                self.model.rhs_record(duf, uf, pf, tf, record);
                return;
            }
        }
        self.model.rhs(du, u, p, t)
    }
    fn jacobian(&self, jac: &mut [f64], u: &[f64], p: &[f64], t: f64) -> bool {
        self.model.jacobian(jac, u, p, t)
    }
    fn time_derivative(&self, dfdt: &mut [f64], u: &[f64], p: &[f64], t: f64) -> bool {
        self.model.time_derivative(dfdt, u, p, t)
    }
    fn mass_matrix(&self) -> Option<Vec<f64>> {
        self.model.mass_matrix()
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        self.model.tstops(p)
    }
    fn vjp(&self, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) -> bool {
        self.model.vjp(w, u, p, t, du, dp)
    }
    fn has_vjp(&self) -> bool {
        self.model.has_vjp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Re-recording a point overwrites it.
        store.insert(0.5, &[0.5, -0.5]).unwrap()[0] = 9.0;
        assert_eq!(store.get(0.5, &[0.5, -0.5]).unwrap()[0], 9.0);
        assert_eq!(store.slots.len(), 1000);
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
