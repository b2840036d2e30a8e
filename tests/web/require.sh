# Sourced by the tests/check_*.sh scripts that run node checks: ends the
# script when a tool in $missing (a space-separated list) is absent,
# skipping (exit 77), or failing when OCTO_REQUIRE_TOOLS=1. $install_hint
# says how to install what is missing.
if [ -n "$missing" ]; then
	for t in $missing; do
		echo "SKIP: $t not found ($install_hint)"
	done
	if [ "${OCTO_REQUIRE_TOOLS:-0}" = 1 ]; then
		echo "FAIL: required tools are missing (OCTO_REQUIRE_TOOLS=1):$missing"
		echo "0%: Checks: 1, Failures: 1, Errors: 0"
		exit 1
	fi
	exit 77
fi
