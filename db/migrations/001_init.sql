-- hypersync NVM schema, version 1.
-- Collections and their blocks; each collection's vectors live in a table of their own,
-- hs_vec_<collection id>, created with the collection so that its column is vector(dim).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE hs_collections (
  id         serial UNIQUE,
  name       text PRIMARY KEY,
  dim        integer NOT NULL CHECK (dim BETWEEN 1 AND 4096),
  metric     text NOT NULL CHECK (metric IN ('cosine', 'ip', 'l2')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hs_blocks (
  collection text NOT NULL REFERENCES hs_collections (name) ON DELETE CASCADE,
  id         text NOT NULL,
  name       text,
  content    text,
  metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
  version    bigint NOT NULL,
  PRIMARY KEY (collection, id)
);

-- The change log: one row per change, written in the transaction of the change.
CREATE TABLE hs_changes (
  lsn        bigserial PRIMARY KEY,
  collection text NOT NULL,
  block_id   text NOT NULL,
  op         text NOT NULL CHECK (op IN ('upsert', 'delete')),
  version    bigint,
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hs_changes_collection_lsn ON hs_changes (collection, lsn);
