# Sourced by the project scripts: installs what a fresh machine lacks and points
# every build at one target directory outside the checkout, so CI reuses what a
# previous build compiled (RocksDB takes ~15 minutes cold).
set -euo pipefail
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    echo "installing libclang-dev (needed by the RocksDB bindings)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y --no-install-recommends libclang-dev >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pixstream/target}"
mkdir -p "$CARGO_TARGET_DIR"
