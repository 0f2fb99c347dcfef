-- Search keys for finding people and organisations by name. SQLite's LOWER() folds
-- ASCII only, so the key is made in Rust (store::search_key: Unicode lowercase, marks
-- removed, đ -> d, spaces collapsed) and stored; rows written before this migration get
-- theirs when the registry starts (Store::backfill_search_keys).
ALTER TABLE people ADD COLUMN search_key TEXT;
ALTER TABLE organisations ADD COLUMN search_key TEXT;
CREATE INDEX people_search_key ON people (search_key);
CREATE INDEX organisations_search_key ON organisations (search_key);
