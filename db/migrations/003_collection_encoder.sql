-- A collection may name the encoder that turns its texts into vectors, with the version it was
-- created with: vectors from another encoder (or another version of it) are never mixed in.
ALTER TABLE hs_collections ADD COLUMN encoder text;
ALTER TABLE hs_collections ADD COLUMN encoder_version text;
