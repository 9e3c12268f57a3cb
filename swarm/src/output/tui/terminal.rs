//! The dashboard on the terminal: its own thread draws [`super::draw`] at [`super::REFRESH`]
//! and reads keys; the terminal is restored when it closes, on errors and on panics.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use ratatui::crossterm::event::{self, Event};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::measure::origin::OriginSnapshot;
use crate::measure::snapshot::Snapshot;
use crate::output::tui::{draw, Action, Banner, Ui, REFRESH};

/// The dashboard thread of a run.
#[derive(Debug)]
pub struct Dashboard {
    close: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Dashboard {
    /// Takes over the terminal (raw mode, alternate screen) and draws until [`Dashboard::close`].
    /// A quit key cancels `stop`, which ends the run gracefully.
    ///
    /// # Errors
    /// The terminal cannot be set up (it is restored before returning).
    pub fn start(
        header: Banner,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        origin: Option<watch::Receiver<OriginSnapshot>>,
        stop: CancellationToken,
    ) -> io::Result<Dashboard> {
        let mut terminal = match ratatui::try_init() {
            Ok(t) => t,
            Err(e) => {
                ratatui::restore();
                return Err(e);
            }
        };
        let close = Arc::new(AtomicBool::new(false));
        let closing = Arc::clone(&close);
        let thread = std::thread::Builder::new().name("dashboard".into()).spawn(move || {
            let mut ui = Ui::default();
            let mut view = (Arc::new(Snapshot::default()), None);
            let result = (|| -> io::Result<()> {
                while !closing.load(Ordering::SeqCst) {
                    if !ui.paused {
                        view = (Arc::clone(&snapshots.borrow()), origin.as_ref().map(|o| o.borrow().clone()));
                    }
                    terminal.draw(|f| draw(f, &header, &view.0, view.1.as_ref(), &ui))?;
                    if event::poll(REFRESH)? {
                        if let Event::Key(key) = event::read()? {
                            if ui.on_key(key) == Action::Quit {
                                stop.cancel();
                            }
                        }
                    }
                }
                Ok(())
            })();
            ratatui::restore();
            result
        });
        match thread {
            Ok(t) => Ok(Dashboard { close, thread: Some(t) }),
            Err(e) => {
                ratatui::restore();
                Err(e)
            }
        }
    }

    /// Stops drawing and gives the terminal back; returns what went wrong while drawing, if
    /// anything.
    pub async fn close(mut self) -> io::Result<()> {
        self.close.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else { return Ok(()) };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(io::Error::other("the dashboard thread panicked")),
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        // A run that ends by an error path still gives the terminal back.
        self.close.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
