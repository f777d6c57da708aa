-- Metadata filters: `eq`, `in` and `contains` compile to containment (`metadata @> …`), which this
-- index serves; jsonb_path_ops is the smaller, faster GIN operator class for @>.
CREATE INDEX hs_blocks_metadata ON hs_blocks USING gin (metadata jsonb_path_ops);
-- scroll pages through a collection in code-point order of ids (the same on every backend and
-- whatever the database's collation), by keyset on this index.
CREATE INDEX hs_blocks_collection_id_c ON hs_blocks (collection, id COLLATE "C");
