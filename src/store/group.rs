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

    /// Queues `f` for the next group's transaction and returns at once;
    /// what it did is not reported (a failure undoes only `f`).
    pub(super) fn enqueue<F>(&self, f: F)
    where
        F: for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<(), StoreError>> + Send + 'static,
    {
        let job: Job = Box::new(move |tx| Box::pin(async move { f(tx).await.is_ok() }));
        let (committed, _) = oneshot::channel();
        let _ = self.queue.send(Pending { job, committed });
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
        if let [_] = group.as_slice() {
            // A lone write is the whole transaction: undoing it is undoing
            // the transaction, no savepoint needed.
            let p = group.into_iter().next().expect("one write");
            let ok = (p.job)(&mut tx).await;
            waiters.push(p.committed);
            return if ok {
                tx.commit().await
            } else {
                tx.rollback().await
            };
        }
        // Each write in its own savepoint; the release of one and the
        // start of the next go in one round trip to the database thread.
        sqlx::query("SAVEPOINT grouped").execute(&mut *tx).await?;
        let last = group.len() - 1;
        for (i, p) in group.into_iter().enumerate() {
            let ok = (p.job)(&mut tx).await;
            let next = match (ok, i == last) {
                (true, false) => "RELEASE grouped; SAVEPOINT grouped",
                (true, true) => "RELEASE grouped",
                (false, false) => "ROLLBACK TO grouped; RELEASE grouped; SAVEPOINT grouped",
                (false, true) => "ROLLBACK TO grouped; RELEASE grouped",
            };
            sqlx::query(next).execute(&mut *tx).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    async fn pool() -> SqlitePool {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    /// Inserts `k`, then (when `dup`) inserts it again, which fails: the
    /// first insert of a failing write must not survive it.
    fn insert(
        k: &'static str,
        dup: bool,
    ) -> impl for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<(), StoreError>> + Send + 'static
    {
        move |tx| {
            Box::pin(async move {
                for _ in 0..(1 + dup as usize) {
                    sqlx::query("INSERT INTO t (k, v) VALUES (?, 1)")
                        .bind(k)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            })
        }
    }

    async fn keys(pool: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_write_in_a_group_undoes_only_itself() {
        let pool = pool().await;
        let g = GroupCommit::start(pool.clone());
        let (a, b, c) = tokio::join!(
            g.write(insert("a", false)),
            g.write(insert("b", true)),
            g.write(insert("c", false)),
        );
        assert!(a.is_ok() && c.is_ok());
        assert!(b.is_err(), "the write that failed reports it");
        assert_eq!(keys(&pool).await, ["a", "c"]);
    }

    #[tokio::test]
    async fn a_lone_failing_write_leaves_nothing() {
        let pool = pool().await;
        let g = GroupCommit::start(pool.clone());
        assert!(g.write(insert("x", true)).await.is_err());
        assert!(keys(&pool).await.is_empty());
        g.write(insert("y", false)).await.unwrap();
        assert_eq!(keys(&pool).await, ["y"]);
    }

    #[tokio::test]
    async fn a_queued_write_commits_no_later_than_the_next_awaited_one() {
        let pool = pool().await;
        let g = GroupCommit::start(pool.clone());
        g.enqueue(insert("early", false));
        g.write(insert("late", false)).await.unwrap();
        assert_eq!(keys(&pool).await, ["early", "late"]);
    }
}
