//! A global allocator for short-lived processes: a bump arena in .bss in front of the
//! system allocator (musl's malloc in the static builds).
//!
//! Why: musl's mallocng maps and unmaps a page for almost every small allocation the
//! runtime makes (`berth-runtime run`: 34 mmap, 21 munmap, each first touch a page
//! fault). The arena hands out memory from one zeroed static buffer: no system calls, and
//! the pages it touches are contiguous. A free of the most recent allocation gives its
//! space back (stack order, the common case for temporaries); any other free leaves a
//! hole, so the arena only suits processes that allocate little before they exit or
//! settle. When it is full, allocations go to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `N` bytes of arena; page-aligned so that its pages are its own.
#[repr(C, align(4096))]
pub struct Arena<const N: usize> {
    buf: UnsafeCell<[u8; N]>,
    /// Offset of the first free byte.
    top: AtomicUsize,
    /// The highest `top` so far: the bytes above it were never handed out, so they are
    /// still zero (and not yet resident).
    high: AtomicUsize,
}

// SAFETY: the buffer is only reached through `top`, which hands every byte range to one
// allocation at a time (compare-and-swap), so threads never share a range.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    pub const fn new() -> Self {
        Arena {
            buf: UnsafeCell::new([0; N]),
            top: AtomicUsize::new(0),
            high: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.buf.get() as usize
    }

    /// The offset of `p` in the arena, if it is one of ours.
    fn offset(&self, p: *mut u8) -> Option<usize> {
        let (a, b) = (p as usize, self.base());
        (a >= b && a < b + N).then(|| a - b)
    }

    /// Bytes handed out (holes included): for tests and measurements.
    pub fn used(&self) -> usize {
        self.top.load(Ordering::Relaxed)
    }

    /// The most the arena ever held at once (what it made resident).
    pub fn high_water(&self) -> usize {
        self.high.load(Ordering::Relaxed)
    }

    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        let mut top = self.top.load(Ordering::Relaxed);
        loop {
            let start = (base + top).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size())?;
            if end > N {
                return None;
            }
            match self
                .top
                .compare_exchange_weak(top, end, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.high.fetch_max(end, Ordering::AcqRel);
                    return Some((base + start) as *mut u8);
                }
                Err(t) => top = t,
            }
        }
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every pointer returned is either a fresh, suitably aligned range of the static
// buffer that no other allocation overlaps (bump) or comes from `System`; `dealloc` and
// `realloc` send `System`'s pointers back to it and only ever move `top` back over the
// range being freed when that range is the last one handed out.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Only what was handed out before may hold old bytes: zeroing the rest would make
        // a large, mostly unused zeroed buffer resident for nothing.
        let high = self.high.load(Ordering::Acquire);
        match self.bump(layout) {
            Some(p) => {
                let off = p as usize - self.base();
                let dirty = high.saturating_sub(off).min(layout.size());
                // SAFETY: p..p+size is ours (bump), in bounds.
                unsafe { std::ptr::write_bytes(p, 0, dirty) };
                p
            }
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match self.offset(p) {
            Some(off) => {
                // The last allocation: its space is free again. Otherwise a hole.
                let _ = self.top.compare_exchange(
                    off + layout.size(),
                    off,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            // SAFETY: a pointer `System` gave out, with its layout.
            None => unsafe { System.dealloc(p, layout) },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Some(off) = self.offset(p) {
            if new_size <= layout.size() && off + layout.size() != self.used() {
                // Shrunk where it is (the tail becomes a hole).
                return p;
            }
            // The last allocation grows or shrinks where it is.
            let end = off + new_size;
            if end <= N
                && self
                    .top
                    .compare_exchange(
                        off + layout.size(),
                        end,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                // Bytes handed out up to `end` now: alloc_zeroed must zero them if reused.
                self.high.fetch_max(end, Ordering::AcqRel);
                return p;
            }
        }
        // SAFETY: the new layout is valid (the caller's alignment, a size the caller
        // guarantees fits); the old block is ours or System's and freed through dealloc.
        unsafe {
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            let q = self.alloc(new);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            q
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_order_frees_and_grows_in_place() {
        let a: Arena<4096> = Arena::new();
        let l = Layout::from_size_align(96, 8).unwrap();
        // SAFETY: layouts valid; pointers used only within their sizes.
        unsafe {
            let p = a.alloc(l);
            assert_eq!(a.offset(p), Some(0));
            let q = a.alloc(l);
            assert_eq!(a.used(), 192);
            a.dealloc(q, l);
            assert_eq!(a.used(), 96);
            let r = a.realloc(p, l, 296);
            assert_eq!(r, p, "the last allocation grows where it is");
            assert_eq!(a.used(), 296);
            a.dealloc(r, Layout::from_size_align(296, 8).unwrap());
            assert_eq!(a.used(), 0);
            assert_eq!(a.high_water(), 296);
        }
    }

    #[test]
    fn full_arena_falls_back_and_holes_stay() {
        let a: Arena<4096> = Arena::new();
        let l = Layout::from_size_align(1024, 16).unwrap();
        // SAFETY: as above; the System pointer is freed through the arena's dealloc.
        unsafe {
            let ps: Vec<_> = (0..4).map(|_| a.alloc(l)).collect();
            assert!(ps.iter().all(|p| a.offset(*p).is_some()));
            let big = a.alloc(l);
            assert!(a.offset(big).is_none(), "the fifth KiB comes from System");
            std::ptr::write_bytes(big, 1, 1024);
            a.dealloc(big, l);
            a.dealloc(ps[1], l);
            assert_eq!(a.used(), 4096, "a free out of order leaves a hole");
            // The last block, freed and taken again zeroed, is zero whatever it held.
            std::ptr::write_bytes(ps[3], 7, 1024);
            a.dealloc(ps[3], l);
            let z = a.alloc_zeroed(Layout::from_size_align(8, 8).unwrap());
            assert_eq!(z, ps[3]);
            assert_eq!(std::slice::from_raw_parts(z, 8), &[0; 8]);
        }
    }

    #[test]
    fn alignment_is_kept() {
        let a: Arena<8192> = Arena::new();
        // SAFETY: valid layouts.
        unsafe {
            a.alloc(Layout::from_size_align(3, 1).unwrap());
            let p = a.alloc(Layout::from_size_align(64, 64).unwrap());
            assert_eq!(p as usize % 64, 0);
        }
    }
}
