//! Following the other nodes of a cluster: what they say on the bus (states, pairings,
//! presence, a node rejoining), the states they carry for a store that is behind, and the
//! catch-up from the store when events were lost. Part of [`Live`]; knows nothing of HTTP.

use super::*;

/// Following the other nodes of a cluster.
impl Live {
    /// Tells the other nodes this node's pages of the board, when they `changed`.
    pub(super) fn tell_presence(&self, board: Uuid, changed: Option<Presence>) {
        if let Some(p) = changed {
            self.bus.publish(Event::Presence {
                board,
                online: p.online,
                rendered: p.rendered_version,
                shown: p.shown,
            });
        }
    }

    /// Tells the other nodes that lesson `id` has a new revision of `version`, so that none
    /// serves what it kept of the lesson.
    pub fn announce_lesson(&self, id: Uuid, version: Version) {
        self.bus.publish(Event::Lesson {
            lesson: id,
            version: version.0,
        });
    }

    /// Follows what other nodes said (see [`crate::bus`]), a batch at a time: the states
    /// announced are read together.
    pub async fn hear(self: &Arc<Self>, batch: Vec<Heard>) {
        let mut states = Vec::new();
        for heard in batch {
            match heard {
                Heard::Event {
                    event:
                        Event::State {
                            board,
                            version,
                            stored,
                        },
                    ..
                } => {
                    self.clock.observe(Version(version));
                    if let Some(stored) = stored {
                        self.carry(board, version, stored);
                    }
                    states.push((board, version));
                }
                Heard::Event { node, event } => self.heard_event(node, event).await,
                Heard::Missed => {
                    self.store.announcements_missed();
                    self.bus.publish(Event::Rejoined);
                    self.missed().await;
                }
            }
        }
        self.follow_states(&states).await;
    }

    async fn heard_event(&self, node: Uuid, event: Event) {
        match event {
            Event::State { .. } => {}
            Event::Rejoined => self.repeat_presence(),
            Event::Lesson { lesson, version } => {
                self.store.lesson_announced(lesson, Version(version));
            }
            Event::Revoked { board } => self.boards.revoke(&board),
            Event::Pairing { board } => {
                if let Some(channel) = self.hub.existing(board) {
                    channel.pairing.send_modify(|n| *n += 1);
                }
                self.authorized.lock().retain(|(_, b), _| *b != board);
                self.recheck_pairings(|b| b == board).await;
            }
            Event::Unpaired { board, account } => {
                self.authorized.lock().remove(&(account, board));
                self.pairings.revoke(&(account, board));
            }
            Event::Presence {
                board,
                online,
                rendered,
                shown,
            } => {
                let channel = match online {
                    0 => self.hub.existing(board),
                    _ => Some(self.hub.channel(board)),
                };
                if let Some(channel) = channel {
                    let presence = Presence {
                        online,
                        rendered_version: rendered,
                        shown,
                    };
                    channel.set_remote(node, presence);
                }
            }
        }
    }

    /// Events may have been lost: forget what was trusted, re-read pairings, catch up.
    async fn missed(self: &Arc<Self>) {
        self.authorized.lock().clear();
        for (_, channel) in self.hub.channels() {
            if channel.pairing.receiver_count() > 0 {
                channel.pairing.send_modify(|n| *n += 1);
            }
        }
        self.recheck_pairings(|_| true).await;
        if let Err(e) = self.catch_up().await {
            tracing::warn!(error = %e, "cannot catch up with other nodes");
        }
    }

    /// Publishes here the newer states of boards followed here, read from the store in one
    /// go per [`CATCH_UP_CHUNK`] boards; a board whose announced version the store does not
    /// have yet is read again while replication brings it ([`Live::refresh`]).
    async fn follow_states(self: &Arc<Self>, announced: &[(Uuid, i64)]) {
        let mut behind: Vec<(Uuid, i64)> = Vec::new();
        for &(board, version) in announced {
            let Some(channel) = self.hub.existing(board) else {
                continue; // nobody here follows it: it is read when someone does
            };
            let known = channel.state.borrow().as_ref().map(|s| s.state.version);
            if known.is_none_or(|k| k >= version) || self.adopt_carried(board, version).await {
                continue;
            }
            if channel.wanted.load(Ordering::Acquire) != 0 {
                self.refresh(board, version); // a refresh under way takes it on
                continue;
            }
            match behind.iter_mut().find(|(b, _)| *b == board) {
                Some((_, wanted)) => *wanted = (*wanted).max(version),
                None => behind.push((board, version)),
            }
        }
        for chunk in behind.chunks(CATCH_UP_CHUNK) {
            let boards: Vec<Uuid> = chunk.iter().map(|(board, _)| *board).collect();
            match self.store.board_states(&boards).await {
                Ok(states) => {
                    for state in states {
                        let channel = self.hub.channel(state.board);
                        let known = channel.state.borrow().clone();
                        match self.with_lesson(state, known.as_deref()).await {
                            Ok((state, lesson)) => self.hub.publish(state, lesson),
                            Err(e) => tracing::warn!(error = %e, "cannot read a board's lesson"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read board states"),
            }
            for &(board, version) in chunk {
                let channel = self.hub.channel(board);
                let known = channel.state.borrow().as_ref().map(|s| s.state.version);
                if known.is_none_or(|k| k < version) {
                    self.refresh(board, version);
                }
            }
        }
    }

    /// Keeps the state another node stored as `version` of `board`, as its event carried it.
    fn carry(&self, board: Uuid, version: i64, stored: Arc<str>) {
        let mut carried = self.carried.lock();
        if carried.get(&board).is_some_and(|(v, _)| *v >= version) {
            return;
        }
        if carried.len() >= CARRIED_BOARDS && !carried.contains_key(&board) {
            // Old news: every state held is one the stores will bring anyway.
            carried.clear();
        }
        carried.insert(board, (version, stored));
    }

    /// Publishes here the state of `board` another node's event carried, when it is at least
    /// `version` and newer than what this node holds; returns whether this node now holds
    /// `version` or newer. A state that does not read, or whose lesson revision this node's
    /// store does not have (it was made on the other side of a cut), is left to the store.
    async fn adopt_carried(&self, board: Uuid, version: i64) -> bool {
        let carried = self.carried.lock().get(&board).cloned();
        let Some((at, stored)) = carried.filter(|(at, _)| *at >= version) else {
            return false;
        };
        let channel = self.hub.channel(board);
        let known = channel.state.borrow().clone();
        if known.as_ref().is_some_and(|k| k.state.version >= at) {
            return true;
        }
        let Ok(mut state) = serde_json::from_str::<BoardState>(&stored) else {
            return false;
        };
        if state.board != board {
            return false;
        }
        state.version = at;
        match self.with_lesson(state, known.as_deref()).await {
            Ok((state, lesson)) => {
                self.hub.publish(state, lesson);
                true
            }
            Err(_) => false,
        }
    }

    /// Ends the feeds of followed pairings (of boards `which` picks) that no longer exist.
    pub(super) async fn recheck_pairings(&self, which: impl Fn(Uuid) -> bool) {
        for (account, board) in self.pairings.held() {
            if !which(board) {
                continue;
            }
            if let Err(StoreError::NotFound) = self.store.board_pairing(account, board).await {
                self.pairings.revoke(&(account, board));
            }
        }
    }

    /// Reads the board's state from the store and publishes it here, once the store has
    /// `version` (replication may bring it a little after the event that announced it: the
    /// read is repeated, at growing intervals, for a few seconds; past them the next
    /// catch-up finds it).
    fn refresh(self: &Arc<Self>, board: Uuid, version: i64) {
        let channel = self.hub.channel(board);
        let wanted = channel.wanted.fetch_max(version, Ordering::Relaxed);
        if wanted != 0 {
            return; // a refresh of this board is under way; it reads up to `version` too
        }
        let live = self.clone();
        tokio::spawn(async move {
            loop {
                let wanted = channel.wanted.load(Ordering::Acquire);
                match live.caught_up(board, wanted).await {
                    Ok(_) | Err(LiveError::Behind) => {}
                    Err(e) => tracing::warn!(%board, error = %e, "cannot read a board's state"),
                }
                let done =
                    channel
                        .wanted
                        .compare_exchange(wanted, 0, Ordering::AcqRel, Ordering::Acquire);
                if done.is_ok() {
                    break;
                }
                // A newer version was announced meanwhile.
            }
        });
    }

    /// The board's state once this node has `version` or a newer one, reading the store
    /// again at growing intervals while replication brings it; [`LiveError::Behind`] when it
    /// has not arrived within [`REPLICATION_PATIENCE`].
    pub(super) async fn caught_up(
        &self,
        board: Uuid,
        version: i64,
    ) -> Result<Arc<Snapshot>, LiveError> {
        let channel = self.hub.channel(board);
        let started = Instant::now();
        let mut wait = Duration::from_millis(2);
        loop {
            let known = channel.state.borrow().clone();
            if let Some(known) = known.as_ref().filter(|k| k.state.version >= version) {
                return Ok(known.clone());
            }
            if self.adopt_carried(board, version).await {
                continue;
            }
            let (state, lesson) = self.load(board, known.as_deref()).await?;
            self.hub.publish(state, lesson);
            let published = channel.state.borrow().clone();
            if let Some(now) = published.filter(|p| p.state.version >= version) {
                return Ok(now);
            }
            if started.elapsed() >= REPLICATION_PATIENCE {
                return Err(LiveError::Behind);
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }

    /// Compares the boards whose state this node holds with the store and refreshes those
    /// that changed elsewhere: the slow path that keeps boards right when events are lost
    /// (and the next command here from applying to a state another node has moved on from).
    pub async fn catch_up(self: &Arc<Self>) -> Result<(), LiveError> {
        let followed: Vec<(Uuid, i64)> = self
            .hub
            .channels()
            .into_iter()
            .filter_map(|(board, c)| Some((board, c.state.borrow().as_ref()?.state.version)))
            .collect();
        let mut newer = Vec::new();
        for chunk in followed.chunks(CATCH_UP_CHUNK) {
            let boards: Vec<Uuid> = chunk.iter().map(|(board, _)| *board).collect();
            let stored = self.store.board_state_versions(&boards).await?;
            for (board, known) in chunk {
                if let Some(version) = stored.get(board).filter(|v| **v > *known) {
                    newer.push((*board, *version));
                }
            }
        }
        self.follow_states(&newer).await;
        Ok(())
    }

    /// Repeats this node's pages of each board to the other nodes, and forgets what a node
    /// silent for three rounds said: call every [`PRESENCE_REFRESH`].
    pub fn repeat_presence(&self) {
        for (board, channel) in self.hub.channels() {
            let local = channel.local();
            if local.online > 0 {
                self.tell_presence(board, Some(local));
            }
            channel.forget_silent(PRESENCE_REFRESH * 3);
        }
    }

    /// This node is one of `nodes` alive: it takes that share of the global pairing-guess
    /// budget, so the code space is as well protected with N nodes as with one.
    pub fn share_guesses(&self, nodes: u32) {
        self.limits.share_guesses(nodes);
    }
}

/// How long a refresh waits for replication to bring a state another node announced.
const REPLICATION_PATIENCE: Duration = Duration::from_secs(2);
/// Boards compared with the store per query when catching up.
const CATCH_UP_CHUNK: usize = 1000;
