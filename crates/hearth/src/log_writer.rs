//! Log lines go to stderr through a buffer that a background thread empties every few
//! milliseconds, so a request's log line costs a copy rather than a write system call on the
//! thread serving it (at thousands of requests a second the writes were a fifth of the
//! gateway's time). Warnings and errors are written through at once, after whatever is
//! buffered, so the lines that explain a crash are out before it; the buffer is bounded and,
//! when full, a line is written through too, so no line is ever dropped. Order is kept: every
//! write to stderr happens under one lock, buffered lines first.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a buffered line may wait.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Past this, lines are written through rather than buffered.
const BUFFER_LIMIT: usize = 1 << 20;

#[derive(Clone)]
pub struct BufferedStderr {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Vec<u8>>,
    /// Held while writing to stderr, so buffered and written-through lines keep their order.
    output: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves nothing half-done that matters for log bytes.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Writes what is buffered, then `line`, to stderr.
    fn write_through(&self, line: &[u8]) {
        let _output = lock(&self.output);
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut stderr = std::io::stderr().lock();
        // A closed stderr has nowhere to report to.
        let _ = stderr.write_all(&pending);
        let _ = stderr.write_all(line);
        let _ = stderr.flush();
    }
}

impl BufferedStderr {
    /// The buffer, with nothing emptying it yet.
    fn unstarted() -> BufferedStderr {
        BufferedStderr {
            shared: Arc::new(Shared {
                pending: Mutex::new(Vec::with_capacity(64 * 1024)),
                output: Mutex::new(()),
            }),
        }
    }

    /// Starts the thread that empties the buffer.
    pub fn start() -> BufferedStderr {
        let writer = BufferedStderr::unstarted();
        let flusher = writer.clone();
        // If the thread cannot start, every line is written through by `flush` callers and
        // by the buffer limit; logging still works.
        let _ = std::thread::Builder::new()
            .name("hearth-log".to_string())
            .spawn(move || {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flusher.flush();
                }
            });
        writer
    }

    /// Writes out whatever is buffered (at exit, and by the background thread).
    pub fn flush(&self) {
        if !lock(&self.shared.pending).is_empty() {
            self.shared.write_through(&[]);
        }
    }
}

/// One event's writer: the formatter hands it the whole formatted line in one write.
pub struct LineWriter<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if !self.urgent {
            let mut pending = lock(&self.shared.pending);
            if pending.len() + line.len() <= BUFFER_LIMIT {
                pending.extend_from_slice(line);
                return Ok(line.len());
            }
        }
        self.shared.write_through(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            // WARN and ERROR (the less verbose end of the scale).
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_lines_wait_for_a_flush_and_urgent_ones_push_them_out_first() {
        let writer = BufferedStderr::unstarted();
        let mut info = writer.make_writer();
        info.write_all(b"first\n").expect("write");
        assert_eq!(&*lock(&writer.shared.pending), b"first\n");
        let mut urgent = LineWriter {
            shared: &writer.shared,
            urgent: true,
        };
        urgent.write_all(b"an error\n").expect("write");
        assert!(lock(&writer.shared.pending).is_empty());
        // A line that would overflow the buffer goes out rather than waiting or being lost.
        lock(&writer.shared.pending).resize(BUFFER_LIMIT, b' ');
        info.write_all(b"overflow\n").expect("write");
        assert!(lock(&writer.shared.pending).is_empty());
    }
}
