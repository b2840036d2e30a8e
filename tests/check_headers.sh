#!/bin/bash
# Checks the public headers, include/octopus/*.h (and version.h.in):
#
#   overview     every header opens with a comment saying what it is for
#   documented   every OCTO_EXTERN declaration and every callback typedef
#                has a comment of its own directly above it (the line
#                before it ends a comment block); no sharing of one
#                comment by a group of declarations
#   standalone   every header compiles on its own, included twice, as C99
#                with -Wall -Wextra -Werror, and as C++ when a C++
#                compiler is installed
#
# The source tree is $OCTO_SRCDIR (set by make check), else $srcdir, else
# the script's ../. The generated octopus/version.h is looked for under
# $OCTO_BUILDDIR/include, ./include (make check runs in the build
# directory) and the source tree; when there is none, one is made from
# version.h.in with version 0.0.0.
# By hand: OCTO_SRCDIR=. OCTO_BUILDDIR=build bash tests/check_headers.sh
# Prints PASS/FAIL per check, what failed, and a Check-style summary line;
# exits 0 when every check passed, else 1.
set -u

top=${OCTO_SRCDIR:-${srcdir:-$(dirname "$0")/..}}
top=$(cd "$top" 2>/dev/null && pwd) || {
	echo "check_headers: source tree '$top' not found" >&2
	exit 1
}
hdr_dir=$top/include/octopus
if ! [ -d "$hdr_dir" ]; then
	echo "check_headers: no $hdr_dir" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_headers.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

checks=0
failures=0

pass() {
	checks=$((checks + 1))
	echo "PASS: $1"
}

fail() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "FAIL: $1"
	[ -s "$tmp/out" ] && sed -n '1,30s/^/    /p' "$tmp/out"
	: >"$tmp/out"
}

# --- where version.h is -------------------------------------------------------
build_inc=
for d in ${OCTO_BUILDDIR:+"$OCTO_BUILDDIR/include"} ./include "$top/include"; do
	if [ -f "$d/octopus/version.h" ]; then
		build_inc=$(cd "$d" && pwd)
		break
	fi
done
if [ -z "$build_inc" ]; then
	build_inc=$tmp/include
	mkdir -p "$build_inc/octopus"
	sed -e 's/@PACKAGE_VERSION@/0.0.0/' -e 's/@OCTO_VERSION_[A-Z]*@/0/' \
		"$hdr_dir/version.h.in" >"$build_inc/octopus/version.h"
	echo "NOTE: no generated octopus/version.h found; using one made from version.h.in"
fi

# --- overview and per-declaration comments --------------------------------------
# Prints one line per declaration without a comment directly above it.
undocumented() {
	awk '
	function ends_comment(line) {
		return line ~ /\*\/[ \t]*$/ && line ~ /^(\/\*|[ \t]*\*)/
	}
	/^OCTO_EXTERN[ \t]/ || /^typedef[^;]*\(\*[A-Za-z_0-9]+\)[ \t]*\(/ {
		if (!ends_comment(prev)) {
			if (/^typedef/) {
				match($0, /\(\*[A-Za-z_0-9]+\)/)
				name = substr($0, RSTART + 2, RLENGTH - 3) " (callback type)"
			} else {
				match($0, /[A-Za-z_][A-Za-z_0-9]*[ \t]*\(/)
				name = substr($0, RSTART, RLENGTH)
				sub(/[ \t]*\($/, "()", name)
			}
			printf "line %d: %s has no comment directly above it\n", FNR, name
		}
	}
	{ prev = $0 }
	' "$1"
}

headers=
for f in "$hdr_dir"/*.h "$hdr_dir"/version.h.in; do
	[ -f "$f" ] && headers="$headers ${f##*/}"
done
for h in $headers; do
	f=$hdr_dir/$h
	if head -n 1 "$f" | grep -q '^/\*'; then
		pass "octopus/$h opens with an overview comment"
	else
		fail "octopus/$h does not open with an overview comment"
	fi
	if ! grep -q '^OCTO_EXTERN\|^typedef.*(\*' "$f"; then
		continue
	fi
	undocumented "$f" >"$tmp/out"
	if [ -s "$tmp/out" ]; then
		fail "octopus/$h: every function and callback type documented"
	else
		pass "octopus/$h: every function and callback type documented"
	fi
done

# --- each header on its own --------------------------------------------------------
cc=${CC:-cc}
cxx=
for c in "${CXX:-}" c++ g++; do
	if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then
		cxx=$c
		break
	fi
done

compiles() {
	# compiles LANG COMPILER FLAGS...: includes header $h twice, syntax only.
	lang=$1 compiler=$2
	shift 2
	printf '#include <octopus/%s>\n#include <octopus/%s>\n' "$h" "$h" |
		$compiler -fsyntax-only "$@" -I"$top/include" -I"$build_inc" \
			-x "$lang" - >"$tmp/out" 2>&1
}

# The generated version.h too, when it lives in the build tree.
standalone=
for f in "$hdr_dir"/*.h; do
	standalone="$standalone ${f##*/}"
done
[ -f "$hdr_dir/version.h" ] || standalone="$standalone version.h"
for h in $standalone; do
	if compiles c "$cc" -std=c99 -Wall -Wextra -Werror; then
		pass "octopus/$h compiles alone as C99 ($cc)"
	else
		fail "octopus/$h compiles alone as C99 ($cc)"
	fi
	if [ -n "$cxx" ]; then
		if compiles c++ "$cxx" -Wall -Wextra -Werror; then
			pass "octopus/$h compiles alone as C++ ($cxx)"
		else
			fail "octopus/$h compiles alone as C++ ($cxx)"
		fi
	fi
done
[ -n "$cxx" ] || echo "NOTE: no C++ compiler found; the C++ checks were skipped"

# --- the verdict ---------------------------------------------------------------------
echo "$(((checks - failures) * 100 / checks))%: Checks: $checks, Failures: $failures, Errors: 0"
[ "$failures" -eq 0 ]
