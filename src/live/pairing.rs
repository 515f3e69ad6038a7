//! Pairing: a board's identity and codes, who controls it, and a teacher pairing, listing,
//! renaming and unpairing boards. Part of [`Live`]; it knows nothing of HTTP.

use std::net::IpAddr;

use uuid::Uuid;

use super::*;

impl Live {
    /// A new board identity and its first pairing code.
    pub async fn claim(&self, client: IpAddr) -> Result<Claimed, LiveError> {
        self.limits.claim(client)?;
        let token = token::generate();
        let board = self.store.create_board(&token::hash(&token)).await?;
        let code = self.issue_code(board).await?;
        Ok(Claimed { board, token, code })
    }

    /// The board a board token belongs to.
    pub async fn board_for_token(&self, token: &str) -> Result<Option<Uuid>, LiveError> {
        Ok(self.store.board_by_token(&token::hash(token)).await?)
    }

    /// A board asks for a fresh code (its page's "new code", or a script): budgeted per board
    /// and per address, so no board can churn through the code space.
    pub async fn request_code(&self, board: Uuid, client: IpAddr) -> Result<ActiveCode, LiveError> {
        self.limits.code(board, client)?;
        self.issue_code(board).await
    }

    /// One message from a teacher (by account) or a board, from any connection or transport.
    pub fn message_budget(&self, sender: Uuid) -> Result<(), LiveError> {
        Ok(self.limits.message(sender)?)
    }

    /// Gives the board a fresh code; the old one stops working.
    pub async fn issue_code(&self, board: Uuid) -> Result<ActiveCode, LiveError> {
        let code = self.draw_code(board).await?;
        self.pairing_changed(board);
        Ok(code)
    }

    /// Stores a fresh random code for the board, never one that another waiting board shows:
    /// draws on this node take turns, and digits in use are drawn again. (Two nodes drawing
    /// the same digits at once is resolved when reading: the newer row wins, and the other
    /// board is told to draw again.)
    async fn draw_code(&self, board: Uuid) -> Result<ActiveCode, LiveError> {
        let _one_at_a_time = self.drawing.lock().await;
        let mut digits = PairingCode::generate();
        let mut holder = self.store.resolve_code(&digits, now_ms()).await?;
        for _ in 1..CODE_DRAWS {
            if holder.as_ref().is_none_or(|h| h.board == board) {
                break;
            }
            digits = PairingCode::generate();
            holder = self.store.resolve_code(&digits, now_ms()).await?;
        }
        let expires = now_ms() + millis_of(self.code_ttl);
        let code = self.store.issue_code(board, &digits, expires).await?;
        if let Some(other) = holder.filter(|h| h.board != board) {
            self.pairing_changed(other.board);
        }
        Ok(code)
    }

    /// What a board shows while idle: who controls it and the code to pair it. A board that
    /// is not presenting and has no usable code (expired, used, or lost to a newer board
    /// with the same digits) gets a fresh one.
    pub async fn pairing(&self, board: Uuid) -> Result<Pairing, LiveError> {
        if self.store.board_revoked(board).await? {
            // Revoked, perhaps on another node whose word did not reach this one: the
            // board's pages here close.
            self.boards.revoke(&board);
            return Err(LiveError::NotFound);
        }
        let teachers = self.store.board_teachers(board).await?;
        let state = self.state(board).await?;
        let presenting = state.state.is_presenting();
        let code = match (presenting, self.store.current_code(board, now_ms()).await?) {
            (true, _) => None,
            (false, Some(code)) => Some(code),
            (false, None) => Some(self.draw_code(board).await?),
        };
        Ok(Pairing {
            paired: !teachers.is_empty(),
            teachers: match state.state.name_hidden {
                true => Vec::new(),
                false => teachers,
            },
            code,
        })
    }

    /// [`Live::pairing`] as the protocol's `pairing` message, made once per change of the
    /// board's pairing and shared by all its pages, with when the code in it expires.
    pub async fn pairing_message(&self, board: Uuid) -> Result<(Arc<str>, Option<i64>), LiveError> {
        let channel = self.hub.channel(board);
        let mut cached = channel.pairing_message.lock().await;
        let current = *channel.pairing.borrow();
        if let Some((made_at, valid_until, message)) = cached.as_ref() {
            if *made_at == current && *valid_until > now_ms() {
                return Ok((message.clone(), expiry(*valid_until)));
            }
        }
        let pairing = self.pairing(board).await?;
        let valid_until = pairing.code.as_ref().map_or(i64::MAX, |c| c.expires_at_ms);
        let message: Arc<str> = ServerMsg::Pairing {
            fingerprint: fingerprint(board),
            paired: pairing.paired,
            paired_with: pairing.teachers,
            code: pairing.code.map(|c| CodeInfo {
                code: c.code,
                expires_at: c.expires_at_ms,
            }),
        }
        .to_json()
        .into();
        *cached = Some((current, valid_until, message.clone()));
        Ok((message, expiry(valid_until)))
    }

    /// Pairs the board showing `code` with the teacher, under `name`.
    pub async fn pair(
        &self,
        account: &Account,
        code: &str,
        name: &str,
        client: IpAddr,
    ) -> Result<BoardSummary, LiveError> {
        let mut errors = ValidationError::default();
        let code = PairingCode::parse(code)
            .map_err(|m| errors.add("code", m))
            .ok();
        let name = parse_name(name).map_err(|m| errors.add("name", m)).ok();
        let (Some(code), Some(name)) = (code, name) else {
            return Err(errors.into());
        };
        let guess = self.limits.guess(account.id, client)?;
        let hit = match self.waiting_board(&code).await {
            Ok(Some(hit)) => {
                self.limits.give_back(guess);
                hit
            }
            Ok(None) => {
                self.limits.guessed_wrong(guess);
                tracing::warn!(account = %account.id, client = %client, "pairing code not found");
                return Err(LiveError::UnknownCode);
            }
            Err(e) => {
                self.limits.give_back(guess);
                return Err(e);
            }
        };
        let pairing = self
            .store
            .pair_board(account.id, &hit, &name)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => LiveError::UnknownCode,
                other => other.into(),
            })?;
        self.pairings.restore(&(account.id, hit.board));
        // The spent code is gone; the board shows a fresh one for the next teacher.
        self.issue_code(hit.board).await?;
        self.summary(pairing).await
    }

    /// The usable code with these digits, if a board that is not presenting shows it.
    async fn waiting_board(&self, code: &str) -> Result<Option<ActiveCode>, LiveError> {
        match self.store.resolve_code(code, now_ms()).await? {
            Some(hit) if !self.state(hit.board).await?.state.is_presenting() => Ok(Some(hit)),
            _ => Ok(None),
        }
    }

    pub async fn boards(&self, account: &Account) -> Result<Vec<BoardSummary>, LiveError> {
        let mut out = Vec::new();
        for pairing in self.store.boards_of(account.id).await? {
            out.push(self.summary(pairing).await?);
        }
        Ok(out)
    }

    pub async fn rename(
        &self,
        account: &Account,
        board: Uuid,
        name: &str,
    ) -> Result<BoardSummary, LiveError> {
        let name = parse_name(name).map_err(|m| ValidationError::single("name", m))?;
        let pairing = self.store.rename_board(account.id, board, &name).await?;
        self.summary(pairing).await
    }

    pub async fn unpair(&self, account: &Account, board: Uuid) -> Result<(), LiveError> {
        self.store.unpair_board(account.id, board).await?;
        self.authorized.lock().remove(&(account.id, board));
        self.pairings.revoke(&(account.id, board));
        self.bus.publish(Event::Unpaired {
            board,
            account: account.id,
        });
        self.pairing_changed(board);
        Ok(())
    }

    /// Ends the board's identity, by a teacher paired with it: its pages close (here at once,
    /// on other nodes when they hear of it) and claim a new identity, its token opens nothing,
    /// and every teacher's pairing with it ends.
    pub async fn revoke(&self, account: &Account, board: Uuid) -> Result<(), LiveError> {
        self.store.revoke_board(account.id, board).await?;
        self.boards.revoke(&board);
        self.authorized.lock().retain(|(_, b), _| *b != board);
        self.recheck_pairings(|b| b == board).await;
        self.bus.publish(Event::Revoked { board });
        self.pairing_changed(board);
        Ok(())
    }

    /// The board's teachers or code changed: its pages here re-read them, and so do the other
    /// nodes', which also forget what they trusted of its pairings.
    pub(super) fn pairing_changed(&self, board: Uuid) {
        self.hub.pairing_changed(board);
        self.bus.publish(Event::Pairing { board });
    }

    async fn summary(&self, pairing: BoardPairing) -> Result<BoardSummary, LiveError> {
        let state = self.state(pairing.board).await?;
        Ok(BoardSummary {
            presence: self.hub.presence(pairing.board),
            state_version: (state.state.version > 0).then_some(state.state.version),
            pairing,
        })
    }
}

/// When a cached pairing message's code expires (`i64::MAX`: it shows none).
fn expiry(valid_until: i64) -> Option<i64> {
    (valid_until != i64::MAX).then_some(valid_until)
}
