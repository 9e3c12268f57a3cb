//! Copy buffers shared by every relay of the run. A connection holds one only while it
//! forwards a response body: most of a viewer's connections wait for the next request most of
//! the time, so the run needs about as many buffers as bodies in flight at once, not one per
//! connection (at 200 viewers, a few against about 600 connections).

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

/// Size of one copy buffer: the most a single read from the origin returns.
pub(super) const SIZE: usize = 32 * 1024;
/// Free buffers kept for reuse; more are freed when returned (a burst of simultaneous bodies
/// then costs allocations, not memory held for the rest of the run).
const KEEP: usize = 64;

/// A pool of free buffers.
#[derive(Debug)]
pub(super) struct Pool(Mutex<Vec<Box<[u8]>>>);

/// The run's pool.
pub(super) static POOL: Pool = Pool(Mutex::new(Vec::new()));

/// A copy buffer, back in its pool when dropped.
#[derive(Debug)]
pub(super) struct Buffer {
    pool: &'static Pool,
    bytes: Option<Box<[u8]>>,
}

impl Pool {
    /// A buffer from the pool, or a new one.
    pub(super) fn take(&'static self) -> Buffer {
        let reused = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        Buffer { pool: self, bytes: Some(reused.unwrap_or_else(|| vec![0u8; SIZE].into_boxed_slice())) }
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(b) = self.bytes.take() {
            let mut free = self.pool.0.lock().unwrap_or_else(PoisonError::into_inner);
            if free.len() < KEEP {
                free.push(b);
            }
        }
    }
}

impl Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes.as_deref().unwrap_or_default()
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes.as_deref_mut().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_at_most_keep_are_kept() {
        static TEST: Pool = Pool(Mutex::new(Vec::new()));
        let first = TEST.take();
        let addr = first.as_ptr();
        assert_eq!(first.len(), SIZE);
        drop(first);
        assert_eq!(TEST.free(), 1);
        let again = TEST.take();
        assert_eq!(again.as_ptr(), addr, "the freed buffer came back");
        let burst: Vec<Buffer> = (0..KEEP + 10).map(|_| TEST.take()).collect();
        assert_eq!(TEST.free(), 0);
        drop(burst);
        drop(again);
        assert_eq!(TEST.free(), KEEP, "a burst's extra buffers are freed, not kept");
    }
}
