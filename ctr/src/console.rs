//! ctr's terminal for a task with a pty (`-t`), as containerd's `console`
//! package finds it: the first of stderr, stdout and stdin that is a
//! terminal, put in raw mode while the task runs and restored after.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::anyhow;
use nix::sys::termios::{self, SetArg, Termios};

/// The terminal, raw until dropped.
pub struct Console {
    fd: OwnedFd,
    saved: Option<Termios>,
}

nix::ioctl_read_bad!(window_size, nix::libc::TIOCGWINSZ, nix::libc::winsize);

impl Console {
    /// The current terminal; an error (as Go's `console.Current` panics)
    /// when ctr has none.
    pub fn current() -> anyhow::Result<Console> {
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        let streams: [BorrowedFd<'_>; 3] = [stderr.as_fd(), stdout.as_fd(), stdin.as_fd()];
        for fd in streams {
            if nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false) {
                return Ok(Console {
                    fd: fd.try_clone_to_owned()?,
                    saved: None,
                });
            }
        }
        Err(anyhow!("provided file is not a console"))
    }

    /// A terminal known by a descriptor, left in whatever mode it is in.
    pub fn from_fd(fd: OwnedFd) -> Console {
        Console { fd, saved: None }
    }

    /// Raw mode as containerd's `console.SetRaw` makes it: `cfmakeraw`'s
    /// input, local and control flags (its character size bits all
    /// cleared), but output processing kept, so `\n` still goes out as
    /// `\r\n`.
    pub fn set_raw(&mut self) -> anyhow::Result<()> {
        use termios::{ControlFlags, InputFlags, LocalFlags, OutputFlags, SpecialCharacterIndices};
        let saved = termios::tcgetattr(self.fd.as_fd())?;
        let mut raw = saved.clone();
        raw.input_flags &= !(InputFlags::IGNBRK
            | InputFlags::BRKINT
            | InputFlags::PARMRK
            | InputFlags::ISTRIP
            | InputFlags::INLCR
            | InputFlags::IGNCR
            | InputFlags::ICRNL
            | InputFlags::IXON);
        raw.output_flags |= OutputFlags::OPOST;
        raw.local_flags &= !(LocalFlags::ECHO
            | LocalFlags::ECHONL
            | LocalFlags::ICANON
            | LocalFlags::ISIG
            | LocalFlags::IEXTEN);
        raw.control_flags &= !(ControlFlags::CSIZE | ControlFlags::PARENB | ControlFlags::CS8);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &raw)?;
        self.saved = Some(saved);
        Ok(())
    }

    /// `(width, height)` in characters.
    pub fn size(&self) -> anyhow::Result<(u32, u32)> {
        let mut size = nix::libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
        // points at a live, writable `winsize`; the descriptor is open.
        unsafe { window_size(self.fd.as_raw_fd(), &mut size) }?;
        Ok((u32::from(size.ws_col), u32::from(size.ws_row)))
    }

    /// A copy of the terminal's descriptor, for the task's streams.
    pub fn stream(&self) -> anyhow::Result<OwnedFd> {
        Ok(self.fd.try_clone()?)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &saved);
        }
    }
}
