//! The threads native viewers play on: one single-threaded tokio runtime per core, each
//! viewer on one of them (by its number). A viewer's task, its connection's task and its
//! timers then wake each other on one thread, without the cross-thread wake-ups (futex calls
//! and context switches) a work-stealing runtime pays for thousands of mostly idle tasks;
//! measured, that was most of a native viewer's CPU.

use std::sync::OnceLock;

use tokio::runtime::Handle;

use crate::measure::events::ViewerId;

static PLAYERS: OnceLock<Vec<Handle>> = OnceLock::new();

/// The runtime viewer `id` plays on; `None` if no thread could be started (the caller's
/// runtime is used then).
pub fn for_viewer(id: ViewerId) -> Option<Handle> {
    let handles = PLAYERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        (0..cores).filter_map(start).collect()
    });
    handles.get(id as usize % handles.len().max(1)).cloned()
}

/// Starts player thread `i`: its runtime runs for the rest of the process.
fn start(i: usize) -> Option<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("native-{i}"))
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .ok()?;
    Some(handle)
}
