#!/usr/bin/env bash
# make setup: installs what the build and the tests need. Idempotent and quick when everything
# is already there; where it cannot install (not root, no apt-get), it says what to install.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }

have cargo || { echo "setup: cargo (Rust toolchain) is missing: install it with rustup (https://rustup.rs)"; exit 1; }
have protoc || need_pkgs+=(protobuf-compiler)
# RocksDB's Rust bindings are generated with bindgen, which needs libclang.
# (libclang.so itself: libclang-cpp.so, which other packages bring, is not what bindgen loads.)
have_libclang() {
  local f
  for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
      /usr/lib/*-linux-gnu/libclang.so* /usr/lib/*-linux-gnu/libclang-[0-9]*.so*; do
    [ -e "$f" ] && return 0
  done
  return 1
}
if [ -z "${LIBCLANG_PATH:-}" ] && ! have_libclang; then
  need_pkgs+=(libclang-dev)
fi
have etcdctl || need_pkgs+=(etcd-client)   # compatibility tests
have etcd || need_pkgs+=(etcd-server)      # the reference in benchmarks
have openssl || need_pkgs+=(openssl)       # certificates for the TLS tests

# The official Kubernetes Python client, for the client-compatibility test (from PyPI).
python_client() {
  have python3 || { echo "setup: python3 is missing: install python3 and pip (the Python client test needs them)"; return 1; }
  python3 -c 'import kubernetes' 2>/dev/null && return 0
  echo "setup: installing the Python kubernetes client (pip)"
  python3 -m pip install --quiet --disable-pip-version-check 'kubernetes>=29' 2>&1 | grep -v -i "warning" || true
  python3 -c 'import kubernetes' 2>/dev/null || { echo "setup: could not install it; run: python3 -m pip install kubernetes"; return 1; }
}
python_client

if [ ${#need_pkgs[@]} -eq 0 ]; then
  echo "setup: everything needed is installed"
  exit 0
fi

if [ "$(id -u)" = 0 ] && have apt-get; then
  echo "setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  echo "setup: installed ${need_pkgs[*]}"
else
  echo "setup: please install these packages by hand (Debian/Ubuntu names): ${need_pkgs[*]}"
  echo "       e.g. sudo apt-get install ${need_pkgs[*]}"
  exit 1
fi
