# shellcheck shell=bash
# Shared by scripts/test and scripts/e2e: paths, and idempotent installers of the test
# prerequisites. Everything lands under $KOMA_CACHE; each installer does nothing when
# what it would install is already there (stamp files hold the hash of the inputs).

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KOMA_CACHE="${KOMA_CACHE:-/root/.cache/koma}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/koma/target}"
VENV="$KOMA_CACHE/venv"
NPM_CACHE_DIR="$KOMA_CACHE/npm"
export E2E_VIEM_NODE_MODULES="$NPM_CACHE_DIR/viem/node_modules"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root for: $*"
  fi
}

# apt_install PKG...: installs the packages that are not installed yet.
apt_install() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get"
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive timeout 1200 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# System packages: libclang for RocksDB's bindgen; Python with venv; Node.js for viem/solc.
ensure_system_packages() {
  local pkgs=(clang libclang-dev)
  if ! command -v python3 >/dev/null 2>&1; then pkgs+=(python3 python3-venv)
  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then pkgs+=(python3-venv)
  fi
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
  apt_install "${pkgs[@]}"
}

ensure_rust() {
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
  if ! command -v cargo >/dev/null 2>&1; then
    apt_install curl ca-certificates
    log "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | timeout 1200 sh -s -- -y -q --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! cargo fmt --version >/dev/null 2>&1; then timeout 600 rustup component add rustfmt; fi
  if ! cargo clippy --version >/dev/null 2>&1; then timeout 600 rustup component add clippy; fi
}

# The Python venv with tests/e2e/requirements.txt.
ensure_venv() {
  local req="$REPO/tests/e2e/requirements.txt" sum
  sum=$(sha256sum "$req" | cut -d' ' -f1)
  if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating $VENV"
    rm -rf "$VENV"
    mkdir -p "$KOMA_CACHE"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$sum" ]; then
    log "pip install -r tests/e2e/requirements.txt"
    timeout 1200 "$VENV/bin/python" -m pip install -q -r "$req"
    echo "$sum" >"$VENV/.requirements.sha256"
  fi
}

# ensure_npm DIR NAME: `npm ci` of DIR's package.json + package-lock.json into
# $NPM_CACHE_DIR/NAME (outside the repository).
ensure_npm() {
  local src="$REPO/$1" dest="$NPM_CACHE_DIR/$2" sum
  sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ -d "$dest/node_modules" ] && [ "$(cat "$dest/.lock.sha256" 2>/dev/null)" = "$sum" ]; then
    return 0
  fi
  log "npm ci $1 -> $dest"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  (cd "$dest" && timeout 900 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$sum" >"$dest/.lock.sha256"
}

# The contracts' npm packages (solc, OpenZeppelin, forge, noble), installed in the cache
# and linked as contracts/node_modules, where contracts/build.js and forge look.
ensure_contracts_prereqs() {
  ensure_npm contracts contracts
  local link="$REPO/contracts/node_modules"
  if [ -L "$link" ] || [ ! -e "$link" ]; then
    ln -sfn "$NPM_CACHE_DIR/contracts/node_modules" "$link"
  fi
  export FORGE_BIN="$REPO/contracts/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
}

# Everything the end-to-end suite needs besides the koma binary.
ensure_e2e_prereqs() {
  ensure_venv
  ensure_contracts_prereqs
  ensure_npm tests/e2e/viem viem
  # anvil: the reference node (E2E_TARGET=anvil) and the external L1 of the checkpoint tests
  if [ -z "${ANVIL_BIN:-}" ]; then
    ensure_npm tests/e2e/anvil anvil
    export ANVIL_BIN="$NPM_CACHE_DIR/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
  fi
  export KOMA_BIN="${KOMA_BIN:-$CARGO_TARGET_DIR/debug/koma}"
}

# run_e2e SECONDS [PYTEST ARGS...]: the pytest suite, bounded in time. On timeout pytest
# gets SIGTERM (its conftest then stops every node), SIGKILL 60 s later.
run_e2e() {
  local limit=$1
  shift
  (cd "$REPO" && timeout --signal=TERM --kill-after=60 "$limit" \
    "$VENV/bin/python" -m pytest "$@")
}
