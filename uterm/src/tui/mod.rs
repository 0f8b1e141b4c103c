//! The console (`uterm` on a terminal): a live view of units, proxies, endpoints, transports
//! and events, with single-key actions and the `:` command line of script mode.
//!
//! Input → [`action::Action`] ([`input`]) → one reducer owning the state ([`app::App`], with
//! [`ops`]) → [`view`] draws it. Network work is off the UI thread ([`net`]): one bulk
//! Jolokia request per refresh tick (latest snapshot wins), a follower of `/events`, and
//! commands run through the same [`crate::Executor`] as script mode. [`run`] owns the
//! terminal and restores it on every way out: quitting, an error, a panic, SIGINT/SIGTERM/SIGHUP.

pub mod action;
pub mod app;
pub mod cluster;
pub mod edit;
#[cfg(test)]
mod fixture;
pub mod input;
mod jobs;
pub mod model;
mod modes;
pub mod net;
mod ops;
pub mod text;
pub mod view;

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::Event as TermEvent;
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::conn::client::{normalize_url, ClientConfig};
use crate::present::output::now_ms;
use action::{Action, Effect};
use app::{App, Options};
use net::{Msg, Net};

/// How to start the console.
#[derive(Debug, Clone)]
pub struct Config {
    pub client: ClientConfig,
    /// Time between two refreshes (one bulk request each).
    pub refresh: Duration,
    /// Refuse every action that changes server state.
    pub read_only: bool,
}

/// How the console ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The operator quit.
    Quit,
    /// A signal ended it (its number).
    Signal(i32),
}

/// How often the screen is redrawn without news (clocks, retry countdowns).
const IDLE_REDRAW: Duration = Duration::from_millis(250);

/// Leaves raw mode and the alternate screen, shows the cursor. Safe to call more than once.
pub fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = crossterm::execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// Restores the terminal when dropped (error returns and panics unwinding the UI thread).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// A panic anywhere restores the terminal before the message is printed; a panic off the UI
/// thread also ends the process (the console cannot go on without its network side).
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
        if std::thread::current().name() != Some("main") {
            std::process::exit(101);
        }
    }));
}

fn spawn_signals(tx: mpsc::Sender<Msg>) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("uterm-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = tx.send(Msg::Signal(sig));
            }
        })?;
    Ok(())
}

fn spawn_input(tx: mpsc::Sender<Msg>, stop: Arc<AtomicBool>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("uterm-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match crossterm::event::poll(Duration::from_millis(100)) {
                    Ok(true) => match crossterm::event::read() {
                        Ok(ev) => {
                            if tx.send(Msg::Input(ev)).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        })?;
    Ok(())
}

/// Runs the console until the operator quits or a signal arrives.
pub fn run(config: Config) -> io::Result<Exit> {
    let (tx, rx) = mpsc::channel::<Msg>();
    install_panic_hook();
    spawn_signals(tx.clone())?;
    terminal::enable_raw_mode()?;
    let _restore = Restore;
    crossterm::execute!(io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)?;
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(tx.clone(), stop.clone())?;
    let net = Net::start(config.client.clone(), config.refresh, tx);

    let mut app = App::new(
        Options {
            url: normalize_url(&config.client.url),
            read_only: config.read_only,
            refresh: config.refresh,
        },
        now_ms(),
    );
    let size = term.size()?;
    app.update(Action::Resize {
        width: size.width,
        height: size.height,
    });
    let exit = main_loop(&mut term, &mut app, &rx, &net);
    stop.store(true, Ordering::Relaxed);
    term.show_cursor()?;
    exit
}

fn main_loop(
    term: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    rx: &mpsc::Receiver<Msg>,
    net: &Net,
) -> io::Result<Exit> {
    loop {
        term.draw(|f| view::draw(f, app))?;
        let first = match rx.recv_timeout(IDLE_REDRAW) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(Exit::Quit),
        };
        app.update(Action::Tick { now_ms: now_ms() });
        // Everything that arrived meanwhile, one at a time: a key is mapped in the mode the
        // previous key left (typing `:r` quickly must not reload).
        for msg in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            let action = match msg {
                Msg::Input(TermEvent::Key(k)) => input::action_for(&app.mode, k),
                Msg::Input(TermEvent::Resize(width, height)) => {
                    Some(Action::Resize { width, height })
                }
                Msg::Input(_) => None,
                Msg::Snapshot => net.snapshot.take().map(|s| Action::Snapshot(Box::new(s))),
                Msg::Action(a) => Some(a),
                Msg::Signal(sig) => return Ok(Exit::Signal(sig)),
            };
            let Some(action) = action else { continue };
            for effect in app.update(action) {
                match effect {
                    Effect::Run { id, command } => net.run(id, command),
                    Effect::Refresh => net.refresh_now(),
                    Effect::Tap {
                        id,
                        unit,
                        name,
                        consumer,
                    } => net.tap(id, unit, name, consumer),
                    Effect::Untap { id } => net.untap(id),
                    Effect::Quit => return Ok(Exit::Quit),
                }
            }
        }
    }
}
