//! Corrupting the bytes a server writes, for [`crate::CommFault::Garbage`].
//!
//! The service arms a flag shared with its connection's [`Garbling`]
//! writer when it answers a unit under the fault, and disarms it on the
//! next request. While armed, every write goes out as line noise: each
//! byte inverted and forced into 0xC0-0xFF, padded with 0xFF to at least
//! [`MIN_NOISE_LEN`] bytes. On RTU no CRC matches; tokio-modbus's RTU
//! client drops a byte per failed check and gives up with an `InvalidData`
//! error after 20, which this length guarantees, instead of waiting for its
//! timeout. Modbus TCP has no CRC and a junk header announces a length that
//! never arrives, so on TCP ([`AfterNoise::Close`]) the write then fails
//! and the server closes the connection: the client sees an invalid frame
//! or an early end of stream at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Noise written per corrupted write, at least: more than the 20 failed
/// CRC checks after which tokio-modbus's RTU decoder gives up.
pub(crate) const MIN_NOISE_LEN: usize = 48;

/// What happens after the noise is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterNoise {
    /// Carry on, like a serial line with noise on it (RTU, RTU over TCP).
    KeepOpen,
    /// Fail the write so the server drops the connection (Modbus TCP).
    Close,
}

/// The noise sent instead of `bytes`. Pure.
pub(crate) fn noise(bytes: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = bytes.iter().map(|b| !b | 0xC0).collect();
    if out.len() < MIN_NOISE_LEN {
        out.resize(MIN_NOISE_LEN, 0xFF);
    }
    out
}

/// A transport whose writes turn to noise while its flag is armed.
#[derive(Debug)]
pub(crate) struct Garbling<T> {
    inner: T,
    armed: Arc<AtomicBool>,
    after: AfterNoise,
    /// Noise not yet written, and the length of the write it stands for.
    pending: Vec<u8>,
    claimed: usize,
}

impl<T> Garbling<T> {
    pub(crate) fn new(inner: T, armed: Arc<AtomicBool>, after: AfterNoise) -> Self {
        Self {
            inner,
            armed,
            after,
            pending: Vec::new(),
            claimed: 0,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Garbling<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Garbling<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            if buf.is_empty() || !this.armed.load(Ordering::SeqCst) {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
            this.pending = noise(buf);
            this.claimed = buf.len();
        }
        while !this.pending.is_empty() {
            let written = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.pending.drain(..written);
        }
        match this.after {
            AfterNoise::KeepOpen => Poll::Ready(Ok(this.claimed.min(buf.len()))),
            AfterNoise::Close => {
                ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
                Poll::Ready(Err(io::Error::other(
                    "garbage fault: connection closed after noise",
                )))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    #[test]
    fn noise_has_no_byte_of_the_answer_and_is_long_enough_to_give_up_on() {
        let answer = [0x01, 0x03, 0x04, 0x09, 0x60, 0x00, 0x52, 0xAB, 0xCD];
        let out = noise(&answer);
        assert_eq!(out.len(), MIN_NOISE_LEN);
        assert!(out.iter().all(|b| *b >= 0xC0), "{out:X?}");
        assert_eq!(&out[..3], &[0xFE, 0xFC, 0xFB]);
        let long = noise(&[0u8; 100]);
        assert_eq!(long, vec![0xFF; 100]);
    }

    #[tokio::test]
    async fn writes_pass_unchanged_until_the_flag_is_armed() {
        let (near, mut far) = duplex(1024);
        let armed = Arc::new(AtomicBool::new(false));
        let mut writer = Garbling::new(near, Arc::clone(&armed), AfterNoise::KeepOpen);
        writer.write_all(&[1, 2, 3]).await.unwrap();
        armed.store(true, Ordering::SeqCst);
        writer.write_all(&[1, 2, 3]).await.unwrap();
        armed.store(false, Ordering::SeqCst);
        writer.write_all(&[4]).await.unwrap();
        drop(writer);
        let mut received = Vec::new();
        far.read_to_end(&mut received).await.unwrap();
        assert_eq!(&received[..3], &[1, 2, 3]);
        assert_eq!(&received[3..6], &[0xFE, 0xFD, 0xFC]);
        assert_eq!(received.len(), 3 + MIN_NOISE_LEN + 1);
        assert_eq!(received.last(), Some(&4));
    }

    #[tokio::test]
    async fn on_tcp_the_write_fails_after_the_noise_is_out() {
        let (near, mut far) = duplex(1024);
        let armed = Arc::new(AtomicBool::new(true));
        let mut writer = Garbling::new(near, armed, AfterNoise::Close);
        assert!(writer.write_all(&[0, 1, 0, 0, 0, 5, 1]).await.is_err());
        drop(writer);
        let mut received = Vec::new();
        far.read_to_end(&mut received).await.unwrap();
        assert_eq!(received.len(), MIN_NOISE_LEN);
    }

    #[tokio::test]
    async fn noise_larger_than_the_pipe_is_written_in_pieces() {
        let (near, mut far) = duplex(8);
        let armed = Arc::new(AtomicBool::new(true));
        let mut writer = Garbling::new(near, armed, AfterNoise::KeepOpen);
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            far.read_to_end(&mut received).await.unwrap();
            received
        });
        writer.write_all(&[0x11; 5]).await.unwrap();
        drop(writer);
        let received = reader.await.unwrap();
        assert_eq!(received.len(), MIN_NOISE_LEN);
        assert_eq!(&received[..5], &[0xEE; 5]);
    }
}
