//! Ctrl-C and SIGTERM for a command that should end cleanly (`maintain`): the first one
//! asks it to stop, so it finishes the step under way, cleans up and exits; a second one ends
//! the process at once. No async runtime and no unsafe code: signal-hook's self-pipe is read
//! by one thread that forwards each signal to a channel, so a wait between steps wakes as soon
//! as one arrives. Elsewhere than Unix nothing is caught and a wait is a plain sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use anyhow::Result;

/// A signal that asks the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: `kill`, or a supervisor (systemd, `docker stop`) stopping a service.
    Terminate,
}

impl Signal {
    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }
}

/// Signals caught since [`Stop::install`].
pub struct Stop {
    signals: Receiver<Signal>,
    // Held so that a wait with no signal handler (not on Unix) times out instead of failing.
    _sender: Sender<Signal>,
    /// Whether the command is in [`Stop::wait`], where a signal stops it at once.
    waiting: Arc<AtomicBool>,
}

impl Stop {
    /// Catches SIGINT and SIGTERM from now on, for the rest of the process. A signal that
    /// comes while the command is not waiting is acknowledged on stderr, saying that `step`
    /// (e.g. "the tick under way") is finished first.
    pub fn install(step: &'static str) -> Result<Self> {
        let (sender, signals) = std::sync::mpsc::channel();
        let waiting = Arc::new(AtomicBool::new(false));
        #[cfg(unix)]
        forward(sender.clone(), Arc::clone(&waiting), step)?;
        #[cfg(not(unix))]
        let _ = step;
        Ok(Self {
            signals,
            _sender: sender,
            waiting,
        })
    }

    /// Waits up to `timeout` for a signal; `None` if none came.
    pub fn wait(&self, timeout: Duration) -> Option<Signal> {
        self.waiting.store(true, Ordering::SeqCst);
        // Disconnected cannot happen while `_sender` lives; it would be no signal either.
        let signal = self.signals.recv_timeout(timeout).ok();
        self.waiting.store(false, Ordering::SeqCst);
        signal
    }

    /// A signal caught and not yet taken, without waiting.
    pub fn pending(&self) -> Option<Signal> {
        self.signals.try_recv().ok()
    }
}

/// Registers the handlers and starts the thread that forwards signals to `sender`.
#[cfg(unix)]
fn forward(sender: Sender<Signal>, waiting: Arc<AtomicBool>, step: &'static str) -> Result<()> {
    use anyhow::Context;
    use signal_hook::consts::{SIGINT, SIGTERM};

    let caught = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // The first signal only arms this (the registration below sets `caught`); a second
        // one exits at once with 128 + its number, as a shell reports a process it killed.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&caught))
            .context("catching Ctrl-C")?;
        signal_hook::flag::register(signal, Arc::clone(&caught)).context("catching Ctrl-C")?;
    }
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("catching Ctrl-C")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let signal = if signal == SIGINT {
                    Signal::Interrupt
                } else {
                    Signal::Terminate
                };
                if !waiting.load(Ordering::SeqCst) {
                    eprintln!(
                        "{}: finishing {step} first ({} again to stop at once)",
                        signal.name(),
                        match signal {
                            Signal::Interrupt => "Ctrl-C",
                            Signal::Terminate => "SIGTERM",
                        }
                    );
                }
                if sender.send(signal).is_err() {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}
