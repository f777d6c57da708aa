-- The change log (hs_changes) is pruned by `compact` jobs once every HVS process has a snapshot
-- past the rows removed. pruned_through is the highest lsn removed: a reader positioned before it
-- cannot catch up from the log (rows it needs are gone) and rebuilds from the tables instead.
CREATE TABLE hs_change_horizon (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  pruned_through bigint NOT NULL
);
