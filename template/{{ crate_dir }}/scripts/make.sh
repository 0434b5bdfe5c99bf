#!/usr/bin/env bash
# The Makefile's longer recipes, where shellcheck can read them. Each prints ✓ when it did
# its work, or ✗ and exits 1 when it did not. The Makefile passes what it knows:
#
#   scripts/make.sh install BINARY DIR             install BINARY as DIR/$BIN (mode 755)
#   scripts/make.sh check-size BINARY LIMIT_BYTES LIMIT_MB
#                                                  fail when BINARY, stripped, is larger
#   scripts/make.sh cross-compile-macos TARGET...  release builds for Apple targets
#
# Environment: BIN (the binary's name), CARGO (default cargo), TARGET_DIR (default target).
set -euo pipefail

bin=${BIN:?BIN must name the binary}
cargo=${CARGO:-cargo}
target_dir=${TARGET_DIR:-target}

ok() { echo "✓ $*"; }
fail() {
  echo "✗ $*" >&2
  exit 1
}

install_binary() {
  local binary=$1 dir=$2
  [ -x "$binary" ] || fail "no release binary at $binary: run 'make release' as yourself first, then 'sudo make install'"
  if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
    fail "$dir is not writable: run 'sudo make install', or 'make install PREFIX=\$HOME/.local'"
  fi
  install -m 755 "$binary" "$dir/$bin" || fail "could not install $dir/$bin"
  ok "installed $dir/$bin"
}

check_size() {
  local binary=$1 limit_bytes=$2 limit_mb=$3 stripped bytes mb
  stripped=$binary.stripped
  strip -o "$stripped" "$binary" || fail "could not strip $binary"
  bytes=$(wc -c < "$stripped" | tr -d ' ')
  rm -f "$stripped"
  mb=$(awk -v bytes="$bytes" 'BEGIN { printf "%.2f", bytes / 1000000 }')
  if [ "$bytes" -gt "$limit_bytes" ]; then
    fail "$bin is $mb MB ($bytes bytes) stripped, above the $limit_mb MB limit"
  fi
  ok "$bin is $mb MB ($bytes bytes) stripped, within the $limit_mb MB limit"
}

cross_compile_macos() {
  local sysroot target linker_var
  sysroot=$(rustc --print sysroot) || fail "rustc is not installed"
  for target in "$@"; do
    linker_var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER
    if [ "$(uname -s)" != Darwin ] && [ -z "$(printenv "$linker_var" || true)" ]; then
      fail "$target: linking needs Apple's SDK and linker, which this $(uname -s) machine lacks; build on macOS, or set $linker_var to an osxcross clang (nothing was installed)"
    fi
    if [ ! -d "$sysroot/lib/rustlib/$target/lib" ]; then
      echo "→ $target: adding its standard library (rustup target add $target)"
      rustup target add "$target" \
        || fail "$target: its standard library is missing and 'rustup target add $target' failed (is rustup installed and online?)"
    fi
    "$cargo" build --release --target "$target" || fail "$target: release build failed"
    ok "$target: $target_dir/$target/release/$bin"
  done
}

command=${1:-}
shift || true
case "$command" in
  install) [ $# -eq 2 ] || fail "usage: scripts/make.sh install BINARY DIR"; install_binary "$@" ;;
  check-size) [ $# -eq 3 ] || fail "usage: scripts/make.sh check-size BINARY LIMIT_BYTES LIMIT_MB"; check_size "$@" ;;
  cross-compile-macos) cross_compile_macos "$@" ;;
  *) fail "unknown command '$command' (install, check-size, cross-compile-macos)" ;;
esac
