# Sourced by the project scripts: installs what a fresh machine lacks and points
# every build at one target directory outside the checkout, so CI reuses what a
# previous build compiled (RocksDB takes ~15 minutes cold).
set -euo pipefail

# bindgen (through clang-sys) loads libclang itself: `libclang.so`, `libclang.so.N` or
# `libclang-N.so.M`. Only those names count; `libclang-cpp.so.N`, which the base image
# ships, is the C++ library and cannot be used.
have_libclang() {
    local dir
    if [ -n "${LIBCLANG_PATH:-}" ]; then
        ls "$LIBCLANG_PATH"/libclang.so* "$LIBCLANG_PATH"/libclang-[0-9]*.so* >/dev/null 2>&1
        return
    fi
    for dir in /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/local/lib; do
        ls "$dir"/libclang.so* "$dir"/libclang-[0-9]*.so* >/dev/null 2>&1 && return 0
    done
    return 1
}

# What the scripts run beside cargo, by the Debian package that brings it: the C++
# compiler RocksDB's build needs, curl (readiness waits), python3 (JSON checks, free
# ports, the schemathesis venv), ip (the network namespaces of the partition tests). A
# bare Debian with only the Rust toolchain has none.
missing=()
have_libclang || missing+=(libclang-dev)
command -v c++ >/dev/null || missing+=(g++)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (needed by the RocksDB build and the project scripts)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    have_libclang || { echo "libclang-dev installed but no libclang.so found" >&2; exit 1; }
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pixstream/target}"
mkdir -p "$CARGO_TARGET_DIR"
