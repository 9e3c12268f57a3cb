//! Ctrl+C and SIGTERM during a run: the first asks every viewer to stop gracefully, the second
//! kills them at once.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::engine::supervisor::Shutdown;

/// The handlers, installed before anything else starts so that an interrupt at any point
/// ends the run cleanly.
#[derive(Debug)]
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Installs the handlers.
    ///
    /// # Errors
    /// If the OS refuses them.
    pub fn install() -> io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves at the first SIGINT or SIGTERM: before any viewer starts, a signal simply ends
    /// the invocation.
    pub async fn first(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// From now on, signals drive `shutdown`: the first cancels its `stop`, the second its
    /// `kill`.
    #[must_use]
    pub fn drive(mut self, shutdown: Shutdown) -> Watch {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&interrupted);
        let task = tokio::spawn(async move {
            for round in 0..2 {
                tokio::select! {
                    _ = self.interrupt.recv() => {}
                    _ = self.terminate.recv() => {}
                }
                if round == 0 {
                    flag.store(true, Ordering::SeqCst);
                    shutdown.stop.cancel();
                } else {
                    shutdown.kill.cancel();
                }
            }
        });
        Watch { interrupted, task }
    }
}

/// Signals driving a run's shutdown; stops watching when dropped.
#[derive(Debug)]
pub struct Watch {
    interrupted: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// True once a signal asked the run to stop.
    #[must_use]
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
