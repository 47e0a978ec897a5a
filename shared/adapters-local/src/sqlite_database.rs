//! The one SQLite connection of `heimdall serve`, owned by a thread of its own that commits
//! the work of concurrent requests together (group commit).
//!
//! Why: a job is a few small statements; what costs is the hand-off to a blocking thread and
//! the commit (a WAL append) per statement. The thread takes every piece of work waiting, runs
//! each in a savepoint of one transaction, commits once, and only then answers them all: every
//! change is in the database before its caller hears of it, and under load one commit carries
//! many jobs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use heimdall_ports::StoreError;
use rusqlite::Connection;

/// At most this many pieces of work share a transaction (a bound on how long the first waits).
const MAX_BATCH: usize = 256;

/// A piece of work for the database thread: runs on the connection inside its savepoint and
/// says whether to keep its changes, and how to answer once the transaction has ended.
type Work = Box<dyn FnOnce(&Connection) -> Ran + Send>;

struct Ran {
    keep: bool,
    answer: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("job database: {error}"))
}

/// A handle on the database thread; clones share it. The thread ends when the last handle is
/// dropped.
#[derive(Clone)]
pub struct SqliteDatabase {
    sender: mpsc::Sender<Work>,
}

impl SqliteDatabase {
    /// Hands `connection` (set up, schema created) to a thread of its own.
    pub fn start(connection: Connection) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("heimdall-sqlite".into())
            .spawn(move || serve(connection, receiver))
            .map_err(unavailable)?;
        Ok(Self { sender })
    }

    /// Runs `work` on the connection, inside a savepoint of a transaction it may share with
    /// other callers' work: an `Err` undoes its changes only; `Ok` is answered once they are
    /// committed. `work` must not begin or end transactions itself.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer_to, answered) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |connection| {
            let outcome = work(connection);
            Ran {
                keep: outcome.is_ok(),
                answer: Box::new(move |ended: Result<(), StoreError>| {
                    let _ = answer_to.send(ended.and(outcome));
                }),
            }
        });
        self.sender.send(work).map_err(|_| unavailable("its thread has stopped"))?;
        answered.await.map_err(|_| unavailable("the database thread could not run this work (see the server log)"))?
    }
}

/// The database thread: waits for work, takes what else is waiting, runs it all in one
/// transaction, commits, answers.
fn serve(connection: Connection, receiver: mpsc::Receiver<Work>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            // Nothing ran: each piece of work hears why (its answer is dropped unsent).
            tracing::error!(error.message = %error, "could not begin a database transaction");
            continue;
        }
        let mut answers = Vec::with_capacity(batch.len());
        for work in batch {
            if let Some(answer) = run_in_savepoint(&connection, work) {
                answers.push(answer);
            }
        }
        let committed = connection.execute_batch("COMMIT").map_err(|error| error.to_string());
        if committed.is_err() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        for answer in answers {
            answer(committed.clone().map_err(|error| unavailable(format!("could not commit: {error}"))));
        }
    }
}

/// Runs one piece of work in its own savepoint, rolled back when it fails or panics; its answer
/// waits for the commit. `None` when it panicked (its caller hears of it by its answer dropped).
fn run_in_savepoint(connection: &Connection, work: Work) -> Option<Box<dyn FnOnce(Result<(), StoreError>) + Send>> {
    if let Err(error) = connection.execute_batch("SAVEPOINT work") {
        tracing::error!(error.message = %error, "could not open a savepoint");
        return None;
    }
    let ran = catch_unwind(AssertUnwindSafe(|| work(connection)));
    let keep = matches!(&ran, Ok(ran) if ran.keep);
    let ended = if keep { "RELEASE work" } else { "ROLLBACK TO work; RELEASE work" };
    if let Err(error) = connection.execute_batch(ended) {
        tracing::error!(error.message = %error, "could not end a savepoint");
    }
    ran.ok().map(|ran| ran.answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> SqliteDatabase {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").unwrap();
        SqliteDatabase::start(connection).unwrap()
    }

    async fn count(database: &SqliteDatabase) -> i64 {
        database.run(|c| c.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0)).map_err(unavailable)).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_work_commits_together_and_a_failure_undoes_only_its_own() {
        let database = database();
        let mut tasks = Vec::new();
        for n in 0..200_i64 {
            let database = database.clone();
            tasks.push(tokio::spawn(async move {
                database
                    .run(move |c| {
                        c.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(unavailable)?;
                        // Every tenth inserts, then fails: its row must not stay.
                        if n % 10 == 0 { Err(StoreError::NotFound) } else { Ok(n) }
                    })
                    .await
            }));
        }
        let mut failed = 0;
        for task in tasks {
            if task.await.unwrap().is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 20);
        assert_eq!(count(&database).await, 180);
    }

    #[tokio::test]
    async fn a_panicking_piece_of_work_fails_alone_and_the_database_goes_on() {
        let database = database();
        let panicked = database.run(|c| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (n) VALUES (1)", []).unwrap();
            panic!("a bug in a store");
        });
        assert!(matches!(panicked.await, Err(StoreError::Unavailable(_))));
        database.run(|c| c.execute("INSERT INTO t (n) VALUES (2)", []).map_err(unavailable)).await.unwrap();
        assert_eq!(count(&database).await, 1, "the panicking work's row was rolled back");
    }
}
