//! A multipart upload sent in parts of one size, with a bound on the parts under
//! way, that is aborted whenever it fails before it is complete.
//!
//! object_store's `WriteMultipart` does the same but for the last point: when a
//! part fails while its `finish` waits for the parts, it returns the error and
//! leaves the upload unfinished (it aborts only when the completing request
//! fails), and having been consumed it can no longer be asked to abort. Those
//! parts would stay stored, unseen, until a bucket rule removed them. Here every
//! failure of [`Parts::complete`] aborts the upload, a failed [`Parts::put`]
//! leaves it for the caller's [`Parts::abort`], and parts dropped before either
//! (a panic on the way, a future dropped) abort it in a task of their own.

use bytes::Bytes;
use object_store::{MultipartUpload, PutPayloadMut, PutResult};
use tokio::task::JoinSet;

use crate::base::error::{Error, Result};

/// The parts of one object's upload.
pub struct Parts {
    /// `None` once completed or aborted: see the `Drop` below.
    upload: Option<Box<dyn MultipartUpload>>,
    /// The part being filled.
    filling: PutPayloadMut,
    part_bytes: usize,
    /// Parts sent and not yet answered, at most this many.
    in_flight: usize,
    sent: JoinSet<object_store::Result<()>>,
}

impl Parts {
    /// Parts of `part_bytes` (the last may be shorter), at most `in_flight` of
    /// them under way at once.
    pub fn new(upload: Box<dyn MultipartUpload>, part_bytes: usize, in_flight: usize) -> Self {
        Parts {
            upload: Some(upload),
            filling: PutPayloadMut::new(),
            part_bytes: part_bytes.max(1),
            in_flight: in_flight.max(1),
            sent: JoinSet::new(),
        }
    }

    /// Appends `bytes` (kept as they are, not copied); each part that fills is
    /// sent once fewer than `in_flight` are under way.
    pub async fn put(&mut self, mut bytes: Bytes) -> Result<()> {
        while !bytes.is_empty() {
            let room = self.part_bytes - self.filling.content_length();
            if bytes.len() < room {
                self.filling.push(bytes);
                return Ok(());
            }
            self.filling.push(bytes.split_to(room));
            self.send().await?;
        }
        Ok(())
    }

    /// Sends the part filled so far, after waiting for room.
    async fn send(&mut self) -> Result<()> {
        self.wait_until(self.in_flight - 1).await?;
        let part = std::mem::take(&mut self.filling);
        let upload = self.upload.as_mut().ok_or_else(ended)?;
        self.sent.spawn(upload.put_part(part.into()));
        crate::base::faults::point("write.part");
        Ok(())
    }

    /// Waits until at most `under_way` parts are, failing on the first that
    /// failed.
    async fn wait_until(&mut self, under_way: usize) -> Result<()> {
        while self.sent.len() > under_way {
            match self.sent.join_next().await {
                Some(Ok(answer)) => answer?,
                // Only a panic in the store's request ends a task so: nothing
                // cancels them while they are waited for.
                // (A storage error as object_store would make of it, without the
                // panic's message, which may quote data.)
                Some(Err(e)) => {
                    return Err(object_store::Error::Generic {
                        store: "upload",
                        source: crate::base::panics::task_failure(e).into(),
                    }
                    .into());
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Sends the last part, waits for every part and completes the upload;
    /// any failure on the way aborts it.
    pub async fn complete(mut self) -> Result<PutResult> {
        let done = async {
            if self.filling.content_length() > 0 {
                self.send().await?;
            }
            self.wait_until(0).await?;
            let upload = self.upload.as_mut().ok_or_else(ended)?;
            Ok::<_, Error>(upload.complete().await?)
        }
        .await;
        match done {
            Ok(result) => {
                self.upload = None;
                Ok(result)
            }
            Err(e) => {
                if let Err(abort) = self.abort().await {
                    tracing::warn!(error = %abort, "an upload that failed to complete could not be aborted");
                }
                Err(e)
            }
        }
    }

    /// Gives up the upload: the parts under way are cancelled and the store
    /// removes those it has.
    pub async fn abort(mut self) -> Result<()> {
        let sent = std::mem::take(&mut self.sent);
        match self.upload.take() {
            Some(upload) => Ok(give_up(sent, upload).await?),
            None => Ok(()),
        }
    }
}

/// Stops the parts under way, then aborts the upload: a part that landed after
/// the abort would stay stored.
async fn give_up(
    mut sent: JoinSet<object_store::Result<()>>,
    mut upload: Box<dyn MultipartUpload>,
) -> object_store::Result<()> {
    sent.shutdown().await;
    upload.abort().await
}

/// Parts used after their upload was completed or aborted (which consume them).
fn ended() -> Error {
    Error::Accounting("an upload's parts were used after it ended".into())
}

/// Dropped neither completed nor aborted (a panic on the way, or a future
/// dropped, which no error path sees): the upload is aborted in a task of its
/// own, so that its parts do not stay stored. A process that ends before that
/// request leaves them to the bucket's rule for incomplete uploads
/// (docs/deploying.md).
impl Drop for Parts {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let sent = std::mem::take(&mut self.sent);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = give_up(sent, upload).await {
                        tracing::warn!(error = %e, "an upload dropped unfinished could not be aborted");
                    }
                });
            }
            Err(_) => {
                tracing::warn!("an upload dropped unfinished outside the runtime was not aborted")
            }
        }
    }
}
