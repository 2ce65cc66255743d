-- The bytes of small attachments (at most 64 KiB: `blobs::INLINE_MAX`),
-- kept in the database instead of a file each. They are written in the same
-- transaction as the row that points at them, so a row never points at bytes
-- that are not there, and an attachment costs no file creation (an inode, a
-- directory entry, an fsync). Larger attachments stay files in the data
-- directory's blob store. `sha256` is the SHA-256 of `bytes`, as in the
-- rows that reference it (attachments, session_files, launch_globals).
CREATE TABLE small_blobs (
    sha256 TEXT PRIMARY KEY,
    bytes BLOB NOT NULL
);
