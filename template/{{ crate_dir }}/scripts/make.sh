#!/usr/bin/env bash
# The Makefile's longer recipes, where shellcheck can read them. Each prints ✓ when it did
# its work, or ✗ and exits 1 when it did not. The Makefile passes what it knows:
#
#   scripts/make.sh install BINARY DIR             install BINARY as DIR/$BIN (mode 755)
#   scripts/make.sh check-size BINARY LIMIT_BYTES LIMIT_MB
#                                                  fail when BINARY (ELF or Mach-O), stripped,
#                                                  is larger
#   scripts/make.sh cross-compile-macos TARGET=MACOS_MIN...
#                                                  release builds for Apple targets, each for
#                                                  its oldest macOS: on macOS with Apple's
#                                                  linker, elsewhere with cargo-zigbuild (zig)
#
# Environment: BIN (the binary's name), CARGO (default cargo), TARGET_DIR (default target),
# UNIVERSAL (1: cross-compile-macos also writes one universal binary of both Apple targets).
set -euo pipefail

bin=${BIN:?BIN must name the binary}
cargo=${CARGO:-cargo}
target_dir=${TARGET_DIR:-target}

# ok MESSAGE: the work is done. fail MESSAGE [STATUS]: says what stopped it and exits (1
# unless STATUS says), with make's ✗ instead of the other scripts' "error:".
ok() { echo "✓ $*"; }
fail() {
  echo "✗ $1" >&2
  exit "${2:-1}"
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

# The first tool on PATH among its arguments; a name ending in * also matches llvm-lipo-18 and the like.
first_tool() {
  local name found
  for name in "$@"; do
    case "$name" in
      *\*) found=$(compgen -c "${name%\*}" 2>/dev/null | sort -V | tail -n 1) ;;
      *) found=$(command -v "$name" 2>/dev/null || true) ;;
    esac
    if [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
  done
  return 1
}

# Mach-O (0xfeedfacf, or 0xcafebabe universal) or ELF, from the file's first bytes.
binary_format() {
  case "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" in
    7f454c46) echo ELF ;;
    cffaedfe | cafebabe) echo Mach-O ;;
    *) echo unknown ;;
  esac
}

check_size() {
  local binary=$1 limit_bytes=$2 limit_mb=$3 stripped bytes mb format tool
  [ -f "$binary" ] || fail "no binary at $binary: build it first"
  format=$(binary_format "$binary")
  # GNU strip reads ELF only; Apple's strip and llvm-strip read Mach-O as well.
  case "$format/$(uname -s)" in
    ELF/*) tool=$(first_tool strip llvm-strip 'llvm-strip-*') ;;
    Mach-O/Darwin) tool=$(first_tool strip) ;;
    Mach-O/*) tool=$(first_tool llvm-strip 'llvm-strip-*') ;;
    *) fail "$binary is neither ELF nor Mach-O" ;;
  esac || fail "no strip that reads $format is installed (binutils or llvm for ELF, llvm's llvm-strip for Mach-O)"
  stripped=$binary.stripped
  "$tool" -o "$stripped" "$binary" || fail "could not strip $binary with $tool"
  bytes=$(wc -c < "$stripped" | tr -d ' ')
  rm -f "$stripped"
  mb=$(awk -v bytes="$bytes" 'BEGIN { printf "%.2f", bytes / 1000000 }')
  if [ "$bytes" -gt "$limit_bytes" ]; then
    fail "$bin ($format) is $mb MB ($bytes bytes) stripped, above the $limit_mb MB limit"
  fi
  ok "$bin ($format) is $mb MB ($bytes bytes) stripped, within the $limit_mb MB limit"
}

cross_compile_macos() {
  local sysroot pair target minimum log framework lipo built=() build=(build) via="Apple's linker"
  sysroot=$(rustc --print sysroot) || fail "rustc is not installed"
  if [ "$(uname -s)" != Darwin ]; then
    # zig links Mach-O from Linux and signs arm64 code ad hoc; it carries no Apple frameworks.
    # zig is looked for as cargo-zigbuild looks: `python3 -m ziglang` (PyPI's zig), then `zig`.
    if ! command -v cargo-zigbuild >/dev/null 2>&1 \
      || ! { "${CARGO_ZIGBUILD_PYTHON_PATH:-python3}" -m ziglang version >/dev/null 2>&1 \
        || "${CARGO_ZIGBUILD_ZIG_PATH:-zig}" version >/dev/null 2>&1; }; then
      fail "linking for macOS on $(uname -s) needs zig and cargo-zigbuild: pip install ziglang cargo-zigbuild (docs/CROSS_COMPILE.md; nothing was built)"
    fi
    build=(zigbuild)
    via="cargo-zigbuild"
  fi
  for pair in "$@"; do
    target=${pair%%=*}
    minimum=${pair#*=}
    if [ ! -d "$sysroot/lib/rustlib/$target/lib" ]; then
      echo "→ $target: adding its standard library (rustup target add $target)"
      rustup target add "$target" \
        || fail "$target: its standard library is missing and 'rustup target add $target' failed (is rustup installed and online?)"
    fi
    log=$(mktemp)
    if ! MACOSX_DEPLOYMENT_TARGET=$minimum "$cargo" "${build[@]}" --release --target "$target" 2> >(tee "$log" >&2); then
      framework=$(sed -n 's/.*unable to find \(system \)\{0,1\}framework ["'\'']\{0,1\}\([A-Za-z0-9_]*\).*/\2/p' "$log" | head -n 1)
      rm -f "$log"
      [ -z "$framework" ] || fail "$target: a dependency links Apple's $framework framework, which zig does not carry: set SDKROOT to an Apple SDK (docs/CROSS_COMPILE.md) or build on a Mac"
      fail "$target: release build failed"
    fi
    rm -f "$log"
    built+=("$target_dir/$target/release/$bin")
    ok "$target: $target_dir/$target/release/$bin (macOS $minimum or later, linked by $via)"
  done
  [ "${UNIVERSAL:-}" = 1 ] || return 0
  set -- "${built[@]}"
  [ $# -eq 2 ] || fail "a universal binary needs both Apple targets; built: $*"
  lipo=$(first_tool lipo llvm-lipo 'llvm-lipo-*') || fail "a universal binary needs lipo (Xcode on macOS, llvm on Linux: llvm-lipo)"
  mkdir -p "$target_dir/universal2-apple-darwin/release"
  "$lipo" -create -output "$target_dir/universal2-apple-darwin/release/$bin" "$@" || fail "$lipo could not merge the two Apple binaries"
  ok "universal: $target_dir/universal2-apple-darwin/release/$bin (arm64 and x86_64)"
}

command=${1:-}
shift || true
case "$command" in
  install) [ $# -eq 2 ] || fail "usage: scripts/make.sh install BINARY DIR"; install_binary "$@" ;;
  check-size) [ $# -eq 3 ] || fail "usage: scripts/make.sh check-size BINARY LIMIT_BYTES LIMIT_MB"; check_size "$@" ;;
  cross-compile-macos) cross_compile_macos "$@" ;;
  *) fail "unknown command '$command' (install, check-size, cross-compile-macos)" ;;
esac
