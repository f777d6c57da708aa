-- Each block remembers the lsn of its last change, so that a collection can be streamed in lsn
-- order (rebuilds) by keyset pagination, on any backend, without server-side cursors.
ALTER TABLE hs_blocks ADD COLUMN lsn bigint NOT NULL DEFAULT 0;
CREATE INDEX hs_blocks_collection_lsn ON hs_blocks (collection, lsn, id);
