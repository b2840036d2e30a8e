#!/bin/sh
# Runs every example program of examples/ (built by make check) the way
# its usage line says, so the examples never rot. Each one checks its own
# result and exits non-zero when it is wrong.
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/octo-examples.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
run() {
	name=$1
	shift
	if "./examples/$name" "$@" >"$dir/$name.out" 2>&1; then
		pass=$((pass + 1))
		echo "PASS: examples/$name $*"
	else
		fail=$((fail + 1))
		echo "FAIL: examples/$name $*"
		sed 's/^/    /' "$dir/$name.out"
	fi
}
run hello "$dir/hello"
run engine "$dir/engine"
run engine "$dir/engine"     # again: the first run's job is resumed or done, a new one runs
run storage "$dir/storage"
run observe --check
echo "$((100 * pass / (pass + fail)))%: Checks: $((pass + fail)), Failures: $fail, Errors: 0"
[ "$fail" -eq 0 ]
