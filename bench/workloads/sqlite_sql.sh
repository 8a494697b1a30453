# sqlite_sql.sh - the SQL scripts of the sqlite3 workloads, sourced by
# bench/preload_bench.sh and bench/rss_bench.sh, so that both measure the
# same workloads (sqlite3 -batch DB <FILE).

sqlite_sql() { # sqlite_sql FILE: write the SQL script to FILE
	# ~40k single-row INSERTs (parsed one by one) into an indexed table in
	# one transaction, updates, a delete, and queries with GROUP BY, a
	# self-join on a text column (automatic index), ORDER BY on text.
	awk 'BEGIN {
		srand(7)
		print "PRAGMA journal_mode=MEMORY;"
		print "PRAGMA cache_size=-16000;"
		print "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, note TEXT);"
		print "CREATE INDEX item_grp ON item(grp, name);"
		print "BEGIN;"
		split("ka lo mi ne su ta ri po an el or ix qu zh ba de", syl, " ")
		for (i = 1; i <= 40000; i++) {
			name = ""; n = 1 + int(rand() * 4)
			for (j = 0; j < n; j++) name = name syl[1 + int(rand() * 16)]
			note = ""; n = int(rand() * 12)
			for (j = 0; j < n; j++) note = note syl[1 + int(rand() * 16)] " "
			printf "INSERT INTO item(name, grp, val, note) VALUES(%c%s%c, %d, %.3f, %c%s%c);\n", 39, name, 39, int(rand() * 50), rand() * 1000, 39, note, 39
		}
		print "COMMIT;"
		print "UPDATE item SET note = note || name WHERE id % 7 = 0;"
		print "DELETE FROM item WHERE grp = 3;"
		print "SELECT grp, count(*), sum(length(name)), printf(\"%.3f\", total(val)) FROM item GROUP BY grp ORDER BY grp;"
		print "SELECT count(*), sum(length(a.note)) FROM item a JOIN item b ON a.note = b.note AND a.id < b.id WHERE a.grp < 10;"
		print "SELECT name, count(*) AS c FROM item GROUP BY name ORDER BY c DESC, name LIMIT 10;"
		print "SELECT id, note FROM item ORDER BY note DESC, id LIMIT 5;"
		print "SELECT length(group_concat(name || note, \",\")) FROM item;"
	}' >"$1"
}
sqlite_blob_sql() { # sqlite_blob_sql FILE: write the SQL script to FILE
	# 4000 single-row INSERTs whose values sqlite builds itself: a 4 KiB
	# text and a 4 KiB blob per row (rows spill to overflow pages), then
	# everything read back, a third of the rows rewritten, a fifth deleted,
	# and a sort of all rows with their payload (temp_store=MEMORY: the
	# sorter's memory is malloc'd).
	awk 'BEGIN {
		n = 4000
		print "PRAGMA journal_mode=MEMORY;"
		print "PRAGMA temp_store=MEMORY;"
		print "CREATE TABLE doc(id INTEGER PRIMARY KEY, name TEXT, body TEXT, data BLOB);"
		print "BEGIN;"
		for (i = 1; i <= n; i++)
			printf "INSERT INTO doc(name, body, data) VALUES(%cdoc-%d%c, printf(%c%%-4096s%c, %cbody %d %c || hex(%d * 2654435761)), cast(printf(%c%%4096d%c, %d) AS BLOB));\n", 39, (i * 7919) % n, 39, 39, 39, 39, i, 39, i, 39, 39, (i * 40503) % 1000003
		print "COMMIT;"
		print "SELECT count(*), sum(length(body)), sum(length(data)) FROM doc;"
		print "SELECT total(unicode(substr(body, 6, 1))), total(length(hex(data))) FROM doc;"
		print "UPDATE doc SET body = printf(\"%-4096s\", \"updated \" || id), data = cast(printf(\"%4096d\", id * 3) AS BLOB) WHERE id % 3 = 0;"
		print "DELETE FROM doc WHERE id % 5 = 0;"
		print "SELECT id, substr(body, 1, 24), length(data) FROM doc ORDER BY body DESC LIMIT 5;"
		print "SELECT count(*), sum(length(body)) FROM (SELECT body, data FROM doc ORDER BY name, id);"
		print "SELECT name, length(group_concat(substr(body, 1, 64), \",\")) FROM doc GROUP BY substr(name, 1, 5) ORDER BY 1 LIMIT 3;"
	}' >"$1"
}
