#!/usr/bin/env bash
# What building and testing annvault needs beyond Rust, Node and a C++
# compiler, on a fresh Debian/Ubuntu machine (run as root, or with sudo):
# - cmake and a BLAS/LAPACK (OpenBLAS): faiss is built from source and linked
#   statically into the addon (the default `faiss` cargo feature); the addon
#   then needs libopenblas/liblapack and libgomp at run time;
# - Python's faiss-cpu and numpy: the tests read the exported ann_index.faiss
#   with Python's faiss.
# Idempotent; skips what is already there.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
[ -e /usr/lib/x86_64-linux-gnu/libblas.so ] || [ -e /usr/lib/libblas.so ] || need+=(libopenblas-dev)
[ -e /usr/lib/x86_64-linux-gnu/liblapack.so ] || [ -e /usr/lib/liblapack.so ] || need+=(liblapack-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# faiss 1.12 (vendored by faiss-sys) wants cmake >= 3.24.
cmake --version | head -1
if ! python3 -c 'import faiss, numpy' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'faiss-cpu==1.15.1' 'numpy<3'
fi
# pyarrow reads the `parquet` export back in the tests (a second, independent reader).
if ! python3 -c 'import pyarrow.parquet' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'pyarrow==26.0.1'
fi
