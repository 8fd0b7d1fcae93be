//! Append-only storage in blocks that are never moved or copied.
//!
//! A solve appends per-step data (dense output, records of evaluations) without knowing how
//! many steps it will take. One `Vec` grown by doubling copies the whole history at every
//! growth (glibc's realloc copies inside its heap once repeated solves have raised its mmap
//! threshold), a large share of a long solve of a small system. Here blocks double in
//! size up to [`MAX_BLOCK`] elements, so a short solve allocates little and nothing moves.

/// Elements in the first block; later blocks double up to [`MAX_BLOCK`].
const FIRST_BLOCK: usize = 256;
/// Largest block (in elements) unless one slice needs more: 64 KB of `f64`, below glibc's
/// default mmap threshold, so blocks come from the heap's free lists rather than fresh
/// (page-faulting) mappings.
const MAX_BLOCK: usize = 1 << 13;

/// Where a slice pushed into a [`BlockVec`] lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockSlice {
    block: u32,
    start: u32,
    len: u32,
}

/// Append-only storage of slices, each kept contiguous, in blocks that never move.
#[derive(Clone, Debug)]
pub(crate) struct BlockVec<T> {
    /// Each block's length is how much of it was ever written (its capacity never changes),
    /// so that after [`BlockVec::clear`] a slot can be handed out again without filling it.
    blocks: Vec<Vec<T>>,
    /// Elements of each block in use.
    used: Vec<usize>,
    /// The block being filled (later ones are unused, kept by [`BlockVec::clear`]).
    current: usize,
}

impl<T> Default for BlockVec<T> {
    fn default() -> Self {
        Self { blocks: Vec::new(), used: Vec::new(), current: 0 }
    }
}

impl<T> BlockVec<T> {
    /// Elements the blocks can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum()
    }

    /// Forget every slice but keep the blocks for reuse.
    pub(crate) fn clear(&mut self) {
        self.used.fill(0);
        self.current = 0;
    }
}

impl<T: Copy> BlockVec<T> {
    /// Append a copy of `data`.
    pub(crate) fn push(&mut self, data: &[T]) -> BlockSlice {
        let (block, start) = self.room_for(data.len());
        let (b, end) = (&mut self.blocks[block], start + data.len());
        if b.len() >= end {
            b[start..end].copy_from_slice(data);
        } else {
            b.truncate(start);
            b.extend_from_slice(data);
        }
        self.used[block] = end;
        Self::slice(block, start, data.len())
    }

    /// Append room for `len` elements and return it for writing. It holds `fill` where the
    /// block was never written, and elsewhere what a slice before the last
    /// [`BlockVec::clear`] left there: the caller overwrites all of it. (Filling it every
    /// time was a visible share of recording a small network's evaluations.)
    pub(crate) fn push_slot(&mut self, len: usize, fill: T) -> (BlockSlice, &mut [T]) {
        let (block, start) = self.room_for(len);
        let (b, end) = (&mut self.blocks[block], start + len);
        if b.len() < end {
            b.resize(end, fill);
        }
        self.used[block] = end;
        (Self::slice(block, start, len), &mut b[start..end])
    }

    /// The slice at `at`.
    #[inline]
    pub(crate) fn get(&self, at: BlockSlice) -> &[T] {
        let start = at.start as usize;
        &self.blocks[at.block as usize][start..start + at.len as usize]
    }

    /// A block with room for `len` more elements: `(block, start)`.
    fn room_for(&mut self, len: usize) -> (usize, usize) {
        let fits = |v: &Self| v.current < v.blocks.len() && v.blocks[v.current].capacity() - v.used[v.current] >= len;
        while !fits(self) {
            if self.current + 1 < self.blocks.len() {
                // A kept (cleared) block.
                self.current += 1;
            } else {
                let next = self.blocks.last().map_or(FIRST_BLOCK, |b| (2 * b.capacity()).min(MAX_BLOCK));
                self.blocks.push(Vec::with_capacity(next.max(len)));
                self.used.push(0);
                self.current = self.blocks.len() - 1;
            }
        }
        (self.current, self.used[self.current])
    }

    /// Indices fit in `u32`: a block holds at most `max(MAX_BLOCK, one slice)` elements, and
    /// a slice longer than 2^32 elements would be 32 GB.
    fn slice(block: usize, start: usize, len: usize) -> BlockSlice {
        BlockSlice { block: block as u32, start: start as u32, len: len as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_stay_where_they_were_put() {
        let mut v = BlockVec::default();
        let mut kept = Vec::new();
        for i in 0..5000usize {
            let data: Vec<usize> = (0..(i % 37)).map(|j| i * 100 + j).collect();
            kept.push((v.push(&data), data));
        }
        let (at, filled) = v.push_slot(MAX_BLOCK + 3, 7);
        filled[0] = 1;
        for (at, data) in &kept {
            assert_eq!(v.get(*at), &data[..]);
        }
        assert_eq!(v.get(at).len(), MAX_BLOCK + 3);
        assert_eq!(&v.get(at)[..2], &[1, 7]);
        // Blocks grew geometrically and then stayed at the cap.
        assert!(v.blocks.iter().all(|b| b.capacity() <= MAX_BLOCK + 3));
        let blocks = v.blocks.len();
        assert!(blocks < 20 + 5000 * 36 / MAX_BLOCK);
        // Cleared, the same pushes reuse the same blocks.
        v.clear();
        for (at, data) in &mut kept {
            *at = v.push(data);
        }
        for (at, data) in &kept {
            assert_eq!(v.get(*at), &data[..]);
        }
        assert_eq!(v.blocks.len(), blocks);
        // A slot handed out again after a clear keeps what was there; fresh room is filled.
        v.clear();
        let (first, slot) = v.push_slot(3, 9);
        let earlier: Vec<usize> = kept.iter().flat_map(|(_, d)| d.iter().copied()).take(3).collect();
        assert_eq!(slot, &earlier[..]);
        slot.copy_from_slice(&[4, 5, 6]);
        assert_eq!(v.get(first), &[4, 5, 6]);
        let mut fresh = BlockVec::default();
        assert_eq!(fresh.push_slot(4, 8).1, &[8; 4]);
    }
}
