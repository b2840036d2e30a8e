#!/usr/bin/env bash
# Runs the libFuzzer targets of a build configured with --enable-fuzzing.
#
#   tests/fuzz/run.sh BUILDDIR [SECONDS [TARGET...]]
#
# Each target first runs every input of tests/fuzz/corpus/<target> and
# tests/fuzz/regressions/<target> once. With SECONDS > 0 it is then fuzzed
# that long, starting from the seed corpus; new inputs go to a scratch
# directory, so the committed corpus is never changed. One line per target:
# "fuzz <target>: N executions, 0 crashes". Exits 1 after any crash, leak,
# timeout or out-of-memory, naming the input that caused it (kept under
# BUILDDIR/tests/fuzz/artifacts/<target>/).
set -u
[ $# -ge 1 ] || { sed -n '4p' "$0" | sed 's/^# *//'; exit 2; }
build=$(cd "$1" && pwd) || exit 2
seconds=${2:-0}
shift $(($# < 2 ? $# : 2))
src=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json api headers envfile record escape records)
out=$build/tests/fuzz
failed=0

# The targets' stores and scratch corpora, gone even after a crash (the
# targets prefer /dev/shm for speed; $TMPDIR is what they use).
parent=/tmp
[ -w /dev/shm ] && parent=/dev/shm
scratch=$(mktemp -d "$parent/octo-fuzz-run-XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

# What went wrong, from a libFuzzer log: the input being run, our check's
# message or the sanitizer's verdict, and where the input was written.
explain() {
	grep -a '^Running:' "$1" | tail -n 1
	grep -aE 'check failed|^  [^ ]|ERROR:|SUMMARY:|ALARM:|out-of-memory|Test unit written' "$1" |
		head -n 20
}

for t in "${targets[@]}"; do
	bin=$out/fuzz_$t
	opts=(-timeout=10 -rss_limit_mb=2048)
	[ -f "$src/$t.dict" ] && opts+=("-dict=$src/$t.dict")
	if [ ! -x "$bin" ]; then
		echo "fuzz $t: $bin is missing (configure CC=clang --enable-fuzzing; make)"
		failed=1
		continue
	fi
	mkdir -p "$out/artifacts/$t"
	opts+=("-artifact_prefix=$out/artifacts/$t/")

	mapfile -t inputs < <(find "$src/corpus/$t" "$src/regressions/$t" -type f \
		! -name '.*' ! -name '*.md' 2>/dev/null | sort)
	if [ ${#inputs[@]} -gt 0 ]; then
		if ! "$bin" "${opts[@]}" "${inputs[@]}" >"$out/$t-replay.log" 2>&1; then
			echo "fuzz $t: an input of the corpus or regressions fails ($out/$t-replay.log)"
			explain "$out/$t-replay.log"
			failed=1
			continue
		fi
	fi
	if [ "$seconds" -le 0 ]; then
		echo "fuzz $t: ${#inputs[@]} corpus and regression inputs pass"
		continue
	fi

	work=$(mktemp -d "$scratch/corpus-XXXXXX")
	"$bin" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 \
		"$work" "$src/corpus/$t" >"$out/$t.log" 2>&1
	rc=$?
	rm -rf "$work"
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "fuzz $t: ${runs:-0} executions, 0 crashes"
	else
		echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} executions ($out/$t.log)"
		explain "$out/$t.log"
		failed=1
	fi
done
exit $failed
