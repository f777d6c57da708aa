-- The newest lsn never moves back. Dropping a collection deletes its change-log rows; when those
-- were the newest, max(lsn) fell below the position of every other collection's snapshot, which
-- the next start then judged ahead of the NVM and rebuilt from the tables. A drop records the
-- newest lsn it removes here, and lastLsn counts it.
CREATE TABLE hs_lsn_floor (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  lsn bigint NOT NULL
);
