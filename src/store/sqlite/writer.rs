//! The board-state writer: one connection on a thread of its own that stores board states in
//! group-committed batches, and the WAL checkpoints that keep its commits short. It must not
//! store a version below a state of the same board that the database already holds.

use super::*;

/// One board state waiting to be stored, and where to say it is durable.
pub(super) struct StateWrite {
    pub(super) command: Uuid,
    pub(super) board: Uuid,
    pub(super) json: String,
    pub(super) done: oneshot::Sender<Result<Saved, String>>,
}

/// Stores board states in batches: when a thousand teachers press "next" at 8:30, each press
/// waits for one shared commit instead of a thousand commits in a row. A state is still
/// acknowledged only after the transaction holding it has committed.
///
/// It runs on a thread of its own: on the server's runtime, each of its statements waited
/// behind thousands of connection tasks made ready by the same burst.
pub(super) struct StateWriter {
    pub(super) write: SqlitePool,
    pub(super) hlc: Arc<Hlc>,
    pub(super) node: String,
    /// The newest stored version of each board seen so far. Only this writer adds board
    /// states (purging removes superseded rows only), so the database is asked once per board.
    pub(super) newest: HashMap<Uuid, Version>,
}

pub(super) const STATE_BATCH: usize = 1024;
/// How often a batch's rows are tried again when states of their boards arrived from
/// elsewhere meanwhile (each try reads the boards' newest versions again).
const WRITE_ATTEMPTS: usize = 3;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The writer checkpoints on commit only past this many WAL pages (about 80 MiB): a safety
/// net should [`checkpoints`] fall behind, not the routine.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";
/// Boards whose newest version the writer remembers; past this it forgets them all and asks
/// the database again, which is correct, only slower.
const NEWEST_REMEMBERED: usize = 100_000;

impl StateWriter {
    /// Runs the writer, and the checkpoints that keep its commits short, on a thread of
    /// their own until the store is dropped.
    pub(super) fn spawn(
        self,
        queue: mpsc::Receiver<StateWrite>,
        options: SqliteConnectOptions,
    ) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("board-states".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        () = self.run(queue) => {}
                        () = checkpoints(options) => {}
                    }
                })
            })?;
        Ok(())
    }

    async fn run(mut self, mut queue: mpsc::Receiver<StateWrite>) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < STATE_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            match self.store(&batch).await {
                Ok(outcomes) => {
                    for (write, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = write.done.send(outcome);
                    }
                }
                Err(e) => {
                    let reason = crate::error_chain(&e);
                    for write in batch {
                        let _ = write.done.send(Err(reason.clone()));
                    }
                }
            }
        }
    }

    /// The batch is one `INSERT` whatever its size (the states go in as one JSON parameter):
    /// in a burst, each round trip to SQLite's thread waits for a core, so a batch makes as
    /// few as it can.
    ///
    /// A row is inserted only if its command id is new and no state of its board has a
    /// version as high: the remembered newest versions may be stale once rows arrive by
    /// replication. Rows the `INSERT` leaves out are either repeated commands (answered with
    /// their earlier outcome) or stale guesses (their boards' newest versions are read
    /// again and they are tried once more). Should a read fail, only the rows it concerned
    /// get the error (retrying them is safe); the others are stored and say so.
    async fn store(
        &mut self,
        batch: &[StateWrite],
    ) -> Result<Vec<Result<Saved, String>>, sqlx::Error> {
        let mut conn = self.write.acquire().await?;
        // Each command once: a resend inside the same batch gets the first one's outcome.
        let mut first_of: HashMap<Uuid, usize> = HashMap::new();
        let unique: Vec<usize> = (0..batch.len())
            .filter(|&i| *first_of.entry(batch[i].command).or_insert(i) == i)
            .collect();
        let mut outcomes: HashMap<usize, Result<Saved, String>> = HashMap::new();
        let mut pending = unique;
        for _attempt in 0..WRITE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let mut newest = self
                .newest_of(&mut conn, pending.iter().map(|&i| &batch[i]))
                .await?;
            let mut rows = Vec::with_capacity(pending.len());
            for &i in &pending {
                let write = &batch[i];
                let after = newest.get(&write.board).copied().unwrap_or(Version(0));
                let version = self.hlc.next_after(after);
                newest.insert(write.board, version);
                rows.push((
                    Uuid::now_v7(),
                    write.board,
                    write.command,
                    write.json.as_str(),
                    version.0,
                ));
            }
            let json = serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(e.into()))?;
            let stored: Vec<String> = sqlx::query_scalar(
                "INSERT INTO board_state (id, board_id, command_id, state, version, node)
                 SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, ?
                 FROM json_each(?) AS j
                 WHERE NOT EXISTS (SELECT 1 FROM board_state b WHERE b.command_id = j.value->>2)
                 AND NOT EXISTS (SELECT 1 FROM board_state b
                                 WHERE b.board_id = j.value->>1 AND b.version >= j.value->>4)
                 RETURNING command_id",
            )
            .bind(&self.node)
            .bind(json)
            .fetch_all(&mut *conn)
            .await?;
            let stored: HashSet<Uuid> = stored.iter().filter_map(|c| c.parse().ok()).collect();
            let mut left = Vec::new();
            for (&i, row) in pending.iter().zip(&rows) {
                if stored.contains(&row.2) {
                    self.newest.insert(row.1, Version(row.4));
                    outcomes.insert(i, Ok(Saved::New(Version(row.4))));
                } else {
                    left.push(i);
                }
            }
            if left.is_empty() {
                pending = left;
                break;
            }
            let commands: Vec<Uuid> = left.iter().map(|&i| batch[i].command).collect();
            match Self::earlier(&mut conn, &commands).await {
                Ok(earlier) => {
                    pending = Vec::new();
                    for i in left {
                        match earlier.get(&batch[i].command) {
                            Some(saved) => {
                                outcomes.insert(i, Ok(*saved));
                            }
                            None => {
                                // A newer state of this board arrived from elsewhere.
                                self.newest.remove(&batch[i].board);
                                pending.push(i);
                            }
                        }
                    }
                }
                Err(e) => {
                    let reason = crate::error_chain(&e);
                    for i in left {
                        outcomes.insert(i, Err(reason.clone()));
                    }
                    pending = Vec::new();
                }
            }
        }
        for i in pending {
            let busy = "the board kept changing under this write; try again".to_owned();
            outcomes.insert(i, Err(busy));
        }
        if self.newest.len() > NEWEST_REMEMBERED {
            self.newest.clear();
        }
        Ok((0..batch.len())
            .map(|i| {
                let first = first_of[&batch[i].command];
                let outcome = outcomes
                    .get(&first)
                    .cloned()
                    .unwrap_or_else(|| Err("a command of this batch was not answered".to_owned()));
                match outcome {
                    // The repeat of a command stored by this batch finds it stored before.
                    Ok(Saved::New(version)) if first != i => Ok(Saved::Before {
                        board: batch[first].board,
                        version,
                    }),
                    other => other,
                }
            })
            .collect())
    }

    /// The stored outcome of each of these commands. A command stored twice (a resend that
    /// reached two nodes) answers its lowest `(version, id)`, the same on every node.
    pub(super) async fn earlier(
        conn: &mut SqliteConnection,
        commands: &[Uuid],
    ) -> Result<HashMap<Uuid, Saved>, sqlx::Error> {
        let stored = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT b.command_id, b.board_id, b.version FROM board_state b
             WHERE b.command_id IN (SELECT value FROM json_each(?))
             AND NOT EXISTS (SELECT 1 FROM board_state o WHERE o.command_id = b.command_id
                             AND (o.version, o.id) < (b.version, b.id))",
        )
        .bind(json_array(commands.iter().copied()))
        .fetch_all(&mut *conn)
        .await?;
        let mut earlier = HashMap::new();
        for (command, board, version) in stored {
            if let (Ok(command), Ok(board)) = (Uuid::parse_str(&command), Uuid::parse_str(&board)) {
                let version = Version(version);
                earlier.insert(command, Saved::Before { board, version });
            }
        }
        Ok(earlier)
    }

    /// The newest stored version of each board these writes are for: remembered, or read.
    async fn newest_of<'a>(
        &self,
        conn: &mut SqliteConnection,
        writes: impl Iterator<Item = &'a StateWrite>,
    ) -> Result<HashMap<Uuid, Version>, sqlx::Error> {
        let mut newest = HashMap::new();
        let mut unknown = Vec::new();
        for write in writes {
            match self.newest.get(&write.board) {
                Some(v) => {
                    newest.insert(write.board, *v);
                }
                None => unknown.push(write.board),
            }
        }
        if unknown.is_empty() {
            return Ok(newest);
        }
        let stored = sqlx::query_as::<_, (String, Option<i64>)>(
            "SELECT board_id, MAX(version) FROM board_state
             WHERE board_id IN (SELECT value FROM json_each(?)) GROUP BY board_id",
        )
        .bind(json_array(unknown))
        .fetch_all(&mut *conn)
        .await?;
        for (board, version) in stored {
            if let Ok(board) = Uuid::parse_str(&board) {
                newest.insert(board, Version(version.unwrap_or(0)));
            }
        }
        Ok(newest)
    }
}

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`] on a connection
/// of its own. Left to SQLite, the commit that crosses the WAL's size limit does it, and a
/// burst of board states waited for that commit. Never returns.
async fn checkpoints(options: SqliteConnectOptions) {
    let mut conn = match options.connect().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "no checkpoint connection; SQLite checkpoints on commit");
            return std::future::pending().await;
        }
    };
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}
