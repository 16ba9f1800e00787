//! The TCP side of a server connection, holding what the TLS handshake writes until the
//! handshake needs the client's answer, and a TLS 1.3 session ticket until the first
//! response follows it.
//!
//! A TLS 1.3 server ends its handshake with a session ticket, which tokio-rustls flushes on
//! its own; the answer to the request (which often arrived with the client's Finished)
//! then leaves in a second write. On loopback every write costs the server the sending
//! and the receiving TCP path (~18 µs measured with `perf` in reconnect phases, four
//! writes per connection before this module). Held, the ticket leaves with the first
//! response, in one write and one segment (docs/performance.md, session 8).
//!
//! Nothing waits on held bytes. During the handshake they are sent before every read
//! from the socket, since the handshake goes on only once the client has them (a flush
//! holds them: the handshake's next read sends them). After a TLS 1.3 handshake the
//! client needs nothing more to send its request — a ticket only serves its next
//! connection — so the ticket waits for the first response or the shutdown, through
//! hyper's reads and flushes (hyper flushes on every turn of its loop, response or not).
//! After a TLS 1.2 handshake (whose last flight the client waits for) held bytes go
//! before anything else. The first write after the handshake joins at most one more
//! write (the first records of the first response); from then on held bytes go before
//! anything else, and the buffer is freed once empty: kept connections carry none.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Up to this many held bytes, the first write after the handshake joins them (a ticket is
/// under 1 KB); beyond it, they are sent before the write.
const JOIN_LIMIT: usize = 4096;

/// Where the connection is, for what may stay held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Writes are held until the handshake reads or the stream shuts down.
    Handshake,
    /// A TLS 1.3 handshake is over: what it left held waits for the first write (joined
    /// with it) or the shutdown; reads and flushes go on without it.
    Ticket,
    /// Held bytes go out before any read, write or flush; then everything passes through.
    Open,
}

/// A stream that holds writes during the TLS handshake (see the module comment).
#[derive(Debug)]
pub struct HoldingStream<T> {
    io: T,
    held: Vec<u8>,
    phase: Phase,
}

impl<T> HoldingStream<T> {
    /// Wraps a freshly accepted connection: writes are held until the next read.
    pub fn new(io: T) -> HoldingStream<T> {
        HoldingStream {
            io,
            held: Vec::new(),
            phase: Phase::Handshake,
        }
    }

    /// The handshake is over. With `tls13`, what it left held (the session ticket) waits
    /// for the first response; otherwise it goes out before anything else.
    pub fn handshake_done(&mut self, tls13: bool) {
        self.phase = if tls13 { Phase::Ticket } else { Phase::Open };
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncWrite + Unpin> HoldingStream<T> {
    /// Writes out everything held; once the handshake is over, lets everything through
    /// from then on and frees the buffer when it is empty.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.phase == Phase::Ticket {
            self.phase = Phase::Open;
        }
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n);
        }
        if self.phase == Phase::Open {
            self.held = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for HoldingStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase != Phase::Ticket {
            ready!(this.poll_send_held(cx))?;
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> HoldingStream<T> {
    /// Holds `bufs` or joins them to what is held, when the phase says so; `None` when they
    /// go straight to the socket (what is held then went first).
    fn poll_hold(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Option<Poll<io::Result<usize>>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        match self.phase {
            Phase::Handshake => {
                bufs.iter().for_each(|b| self.held.extend_from_slice(b));
                Some(Poll::Ready(Ok(len)))
            }
            Phase::Ticket if self.held.len() <= JOIN_LIMIT => {
                // The first write after the handshake: out together with the ticket. If
                // the socket cannot take it all now, the rest stays held (now `Open`) for
                // the flush that follows (its waker is registered), so the write is done.
                bufs.iter().for_each(|b| self.held.extend_from_slice(b));
                match self.poll_send_held(cx) {
                    Poll::Ready(Err(e)) => Some(Poll::Ready(Err(e))),
                    _ => Some(Poll::Ready(Ok(len))),
                }
            }
            Phase::Ticket | Phase::Open => match self.poll_send_held(cx) {
                Poll::Ready(Ok(())) => None,
                Poll::Ready(Err(e)) => Some(Poll::Ready(Err(e))),
                Poll::Pending => Some(Poll::Pending),
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HoldingStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(held) = this.poll_hold(cx, &[IoSlice::new(buf)]) {
            return held;
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    /// rustls hands over its records as separate buffers: once nothing is held they go
    /// to the socket in one `writev`, as they would without this stream.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(held) = this.poll_hold(cx, bufs) {
            return held;
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Open {
            ready!(this.poll_send_held(cx))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::Waker;

    /// A stream that records each write it is given and has `input` to read; with
    /// `capacity`, it takes at most that many bytes per write.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        input: Vec<u8>,
        capacity: Option<usize>,
        shut: bool,
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let n = this.input.len().min(buf.remaining());
            buf.put_slice(&this.input[..n]);
            this.input.drain(..n);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let n = this.capacity.map_or(buf.len(), |c| c.min(buf.len()));
            this.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &all)
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shut = true;
            Poll::Ready(Ok(()))
        }
    }

    /// What a connection does, in order.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Write(&'static str),
        Flush,
        Read,
        /// The handshake is over, TLS 1.3 (true) or 1.2.
        Done(bool),
        Shutdown,
    }

    /// Runs a future the recorder never makes wait.
    fn run<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the recorder never makes a stream wait"),
        }
    }

    fn replay(ops: &[Op], capacity: Option<usize>) -> HoldingStream<Recorder> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = HoldingStream::new(Recorder {
            input: b"from the client".to_vec(),
            capacity,
            ..Recorder::default()
        });
        for op in ops {
            match *op {
                Op::Write(text) => run(s.write_all(text.as_bytes())).unwrap(),
                Op::Flush => run(s.flush()).unwrap(),
                Op::Read => {
                    let mut buf = [0u8; 4];
                    run(s.read(&mut buf)).unwrap();
                }
                Op::Done(tls13) => s.handshake_done(tls13),
                Op::Shutdown => run(s.shutdown()).unwrap(),
            }
        }
        s
    }

    #[test]
    fn held_writes_leave_before_reads_and_with_the_first_response() {
        use Op::*;
        let cases: &[(&str, &[Op], &[&str])] = &[
            (
                "TLS 1.3: hello flight before the handshake reads, ticket with the answer \
                 even when hyper reads before answering",
                &[
                    Write("hello"),
                    Flush,
                    Read,
                    Write("ticket"),
                    Flush,
                    Done(true),
                    Read,
                    Write("answer"),
                    Flush,
                ],
                &["hello", "ticketanswer"],
            ),
            (
                "a handshake's flush holds its writes until it reads",
                &[Write("hello"), Write("more"), Flush],
                &[],
            ),
            (
                "TLS 1.2: the last flight leaves before the connection reads",
                &[Write("finished"), Flush, Done(false), Read, Write("answer")],
                &["finished", "answer"],
            ),
            (
                "TLS 1.3: hyper's flushes before the answer leave the ticket held",
                &[
                    Write("ticket"),
                    Done(true),
                    Flush,
                    Read,
                    Flush,
                    Write("answer"),
                ],
                &["ticketanswer"],
            ),
            (
                "later writes go straight through",
                &[
                    Write("ticket"),
                    Done(true),
                    Write("one"),
                    Write("two"),
                    Flush,
                    Write("three"),
                ],
                &["ticketone", "two", "three"],
            ),
            (
                "a connection closed without a request still sends its ticket",
                &[Write("ticket"), Done(true), Read, Read, Shutdown],
                &["ticket"],
            ),
            (
                "a failed handshake's alert leaves on shutdown",
                &[Write("alert"), Shutdown],
                &["alert"],
            ),
            ("nothing held, nothing written", &[Read, Flush], &[]),
        ];
        for (name, ops, want) in cases {
            let s = replay(ops, None);
            let got: Vec<String> = s
                .get_ref()
                .writes
                .iter()
                .map(|w| String::from_utf8(w.clone()).unwrap())
                .collect();
            assert_eq!(&got, want, "{name}");
        }
    }

    #[test]
    fn a_socket_that_takes_less_gets_the_rest_in_order_and_the_buffer_is_freed() {
        use Op::*;
        let s = replay(
            &[Write("ticket"), Done(true), Write("answer"), Flush],
            Some(4),
        );
        let all: Vec<u8> = s.get_ref().writes.concat();
        assert_eq!(all, b"ticketanswer");
        assert!(s.get_ref().writes.iter().all(|w| w.len() <= 4));
        assert_eq!(s.held.capacity(), 0, "a kept connection holds no buffer");
    }

    #[test]
    fn records_given_together_leave_in_one_write() {
        use tokio::io::AsyncWriteExt;
        let mut s = HoldingStream::new(Recorder::default());
        assert!(s.is_write_vectored());
        run(s.write_all(b"ticket")).unwrap();
        s.handshake_done(true);
        let records = [IoSlice::new(b"head"), IoSlice::new(b"body")];
        assert_eq!(run(s.write_vectored(&records)).unwrap(), 8);
        let records = [IoSlice::new(b"head2"), IoSlice::new(b"body2")];
        assert_eq!(run(s.write_vectored(&records)).unwrap(), 10);
        let writes: Vec<&[u8]> = s.get_ref().writes.iter().map(Vec::as_slice).collect();
        assert_eq!(writes, [&b"ticketheadbody"[..], &b"head2body2"[..]]);
    }

    #[test]
    fn held_bytes_beyond_the_join_limit_go_out_before_the_next_write() {
        use tokio::io::AsyncWriteExt;
        let mut s = HoldingStream::new(Recorder::default());
        let flight = vec![b'h'; JOIN_LIMIT + 1];
        run(s.write_all(&flight)).unwrap();
        s.handshake_done(true);
        run(s.write_all(b"answer")).unwrap();
        let writes = &s.get_ref().writes;
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0], flight);
        assert_eq!(writes[1], b"answer");
        assert!(!s.get_ref().shut);
    }
}
