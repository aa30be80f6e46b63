//! Unit tests only: the system allocator, counting what each thread holds, so that a test can
//! measure what a value keeps on the heap (the organisation report holds tens of thousands of
//! entries, and their size is what bounds the scan's memory). Sizes are counted as the C
//! allocator's chunks (8 bytes of header, 16-byte steps, 32 bytes at least), not as requested.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn chunk(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

fn count(delta: isize) {
    // `try_with`: a thread being torn down still frees memory; it is not counted.
    let _ = HELD.try_with(|held| held.set(held.get() + delta));
}

// SAFETY: every call is passed to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(chunk(layout.size()));
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(chunk(layout.size()));
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-chunk(layout.size()));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(chunk(new_size) - chunk(layout.size()));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What `make` leaves on this thread's heap in its result (what it allocated and did not
/// free), in bytes.
pub fn held_by<T>(make: impl FnOnce() -> T) -> (T, isize) {
    let before = HELD.with(Cell::get);
    let value = make();
    (value, HELD.with(Cell::get) - before)
}
