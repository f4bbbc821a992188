//! Group commit for journal writes. Every journal transition must be
//! durable (an fsync'd commit) before the host call it guards; with several
//! steps in flight at once, one commit per transition makes the disk the
//! bottleneck. Writes queue here, and one task commits every write waiting
//! at that moment in a single `BEGIN IMMEDIATE` transaction — each in its
//! own savepoint, so one write's failure undoes only that write — then
//! tells each caller. A caller returns only after the commit that holds its
//! write, so the guarantee per write is unchanged; a lone write costs what
//! it did (one commit), and concurrent ones share one.

use super::StoreError;
use futures_util::future::BoxFuture;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

pub(super) type Tx = Transaction<'static, Sqlite>;

/// A queued write: runs in the shared transaction, says whether it worked.
type Job = Box<dyn for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, bool> + Send>;

struct Pending {
    job: Job,
    committed: oneshot::Sender<Result<(), String>>,
}

/// Most writes one commit holds (a bound on one transaction's work).
const MAX_GROUP: usize = 64;

#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl GroupCommit {
    /// Starts the committer on the current runtime; it stops when the last
    /// handle is dropped.
    pub(super) fn start(pool: SqlitePool) -> GroupCommit {
        let (queue, mut rx) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(p) => group.push(p),
                        Err(_) => break,
                    }
                }
                commit_group(&pool, group).await;
            }
        });
        GroupCommit { queue }
    }

    /// Runs `f` inside the next group's transaction and returns its result
    /// once that transaction has committed (an error if it did not).
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<T, StoreError>> + Send + 'static,
    {
        let (result_tx, result_rx) = oneshot::channel();
        let (committed, committed_rx) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            Box::pin(async move {
                let r = f(tx).await;
                let ok = r.is_ok();
                let _ = result_tx.send(r);
                ok
            })
        });
        let lost = || StoreError::Db(sqlx::Error::WorkerCrashed);
        self.queue
            .send(Pending { job, committed })
            .map_err(|_| lost())?;
        let outcome = committed_rx.await.map_err(|_| lost())?;
        let r = result_rx.await.map_err(|_| lost())?;
        match (r, outcome) {
            // The write failed and was undone: its own error.
            (Err(e), _) => Err(e),
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(StoreError::Db(sqlx::Error::Protocol(format!(
                "the journal commit failed: {e}"
            )))),
        }
    }
}

async fn commit_group(pool: &SqlitePool, group: Vec<Pending>) {
    let mut waiters = Vec::with_capacity(group.len());
    let outcome: Result<(), sqlx::Error> = async {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        for p in group {
            sqlx::query("SAVEPOINT grouped").execute(&mut *tx).await?;
            let ok = (p.job)(&mut tx).await;
            if !ok {
                sqlx::query("ROLLBACK TO grouped").execute(&mut *tx).await?;
            }
            sqlx::query("RELEASE grouped").execute(&mut *tx).await?;
            waiters.push(p.committed);
        }
        tx.commit().await
    }
    .await;
    let outcome = outcome.map_err(|e| e.to_string());
    // Writes that never ran (the transaction failed first) see their
    // result channel closed, and fail too.
    for w in waiters {
        let _ = w.send(outcome.clone());
    }
}
