# report.awk - the tables of bench/preload_bench.sh (POSIX awk; mawk ok).
#
# Input, from the script:
#   H key text...                header lines
#   A alloc text...              column descriptions ("n/a: why" if absent)
#   W workload note...           workloads that ran
#   N workload note...           workloads that did not run
#   REF workload alloc sig       reference output of a workload
#   FAIL workload alloc rep status message...
#   MISMATCH workload alloc rep diff...
#   TOP workload alloc           the column's tool saw only the top process
#   R                            then one line per run:
#   workload alloc rep wall_s maxrss_kib cpu_s status signature
# Variables: md (1: Markdown), allocs (columns, in order), peers, tools
# (the report-tool columns, which get a table of their own).

function fmt_t(v) { return v >= 100 ? sprintf("%.1f", v) : (v >= 10 ? sprintf("%.2f", v) : sprintf("%.3f", v)) }
function fmt_m(v) { return v >= 100 ? sprintf("%.0f", v) : sprintf("%.1f", v) }
function fmt_r(v) { return sprintf("%.2f", v) }

# Median of the n values in the global array v[1..n] (insertion sort).
function median(n,    i, j, x) {
	for (i = 2; i <= n; i++) {
		x = v[i]
		for (j = i - 1; j >= 1 && v[j] > x; j--)
			v[j + 1] = v[j]
		v[j + 1] = x
	}
	if (n % 2)
		return v[(n + 1) / 2]
	return (v[n / 2] + v[n / 2 + 1]) / 2
}

# Table output: rows of cells, right-aligned (left for the first
# column), or Markdown.
function row_reset() { nc = 0 }
function cell(s) { cells[++nc] = s }
function row_emit(    i, line) {
	nrows++
	rowlen[nrows] = nc
	for (i = 1; i <= nc; i++) {
		tab[nrows, i] = cells[i]
		if (length(cells[i]) > width[i])
			width[i] = length(cells[i])
	}
	nc = 0
}
function table_flush(    r, i, line, sep) {
	for (r = 1; r <= nrows; r++) {
		if (md) {
			line = "|"
			for (i = 1; i <= rowlen[r]; i++)
				line = line " " tab[r, i] " |"
			print line
			if (r == 1) {
				sep = "|"
				for (i = 1; i <= rowlen[r]; i++)
					sep = sep (i == 1 ? "---|" : "---:|")
				print sep
			}
		} else {
			line = sprintf("%-" width[1] "s", tab[r, 1])
			for (i = 2; i <= rowlen[r]; i++)
				line = line sprintf("  %" width[i] "s", tab[r, i])
			sub(/ +$/, "", line)
			print line
		}
	}
	nrows = 0
	for (i in width)
		delete width[i]
	print ""
}
function heading(s) {
	if (md)
		print "### " s "\n"
	else
		print s
}
function para(s) { print s }
function item(s) { print (md ? "* " : "  ") s }

# Geometric mean accumulation.
function gm_add(key, x) { if (x > 0) { gsum[key] += log(x); gn[key]++; if (x > gmax[key]) gmax[key] = x } }
function gm(key) { return gn[key] ? exp(gsum[key] / gn[key]) : -1 }

# Cell text for (w, a) of metric m ("t", "m", "c").
function celltext(w, a, m,    x, s) {
	if (!(a in avail))
		return "n/a"
	if (!((w, a) in nok)) {
		if ((w, a) in timedout)
			return "timeout"
		if ((w, a) in failed)
			return "fail"
		return "-"
	}
	x = med[w, a, m]
	s = (m == "t" || m == "c") ? fmt_t(x) : fmt_m(x)
	if ((w, a) in mismatch)
		s = s "!"
	else if ((w, a) in failed || (w, a) in timedout)
		s = s "*"
	if ((w, a) in toponly)
		s = s "~"
	return s
}
function has(w, a) { return (a in avail) && ((w, a) in nok) && !((w, a) in mismatch) }
# A cell that may enter a column's geometric mean.
function hasfull(w, a) { return has(w, a) && !((w, a) in toponly) }

BEGIN {
	na = split(allocs, A, " ")
	np = split(peers, P, " ")
	for (i = 1; i <= np; i++)
		ispeer[P[i]] = 1
	nt = split(tools, TL, " ")
	for (i = 1; i <= nt; i++)
		istool[TL[i]] = 1
	inruns = 0
}

inruns {
	w = $1; a = $2
	if (!(w in seenw)) { seenw[w] = 1 }
	if ($7 == "ok") {
		k = ++nok[w, a]
		val[w, a, "t", k] = $4
		val[w, a, "m", k] = $5 / 1024
		val[w, a, "c", k] = $6
		byrep[w, a, "t", $3] = $4
		byrep[w, a, "m", $3] = $5 / 1024
		if ($3 > maxrep) maxrep = $3
	} else if ($7 == "timeout") {
		timedout[w, a] = 1
	} else {
		failed[w, a] = 1
	}
	next
}
$1 == "H" { k = $2; $1 = ""; $2 = ""; sub(/^ +/, ""); hdr[k] = $0; next }
$1 == "A" {
	a = $2; $1 = ""; $2 = ""; sub(/^ +/, "")
	adesc[a] = $0
	if ($0 !~ /^n\/a/)
		avail[a] = 1
	next
}
$1 == "W" { w = $2; W[++nw] = w; $1 = ""; $2 = ""; sub(/^ +/, ""); wnote[w] = $0; next }
$1 == "N" { w = $2; $1 = ""; $2 = ""; sub(/^ +/, ""); skipped[++nskip] = w ": " $0; next }
$1 == "REF" { refalloc[$2] = $3; next }
$1 == "TOP" { toponly[$2, $3] = 1; next }
$1 == "FAIL" { w = $2; a = $3; r = $4; st = $5; $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, "");
	failnote[++nfail] = w " / " a " rep " r ": " st (length($0) ? ": " $0 : ""); next }
$1 == "MISMATCH" { w = $2; a = $3; mismatch[w, a] = 1; r = $4; $1 = $2 = $3 = $4 = ""; sub(/^ +/, "");
	mmnote[++nmm] = w " / " a " rep " r " differs from " refalloc[w] ": " $0; next }
$1 == "R" { inruns = 1; next }

END {
	# Medians and the noise figure.
	worst = -1
	for (wi = 1; wi <= nw; wi++) {
		w = W[wi]
		for (ai = 1; ai <= na; ai++) {
			a = A[ai]
			if (!((w, a) in nok))
				continue
			n = nok[w, a]
			for (mi = 1; mi <= 3; mi++) {
				m = substr("tmc", mi, 1)
				for (k = 1; k <= n; k++)
					v[k] = val[w, a, m, k]
				med[w, a, m] = median(n)
				if (m == "t" && n > 1 && med[w, a, m] > 0) {
					spread = (v[n] - v[1]) / med[w, a, m]
					if (spread > worst) { worst = spread; worstcell = w " / " a " (" n " runs)" }
				}
			}
		}
	}

	# Header.
	if (md)
		print "## slabnotify malloc drop-in vs. glibc, jemalloc, mimalloc, tcmalloc\n"
	else
		print "slabnotify malloc drop-in vs. glibc, jemalloc, mimalloc, tcmalloc (bench/preload_bench.sh)\n"
	item("date: " hdr["date"])
	item("machine: " hdr["machine"])
	item("command: " (md ? "`" hdr["command"] "`" : hdr["command"]))
	item("slabnotify: " hdr["slabnotify"] ", " hdr["glibc"])
	item("runs: " hdr["runs"])
	item("load: " hdr["load"])
	item("time: wall clock of the whole command (fork to wait4); RSS: ru_maxrss of wait4, i.e. the largest process of the command")
	item("columns:")
	for (ai = 1; ai <= na; ai++)
		print (md ? "    * " : "      ") sprintf("%-14s", A[ai]) " " adesc[A[ai]]
	for (wi = 1; wi <= nw; wi++)
		if (wnote[W[wi]] != "")
			item("workload " W[wi] ": " wnote[W[wi]])
	for (i = 1; i <= nskip; i++)
		item("not run: " skipped[i])
	print ""

	sn = ("slabnotify" in avail)
	gl = ("glibc" in avail)

	# Time.
	heading("Wall time, seconds (median; lower is better)")
	row_reset(); cell("workload")
	for (ai = 1; ai <= na; ai++) cell(A[ai])
	cell("sn/mi"); cell("sn/glibc"); row_emit()
	for (wi = 1; wi <= nw; wi++) {
		w = W[wi]
		row_reset(); cell(w)
		for (ai = 1; ai <= na; ai++) {
			a = A[ai]
			cell(celltext(w, a, "t"))
			if (a != "glibc" && hasfull(w, a) && has(w, "glibc"))
				gm_add("tg:" a, med[w, a, "t"] / med[w, "glibc", "t"])
		}
		if (has(w, "slabnotify") && has(w, "mimalloc")) {
			x = med[w, "slabnotify", "t"] / med[w, "mimalloc", "t"]; cell(fmt_r(x)); gm_add("sn/mi", x)
		} else cell("-")
		if (has(w, "slabnotify") && has(w, "glibc")) {
			x = med[w, "slabnotify", "t"] / med[w, "glibc", "t"]; cell(fmt_r(x)); gm_add("sn/glibc", x)
		} else cell("-")
		row_emit()
	}
	row_reset(); cell("geomean vs glibc")
	for (ai = 1; ai <= na; ai++) {
		a = A[ai]
		if (a == "glibc") cell(gl ? "1.00" : "-")
		else cell(gm("tg:" a) > 0 ? fmt_r(gm("tg:" a)) : "-")
	}
	cell(gm("sn/mi") > 0 ? fmt_r(gm("sn/mi")) : "-")
	cell(gm("sn/glibc") > 0 ? fmt_r(gm("sn/glibc")) : "-")
	row_emit()
	table_flush()
	if (worst >= 0)
		para("noise: the widest cell, (max - min) / median of its runs, is " sprintf("%.0f%%", worst * 100) " (" worstcell ")\n")

	# RSS.
	heading("Peak RSS, MiB (median; lower is better)")
	row_reset(); cell("workload")
	for (ai = 1; ai <= na; ai++) cell(A[ai])
	cell("best peer"); cell("sn/best"); cell("sn/glibc"); row_emit()
	for (wi = 1; wi <= nw; wi++) {
		w = W[wi]
		row_reset(); cell(w)
		best = -1; bestname = "-"
		for (ai = 1; ai <= na; ai++) {
			a = A[ai]
			cell(celltext(w, a, "m"))
			if (a != "glibc" && hasfull(w, a) && has(w, "glibc"))
				gm_add("mg:" a, med[w, a, "m"] / med[w, "glibc", "m"])
			if ((a in ispeer) && has(w, a) && (best < 0 || med[w, a, "m"] < best)) {
				best = med[w, a, "m"]; bestname = a
			}
		}
		cell(bestname)
		if (has(w, "slabnotify") && best > 0) {
			x = med[w, "slabnotify", "m"] / best; cell(fmt_r(x)); gm_add("sn/best", x)
		} else cell("-")
		if (has(w, "slabnotify") && has(w, "glibc") && med[w, "glibc", "m"] > 0) {
			x = med[w, "slabnotify", "m"] / med[w, "glibc", "m"]; cell(fmt_r(x)); gm_add("msn/glibc", x)
		} else cell("-")
		row_emit()
	}
	row_reset(); cell("geomean vs glibc")
	for (ai = 1; ai <= na; ai++) {
		a = A[ai]
		if (a == "glibc") cell(gl ? "1.00" : "-")
		else cell(gm("mg:" a) > 0 ? fmt_r(gm("mg:" a)) : "-")
	}
	cell("")
	cell(gm("sn/best") > 0 ? fmt_r(gm("sn/best")) : "-")
	cell(gm("msn/glibc") > 0 ? fmt_r(gm("msn/glibc")) : "-")
	row_emit()
	table_flush()
	para("sn/best = slabnotify / the smallest of " peers " for that workload; sn/glibc = slabnotify / glibc; the last row: geometric means over the workloads (for the allocator columns: of each column / glibc).\n")

	# CPU.
	heading("CPU time (user + system), seconds (median)")
	row_reset(); cell("workload")
	for (ai = 1; ai <= na; ai++) cell(A[ai])
	cell("sn/mi"); cell("sn/glibc"); row_emit()
	for (wi = 1; wi <= nw; wi++) {
		w = W[wi]
		row_reset(); cell(w)
		for (ai = 1; ai <= na; ai++)
			cell(celltext(w, A[ai], "c"))
		if (has(w, "slabnotify") && has(w, "mimalloc") && med[w, "mimalloc", "c"] > 0) {
			x = med[w, "slabnotify", "c"] / med[w, "mimalloc", "c"]; cell(fmt_r(x)); gm_add("csn/mi", x)
		} else cell("-")
		if (has(w, "slabnotify") && has(w, "glibc") && med[w, "glibc", "c"] > 0) {
			x = med[w, "slabnotify", "c"] / med[w, "glibc", "c"]; cell(fmt_r(x)); gm_add("csn/glibc", x)
		} else cell("-")
		row_emit()
	}
	row_reset(); cell("geomean")
	for (ai = 1; ai <= na; ai++) cell("")
	cell(gm("csn/mi") > 0 ? fmt_r(gm("csn/mi")) : "-")
	cell(gm("csn/glibc") > 0 ? fmt_r(gm("csn/glibc")) : "-")
	row_emit()
	table_flush()

	# Option costs.
	nopt = 0
	for (ai = 1; ai <= na; ai++)
		if (A[ai] ~ /^sn\+/)
			O[++nopt] = A[ai]
	if (nopt && sn) {
		heading("Cost of the slabnotify options: time and RSS relative to plain slabnotify")
		para("(median over the repetitions of the ratio to the slabnotify run of the same repetition)\n")
		row_reset(); cell("workload")
		for (i = 1; i <= nopt; i++) cell(O[i] " time")
		for (i = 1; i <= nopt; i++) cell(O[i] " RSS")
		row_emit()
		for (wi = 1; wi <= nw; wi++) {
			w = W[wi]
			row_reset(); cell(w)
			for (mi = 1; mi <= 2; mi++) {
				m = substr("tm", mi, 1)
				for (i = 1; i <= nopt; i++) {
					x = paired(w, O[i], "slabnotify", m)
					if (x > 0 && has(w, O[i]) && has(w, "slabnotify")) {
						cell(fmt_r(x)); gm_add("o" m O[i], x)
					} else cell(celltext(w, O[i], m) ~ /^[0-9]/ ? "-" : celltext(w, O[i], m))
				}
			}
			row_emit()
		}
		row_reset(); cell("geomean")
		for (mi = 1; mi <= 2; mi++)
			for (i = 1; i <= nopt; i++)
				cell(gm("o" substr("tm", mi, 1) O[i]) > 0 ? fmt_r(gm("o" substr("tm", mi, 1) O[i])) : "-")
		row_emit()
		table_flush()
	}

	# Report tools against slabnotify's own reports.
	ntc = 0
	for (ai = 1; ai <= na; ai++)
		if (A[ai] in istool)
			ntc++
	if (ntc && gl) {
		nrc = 0
		for (ai = 1; ai <= na; ai++)
			if (A[ai] ~ /^sn\+(leaks|leaks64|profile|profile512k)$/ || (A[ai] in istool))
				RC[++nrc] = A[ai]
		heading("Report tools and slabnotify's options: time and peak RSS relative to glibc")
		para("(median over the repetitions in which both ran of the ratio to the glibc run of the same repetition; ~ = the tool saw only the top process of the workload, left out of the geometric mean)\n")
		row_reset(); cell("workload")
		for (i = 1; i <= nrc; i++) cell(RC[i] " time")
		for (i = 1; i <= nrc; i++) cell(RC[i] " RSS")
		row_emit()
		for (wi = 1; wi <= nw; wi++) {
			w = W[wi]
			row_reset(); cell(w)
			for (mi = 1; mi <= 2; mi++) {
				m = substr("tm", mi, 1)
				for (i = 1; i <= nrc; i++) {
					a = RC[i]
					x = paired(w, a, "glibc", m)
					if (x > 0 && has(w, a) && has(w, "glibc")) {
						cell(fmt_r(x) (((w, a) in toponly) ? "~" : ""))
						if (!((w, a) in toponly)) gm_add("r" m a, x)
					} else cell(celltext(w, a, m) ~ /^[0-9]/ ? "-" : celltext(w, a, m))
				}
			}
			row_emit()
		}
		row_reset(); cell("geomean")
		for (mi = 1; mi <= 2; mi++)
			for (i = 1; i <= nrc; i++)
				cell(gm("r" substr("tm", mi, 1) RC[i]) > 0 ? fmt_r(gm("r" substr("tm", mi, 1) RC[i])) : "-")
		row_emit()
		table_flush()
	}

	# Targets.
	heading("Targets (geometric mean over the workloads)")
	row_reset(); cell("metric"); cell("geomean"); cell("target"); cell("result"); cell("workloads"); row_emit()
	# Issue 9's: the geometric means, and no workload above 1.3x mimalloc.
	target("time  slabnotify / mimalloc", "sn/mi", 1.00)
	target("time  slabnotify / glibc", "sn/glibc", 0.90)
	target("RSS   slabnotify / best peer", "sn/best", 1.10)
	target_max("time  slabnotify / mimalloc, worst", "sn/mi", 1.30)
	table_flush()

	# Checks.
	heading("Checks")
	if (nmm == 0)
		item("outputs: every successful run of a workload printed the same output (checksums) under every allocator")
	else
		for (i = 1; i <= nmm; i++)
			item("OUTPUT MISMATCH: " mmnote[i])
	if (nfail == 0)
		item("failed runs: none")
	else
		for (i = 1; i <= nfail; i++)
			item("failed run: " failnote[i])
	item("cells: n/a = allocator not available, fail = every run failed, timeout = killed, * = some runs failed, ! = output differed (left out of the ratios), ~ = the tool followed only the top process (gcc's driver, git's shell; left out of the geometric means)")
}

function target(label, key, t,    g, n) {
	g = gm(key)
	n = gn[key] + 0
	row_reset(); cell(label)
	if (g < 0) {
		cell("-"); cell("<= " sprintf("%.2f", t)); cell("n/a"); cell("0 of " nw)
	} else {
		cell(fmt_r(g)); cell("<= " sprintf("%.2f", t)); cell(g <= t ? "PASS" : "MISS"); cell(n " of " nw)
	}
	row_emit()
}

function target_max(label, key, t,    g) {
	row_reset(); cell(label)
	if (!gn[key]) {
		cell("-"); cell("<= " sprintf("%.2f", t)); cell("n/a"); cell("0 of " nw)
	} else {
		g = gmax[key]
		cell(fmt_r(g)); cell("<= " sprintf("%.2f", t)); cell(g <= t ? "PASS" : "MISS"); cell(gn[key] " of " nw)
	}
	row_emit()
}

# Median over the repetitions in which both ran of value(a) / value(b).
function paired(w, a, b, m,    r, n) {
	n = 0
	for (r = 1; r <= maxrep; r++)
		if (((w, a, m, r) in byrep) && ((w, b, m, r) in byrep) && byrep[w, b, m, r] > 0)
			v[++n] = byrep[w, a, m, r] / byrep[w, b, m, r]
	return n ? median(n) : -1
}
