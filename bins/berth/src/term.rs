//! The CLI's terminal, shared by `run -t`/`attach` and `exec -t`.

use std::io::IsTerminal;
use std::os::fd::AsFd;

/// Our stdin terminal in raw mode until dropped (nothing when stdin is no terminal).
pub struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let Ok(t) = rustix::termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = t.clone();
        raw.make_raw();
        let _ =
            rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(t) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin().as_fd(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// The terminal's size (stdout's, else stdin's), if either is a terminal.
pub fn size() -> Option<rustix::termios::Winsize> {
    [std::io::stdout().as_fd(), std::io::stdin().as_fd()]
        .into_iter()
        .find_map(|fd| rustix::termios::tcgetwinsize(fd).ok())
        .filter(|ws| ws.ws_row > 0 && ws.ws_col > 0)
}
