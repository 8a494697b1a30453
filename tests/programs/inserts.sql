-- inserts.sql - a few thousand inserts, an index and queries, for
-- sqlite3 under the drop-in. Deterministic: no random(), no dates.
PRAGMA journal_mode = DELETE;
CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, score REAL);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO item (name, grp, score)
  SELECT printf('item-%05d-%s', i, substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26, 1 + i % 7)),
         i % 37, (i * 7919 % 1000) / 10.0
  FROM n;
COMMIT;
CREATE INDEX item_grp ON item (grp, score);
UPDATE item SET score = score * 2 WHERE grp % 5 = 0;
DELETE FROM item WHERE id % 11 = 0;
SELECT count(*), sum(score), min(name), max(name) FROM item;
SELECT grp, count(*), round(avg(score), 3), group_concat(id % 10, '') FROM item
  GROUP BY grp ORDER BY grp LIMIT 12;
SELECT name FROM item WHERE grp = 7 ORDER BY score DESC, id LIMIT 5;
VACUUM;
SELECT count(*) FROM item WHERE name LIKE '%abc%';
