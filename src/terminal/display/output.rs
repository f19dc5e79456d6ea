//! Step output on its way to the screen: prefixed by step (and host) when steps run
//! alongside others, an unfinished line kept on its step's spinner, and everything held
//! back (bounded) while a prompt is on screen, then shown in order.

use std::io::Write;

use super::{Display, HOLD_LIMIT, QUIET_TAIL};
use crate::event::Stream;
use crate::terminal::board;

impl Display {
    pub(super) fn hold(&mut self, step: String, stream: Stream, text: Vec<u8>) {
        if !step.is_empty() {
            let lines = memchr::memchr_iter(b'\n', &text).count().max(1);
            board::lock(&self.board).status.held_lines += lines;
        }
        if self.held_bytes + text.len() <= HOLD_LIMIT {
            self.held_bytes += text.len();
            self.held.push((step, stream, text));
        } else {
            self.dropped_bytes += text.len();
        }
    }

    /// Step output (stdout to stdout, stderr to stderr), prefixed by the step id when
    /// several steps are running.
    pub(super) fn show_output(
        &mut self,
        step: &str,
        host: Option<&str>,
        stream: Stream,
        bytes: &[u8],
    ) {
        if self.quiet() {
            let tail = self.tails.entry(step.to_string()).or_default();
            for l in String::from_utf8_lossy(bytes).lines() {
                tail.push_back(l.to_string());
                if tail.len() > QUIET_TAIL {
                    tail.pop_front();
                }
            }
            return;
        }
        let bytes = self.prefixed(step, host, stream, bytes);
        if self.paused {
            self.hold(step.to_string(), stream, bytes.into_owned());
            return;
        }
        self.show_prefixed(step, stream, &bytes);
    }

    /// Output already prefixed, on its way to the screen; never copied on the way when a
    /// pipe takes it (the speed of `cat` is the goal).
    fn show_prefixed(&mut self, step: &str, stream: Stream, bytes: &[u8]) {
        if self.spinners.is_none() {
            return self.write_out(stream, bytes);
        }
        // Whole lines above the spinners; the unfinished one on the step's spinner, until
        // its line or the step ends (a line written under the spinners would be drawn over).
        let key = (step.to_string(), stream);
        let cut = memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1);
        let (lines, tail) = bytes.split_at(cut);
        let rest = match self.partial.remove(&key) {
            Some(mut pending) if lines.is_empty() => {
                pending.extend_from_slice(tail);
                pending
            }
            Some(mut pending) => {
                pending.extend_from_slice(lines);
                self.write_out(stream, &pending);
                tail.to_vec()
            }
            None => {
                if !lines.is_empty() {
                    self.write_out(stream, lines);
                }
                tail.to_vec()
            }
        };
        if let Some(s) = &self.spinners {
            let shown = String::from_utf8_lossy(&rest);
            let last = shown.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
            let last: String = last.chars().filter(|c| !c.is_control()).collect();
            s.writing(step, &last);
        }
        if !rest.is_empty() {
            self.partial.insert(key, rest);
        }
    }

    /// `[step] ` at the start of each line, for steps that run alongside others; `[host] `
    /// (or `[step host] `) for a host of a fleet step.
    fn prefixed<'a>(
        &mut self,
        step: &str,
        host: Option<&str>,
        stream: Stream,
        bytes: &'a [u8],
    ) -> std::borrow::Cow<'a, [u8]> {
        let ends = bytes.last() == Some(&b'\n');
        // Whole lines with no line left open: nothing to remember (and nothing allocated).
        let (mid, cut_other) = if ends && self.mid_line.is_empty() {
            (false, false)
        } else {
            let key = (
                host.map_or_else(|| step.to_string(), |h| format!("{step} {h}")),
                stream,
            );
            // Another step's unfinished line, shown as it stood when its output went
            // quiet, is ended first: prefixed lines never run into each other. Its rest
            // comes on a line of its own. (On a terminal, unfinished lines wait on the
            // spinners instead.)
            let prefixed = host.is_some() || self.overlapped.contains(step);
            let open = self.mid_line.len();
            if prefixed && self.spinners.is_none() && !bytes.is_empty() {
                self.mid_line.retain(|k| k.1 != stream || *k == key);
            }
            let cut_other = self.mid_line.len() < open;
            let mid = self.mid_line.contains(&key);
            if ends {
                self.mid_line.remove(&key);
            } else if !bytes.is_empty() {
                self.mid_line.insert(key);
            }
            (mid, cut_other)
        };
        let prefix = match host {
            Some(h) if self.overlapped.contains(step) => format!("[{step} {h}] "),
            Some(h) => format!("[{h}] "),
            None if self.overlapped.contains(step) => format!("[{step}] "),
            None => return std::borrow::Cow::Borrowed(bytes),
        };
        let mut out = Vec::with_capacity(bytes.len() + 17);
        if cut_other {
            out.push(b'\n');
        }
        for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            if n > 0 || !mid {
                out.extend_from_slice(prefix.as_bytes());
            }
            out.extend_from_slice(line);
        }
        std::borrow::Cow::Owned(out)
    }

    fn write_out(&self, stream: Stream, bytes: &[u8]) {
        let write = || match stream {
            Stream::Stdout => {
                let mut out = self.out.lock();
                let _ = out.write_all(bytes);
                let _ = out.flush();
            }
            Stream::Stderr => {
                let _ = std::io::stderr().lock().write_all(bytes);
            }
        };
        match &self.spinners {
            Some(s) => s.suspend(write),
            None => write(),
        }
    }

    /// The unfinished line of a step that ended, ended (after its held output, while a
    /// prompt is on screen: an empty held piece marks the place).
    pub(super) fn end_partial(&mut self, step: &str) {
        if self.paused {
            self.held
                .push((step.to_string(), Stream::Stdout, Vec::new()));
            return;
        }
        if self.mid_line.is_empty() && self.partial.is_empty() {
            // No step is in the middle of a line (every step of a quiet chain).
            return;
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            let key = (step.to_string(), stream);
            let mid = self.mid_line.remove(&key);
            match self.partial.remove(&key) {
                Some(mut rest) => {
                    rest.push(b'\n');
                    self.write_out(stream, &rest);
                }
                // Without spinners, output reaches a pipe byte for byte.
                None if mid && self.spinners.is_some() => self.write_out(stream, b"\n"),
                None => {}
            }
        }
    }

    /// Hides the spinners and holds output back while a prompt is on screen.
    pub(super) fn pause(&mut self) {
        if let Some(s) = &self.spinners {
            s.hide();
        }
        self.paused = true;
    }

    pub(super) fn resume(&mut self) {
        self.paused = false;
        board::lock(&self.board).status.held_lines = 0;
        if let Some(s) = &self.spinners {
            s.show();
        }
        let held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        for (step, stream, text) in held {
            if step.is_empty() {
                self.write_out(stream, &text);
            } else if text.is_empty() {
                self.end_partial(&step);
            } else {
                self.show_prefixed(&step, stream, &text);
            }
        }
        if self.dropped_bytes > 0 {
            let n = std::mem::take(&mut self.dropped_bytes);
            self.line(format!(
                "  ({n} bytes of output arrived during the prompt; they are in the log)"
            ));
        }
    }
}
