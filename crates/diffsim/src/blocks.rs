//! Append-only storage in blocks that are never moved or copied.
//!
//! A solve appends per-step data (dense output, records of evaluations) without knowing how
//! many steps it will take. One `Vec` grown by doubling copies the whole history at every
//! growth (glibc's realloc copies inside its heap once repeated solves have raised its mmap
//! threshold): that was 15-20 % of a 10k-step Tsit5 solve of Lorenz. Here blocks double in
//! size up to [`MAX_BLOCK`] elements, so a short solve allocates little and nothing moves.

/// Elements in the first block; later blocks double up to [`MAX_BLOCK`].
const FIRST_BLOCK: usize = 256;
/// Largest block (in elements) unless one slice needs more.
const MAX_BLOCK: usize = 1 << 16;

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
    blocks: Vec<Vec<T>>,
}

impl<T> Default for BlockVec<T> {
    fn default() -> Self {
        Self { blocks: Vec::new() }
    }
}

impl<T: Copy> BlockVec<T> {
    /// Append a copy of `data`.
    pub(crate) fn push(&mut self, data: &[T]) -> BlockSlice {
        let (block, start) = self.room_for(data.len());
        self.blocks[block].extend_from_slice(data);
        Self::slice(block, start, data.len())
    }

    /// Append `len` copies of `fill` and return them for writing.
    pub(crate) fn push_filled(&mut self, len: usize, fill: T) -> (BlockSlice, &mut [T]) {
        let (block, start) = self.room_for(len);
        let b = &mut self.blocks[block];
        b.resize(start + len, fill);
        (Self::slice(block, start, len), &mut b[start..])
    }

    /// The slice at `at`.
    #[inline]
    pub(crate) fn get(&self, at: BlockSlice) -> &[T] {
        let start = at.start as usize;
        &self.blocks[at.block as usize][start..start + at.len as usize]
    }

    /// The slice at `at`, for writing.
    #[inline]
    pub(crate) fn get_mut(&mut self, at: BlockSlice) -> &mut [T] {
        let start = at.start as usize;
        &mut self.blocks[at.block as usize][start..start + at.len as usize]
    }

    /// A block with room for `len` more elements: `(block, start)`.
    fn room_for(&mut self, len: usize) -> (usize, usize) {
        let fits = self.blocks.last().is_some_and(|b| b.capacity() - b.len() >= len);
        if !fits {
            let next = self.blocks.last().map_or(FIRST_BLOCK, |b| (2 * b.capacity()).min(MAX_BLOCK));
            self.blocks.push(Vec::with_capacity(next.max(len)));
        }
        let block = self.blocks.len() - 1;
        (block, self.blocks[block].len())
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
        let (at, filled) = v.push_filled(MAX_BLOCK + 3, 7);
        filled[0] = 1;
        for (at, data) in &kept {
            assert_eq!(v.get(*at), &data[..]);
        }
        assert_eq!(v.get(at).len(), MAX_BLOCK + 3);
        assert_eq!(&v.get(at)[..2], &[1, 7]);
        v.get_mut(kept[10].0)[0] = 42;
        assert_eq!(v.get(kept[10].0)[0], 42);
        // Blocks grew geometrically and then stayed at the cap.
        assert!(v.blocks.iter().all(|b| b.capacity() <= MAX_BLOCK + 3));
        assert!(v.blocks.len() < 20);
    }
}
