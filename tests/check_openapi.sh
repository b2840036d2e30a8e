#!/bin/sh
# Checks the OpenAPI document (lib/openapi.json, served at GET /openapi)
# against the OpenAPI 3 schema and against a real octopusd: every
# operation is driven over HTTP through its success and error cases, and
# every answer is validated against the document (status, Content-Type,
# body, headers); see tests/web/check_openapi.js.
#
# Tools: node, and the npm packages pinned in tests/tools
# (@seriousme/openapi-schema-validator, openapi-backend, ajv, ajv-formats),
# read from $OCTO_TOOLS_DIR/node_modules (default
# $srcdir/tests/tools/node_modules); $OCTOPUSD, which make check sets. A
# missing tool skips this test (exit 77), or fails it when
# OCTO_REQUIRE_TOOLS=1.
#
# Run by `make check` from the build directory, with $srcdir from automake;
# by hand: OCTOPUSD=build/server/octopusd srcdir=. sh tests/check_openapi.sh
set -u

: "${srcdir:=$(dirname "$0")/..}"
top=$(cd "$srcdir" 2>/dev/null && pwd) || {
	echo "check_openapi: srcdir '$srcdir' not found" >&2
	exit 99
}
tools=${OCTO_TOOLS_DIR:-$top/tests/tools}

missing=
node=$(command -v node 2>/dev/null || command -v nodejs 2>/dev/null || true)
[ -n "$node" ] || missing="$missing node"
for m in @seriousme/openapi-schema-validator openapi-backend ajv ajv-formats; do
	[ -f "$tools/node_modules/$m/package.json" ] || missing="$missing $m"
done
if [ -z "${OCTOPUSD:-}" ] || [ ! -x "$OCTOPUSD" ]; then
	missing="$missing octopusd(\$OCTOPUSD)"
fi

install_hint="npm ci --prefix tests/tools, or set OCTO_TOOLS_DIR"
. "$top/tests/web/require.sh"

OCTO_SRCDIR=${OCTO_SRCDIR:-$top} NODE_TOOLS="$tools/node_modules" \
	exec "$node" "$top/tests/web/check_openapi.js"
