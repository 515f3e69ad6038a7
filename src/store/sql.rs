//! The fragments that decide which row of a fact is current, written once in the dialect
//! SQLite and PostgreSQL both speak (`NOT x` and `FALSE` for flags SQLite stores as 0/1),
//! for the statements of `queries/`. A fragment that takes a value names the `$n` it is
//! bound as.

/// The newest name row of account `a` joined as `p`.
pub const CURRENT_PROFILE: &str = "JOIN account_name p ON p.account_id = a.id AND NOT EXISTS (
    SELECT 1 FROM account_name n WHERE n.account_id = p.account_id
    AND (n.version, n.id) > (p.version, p.id))";

/// Whether an administrator disabled account `a` (its newest `account_access` row; false if
/// none).
macro_rules! disabled {
    () => {
        "COALESCE((SELECT x.disabled FROM account_access x WHERE x.account_id = a.id
                   ORDER BY x.version DESC, x.id DESC LIMIT 1), FALSE)"
    };
}

/// Whether account `a` waits for approval (its newest `account_pending` row; false if none).
macro_rules! pending {
    () => {
        "COALESCE((SELECT x.pending FROM account_pending x WHERE x.account_id = a.id
                   ORDER BY x.version DESC, x.id DESC LIMIT 1), FALSE)"
    };
}

/// The columns an account is read from, for account `a` joined with [`CURRENT_PROFILE`].
pub const ACCOUNT_COLUMNS: &str = concat!(
    "a.id, a.email, a.version, p.name, ",
    disabled!(),
    " AS disabled, ",
    pending!(),
    " AS pending"
);

/// Account `a` still waits for approval.
pub const WAITING_FOR_APPROVAL: &str = pending!();

/// Every row an account has before it is approved (table, column naming the account): a
/// purge of accounts never approved deletes these, the account itself last.
pub const UNAPPROVED_ACCOUNT_ROWS: [(&str, &str); 6] = [
    ("account_name", "account_id"),
    ("account_access", "account_id"),
    ("account_pending", "account_id"),
    ("account_credential", "account_id"),
    ("session", "account_id"),
    ("account", "id"),
];

/// `a` is the earliest registration of its address, and so owns it.
pub const OWNS_EMAIL: &str = "NOT EXISTS (SELECT 1 FROM account o
    WHERE o.email_norm = a.email_norm AND (o.version, o.id) < (a.version, a.id))";

/// Session `s` (of account `a`) is live at the time bound as `$2`: unexpired, not revoked, not older
/// than the account's newest password, the account enabled and approved. (Add
/// [`OWNS_EMAIL`]: the account must also own its address.)
pub const LIVE_SESSION: &str = concat!(
    "s.expires_at > $2 AND NOT ",
    disabled!(),
    " AND NOT ",
    pending!(),
    "
    AND NOT EXISTS (SELECT 1 FROM session_revocation x
                    WHERE x.session_id = COALESCE(s.family_id, s.id))
    AND NOT EXISTS (SELECT 1 FROM account_credential c
                    WHERE c.account_id = s.account_id AND c.version > s.version)"
);

/// The newest revision of lesson `l` joined as `r`.
pub const CURRENT_REVISION: &str = "JOIN lesson_revision r ON r.lesson_id = l.id AND NOT EXISTS (
    SELECT 1 FROM lesson_revision n WHERE n.lesson_id = r.lesson_id
    AND (n.version, n.id) > (r.version, r.id))";

/// Share row `s` is the newest of its fact (lesson, account).
pub const NEWEST_SHARE: &str = "NOT EXISTS (SELECT 1 FROM lesson_share n
    WHERE n.lesson_id = s.lesson_id AND n.account_id = s.account_id
    AND (n.version, n.id) > (s.version, s.id))";

/// Listing row `s` is the newest of its lesson's.
pub const NEWEST_LISTING: &str = "NOT EXISTS (SELECT 1 FROM lesson_listing n
    WHERE n.lesson_id = s.lesson_id AND (n.version, n.id) > (s.version, s.id))";

/// Columns of a lesson with its current revision.
pub const LESSON_COLUMNS: &str = "l.id, l.version AS created, r.id AS revision, r.version,
    r.title, r.slides, r.folder, r.theme, r.deleted";

/// The newest pairing row of (board `b`, account) joined as `bp`, not removed, and made by
/// the earliest use of its code, of a board not revoked: when two nodes each accepted the same code before hearing of
/// the other, only the first use pairs, on every node.
pub const CURRENT_PAIRING: &str = "NOT EXISTS (SELECT 1 FROM board_pairing n
    WHERE n.board_id = bp.board_id AND n.account_id = bp.account_id
    AND (n.version, n.id) > (bp.version, bp.id)) AND NOT bp.removed
    AND NOT EXISTS (SELECT 1 FROM board_revocation r WHERE r.board_id = bp.board_id)
    AND (bp.code_use_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM board_code_use mine
        JOIN board_code_use other ON other.code_id = mine.code_id
        WHERE mine.id = bp.code_use_id AND (other.version, other.id) < (mine.version, mine.id)))";

/// The columns a pairing is read from, for `bp` of [`CURRENT_PAIRING`]: its board, the newest
/// name the teacher gave it, and when it was paired.
pub const PAIRING_COLUMNS: &str = "bp.board_id, bp.version,
    (SELECT bn.name FROM board_name bn WHERE bn.board_id = bp.board_id
     AND bn.account_id = bp.account_id ORDER BY bn.version DESC, bn.id DESC LIMIT 1) AS name";

/// Board `b`'s identity was not revoked.
pub const NOT_REVOKED: &str =
    "NOT EXISTS (SELECT 1 FROM board_revocation r WHERE r.board_id = b.id)";

/// Board `b` was never paired and holds no pairing code: a board page shown anywhere keeps a
/// current code, and expired codes are purged an hour after they expire.
pub const NEVER_PAIRED: &str = "NOT EXISTS (SELECT 1 FROM board_pairing p WHERE p.board_id = b.id)
    AND NOT EXISTS (SELECT 1 FROM board_code c WHERE c.board_id = b.id)";

/// Code row `c` is usable at the time bound as `$2`: unexpired, unused, its board's newest code, and no newer board
/// drew the same digits.
pub const USABLE_CODE: &str = "c.expires_at > $2
    AND NOT EXISTS (SELECT 1 FROM board_code_use u WHERE u.code_id = c.id)
    AND NOT EXISTS (SELECT 1 FROM board_code n WHERE n.board_id = c.board_id
        AND (n.version, n.id) > (c.version, c.id))
    AND NOT EXISTS (SELECT 1 FROM board_code o WHERE o.code = c.code
        AND (o.version, o.id) > (c.version, c.id))";

/// The stored media with the SHA-256 bound as `$1` (`media_id`, `media_type`, `size`,
/// `chunks`): the lowest `(version, id)` of its `media_file` rows, else the row an earlier
/// release stored keyed by the SHA-256 in `media`.
pub const MEDIA_ROW: &str = "SELECT media_id, media_type, size, CAST(chunks AS BIGINT) AS chunks
    FROM (
    SELECT media_id, media_type, size, chunks, 0 AS legacy, version, CAST(id AS TEXT) AS row_id
    FROM media_file WHERE media_id = $1
    UNION ALL
    SELECT id, media_type, size, chunks, 1, version, id FROM media WHERE id = $1
) m ORDER BY legacy, version, row_id LIMIT 1";

/// The bytes of chunk `n` of a media, bound as the SHA-256 (`$1`) and `n` (`$2`): as [`MEDIA_ROW`], the
/// lowest `(version, id)` of its `media_file_chunk` rows (every upload of one file stores the
/// same bytes). The row is chosen from the index alone, so no chunk but the one served is read
/// (sorting the chunks themselves cut serving to a quarter).
pub const MEDIA_CHUNK_ROW: &str = "SELECT bytes FROM media_file_chunk WHERE id =
    (SELECT id FROM media_file_chunk WHERE media_id = $1 AND n = $2 ORDER BY version, id LIMIT 1)";

/// The bytes of a chunk an earlier release stored in `media_chunk`, bound as
/// `<SHA-256>/<n>` (`$1`): read where [`MEDIA_CHUNK_ROW`] finds none.
pub const MEDIA_CHUNK_BY_CONTENT: &str = "SELECT bytes FROM media_chunk WHERE id = $1";

/// The tables of what belongs to a media (by its SHA-256 in `media_id`), purged once no
/// stored media has that SHA-256.
pub const MEDIA_PARTS: [&str; 4] = [
    "media_upload",
    "media_chunk",
    "media_file_chunk",
    "media_preview",
];
