#!/bin/sh
# Checks the API reference page (lib/docs.html, served at GET /docs) in
# headless Chromium against a real octopusd: every path and method of the
# served /openapi document is rendered, the page makes no request to any
# other origin, and it reads the document by a relative URL; see
# tests/web/check_docs.js.
#
# Tools: node, the npm package playwright-core pinned in tests/tools (read
# from $OCTO_TOOLS_DIR/node_modules, default $srcdir/tests/tools/node_modules),
# Debian's chromium ($OCTO_CHROMIUM, default /usr/bin/chromium; ./dev
# installs it), and $OCTOPUSD, which make check sets. A missing tool skips
# this test (exit 77), or fails it when OCTO_REQUIRE_TOOLS=1.
#
# Run by `make check` from the build directory, with $srcdir from automake;
# by hand: OCTOPUSD=build/server/octopusd srcdir=. sh tests/check_docs.sh
set -u

: "${srcdir:=$(dirname "$0")/..}"
top=$(cd "$srcdir" 2>/dev/null && pwd) || {
	echo "check_docs: srcdir '$srcdir' not found" >&2
	exit 99
}
tools=${OCTO_TOOLS_DIR:-$top/tests/tools}
browser=${OCTO_CHROMIUM:-/usr/bin/chromium}

missing=
node=$(command -v node 2>/dev/null || command -v nodejs 2>/dev/null || true)
[ -n "$node" ] || missing="$missing node"
[ -f "$tools/node_modules/playwright-core/package.json" ] || missing="$missing playwright-core"
[ -x "$browser" ] || missing="$missing chromium($browser)"
if [ -z "${OCTOPUSD:-}" ] || [ ! -x "$OCTOPUSD" ]; then
	missing="$missing octopusd(\$OCTOPUSD)"
fi

install_hint="apt-get install chromium; npm ci --prefix tests/tools, or set OCTO_TOOLS_DIR"
. "$top/tests/web/require.sh"

OCTO_CHROMIUM=$browser NODE_TOOLS="$tools/node_modules" \
	exec "$node" "$top/tests/web/check_docs.js"
