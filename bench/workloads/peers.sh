# peers.sh - where the peer allocators' shared libraries are, sourced by
# bench/preload_bench.sh, bench/rss_bench.sh and bench/callgrind.sh, so
# that every benchmark compares against the same libraries.
#
#   peer_lib NAME   the path of NAME's library (jemalloc, mimalloc,
#                   tcmalloc), or nothing when it is not installed;
#                   PRELOAD_BENCH_JEMALLOC, _MIMALLOC, _TCMALLOC override

sn_multiarch=$( (gcc -print-multiarch || dpkg-architecture -qDEB_HOST_MULTIARCH) 2>/dev/null | head -1 || true)

find_lib() { # the first NAME found in the usual library directories
	local d n
	for d in ${sn_multiarch:+/usr/lib/$sn_multiarch /lib/$sn_multiarch} /usr/local/lib /usr/lib64 /lib64 /usr/lib /lib; do
		for n in "$@"; do [[ -f $d/$n ]] && { echo "$d/$n"; return 0; }; done
	done
	return 0
}

peer_lib() {
	local override
	case $1 in
	jemalloc) override=${PRELOAD_BENCH_JEMALLOC:-} ;;
	mimalloc) override=${PRELOAD_BENCH_MIMALLOC:-} ;;
	tcmalloc) override=${PRELOAD_BENCH_TCMALLOC:-} ;;
	*) return 0 ;;
	esac
	if [[ -n $override ]]; then
		[[ -f $override ]] && echo "$override"
		return 0
	fi
	case $1 in
	jemalloc) find_lib libjemalloc.so.2 ;;
	mimalloc) find_lib libmimalloc.so.2 ;;
	tcmalloc) find_lib libtcmalloc_minimal.so.4 libtcmalloc.so.4 ;;
	esac
}
