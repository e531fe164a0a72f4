# shellcheck shell=bash
# Shared steps of scripts/quickstart.sh and scripts/test.sh; source it, don't run it.
# Every step is idempotent: it checks what is there and does only what is missing or stale.
# Each returns non-zero on failure without relying on `set -e` (test.sh runs them in `if`).
#
# Environment:
#   MINNOW_CACHE   model cache (default ~/.cache/minnow/models)
#   MINNOW_WHEELS  downloaded model wheels (default ~/.cache/minnow/wheels)
#   MINNOW_VENV    Python venv for the test tools (default ~/.cache/minnow/venv)
#   MINNOW_JOBS    parallel build jobs (default: number of CPUs)
#   MINNOW_SKIP_APT=1  do not check or install Debian packages

MINNOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINNOW_JOBS="${MINNOW_JOBS:-$(nproc 2>/dev/null || echo 2)}"
MINNOW_VENV="${MINNOW_VENV:-$HOME/.cache/minnow/venv}"

# ccache keys on paths relative to the checkout, so every clone (CI makes a fresh one per
# run) shares one cache (~/.cache/ccache).
export CCACHE_BASEDIR="$MINNOW_ROOT" CCACHE_NOHASHDIR=1

step() { printf '\n==> %s\n' "$*"; }

# Installs the packages of scripts/apt-packages.txt that are not installed yet.
ensure_apt() {
  [[ "${MINNOW_SKIP_APT:-}" == 1 ]] && return 0
  local wanted missing=()
  wanted=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$MINNOW_ROOT/scripts/apt-packages.txt")
  for pkg in $wanted; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    echo "apt packages: all present"
    return 0
  fi
  step "installing apt packages: ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null ||
      { echo "error: need root or sudo to install: ${missing[*]}" >&2; return 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq || return 1
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Fetches and checks the models of scripts/models.tsv (see scripts/fetch_models.py).
ensure_models() {
  python3 "$MINNOW_ROOT/scripts/fetch_models.py"
}

# configure_and_build DIR TARGET... -- CMAKE_ARGS...
# Configures every time: it takes a second or two, changes nothing when nothing changed (so
# nothing is rebuilt), and makes targets added since the last run known before they are asked
# for. The log stays in DIR/configure.log and is shown on failure.
configure_and_build() {
  local dir="$1"; shift
  local targets=()
  while (($#)) && [[ "$1" != -- ]]; do targets+=("$1"); shift; done
  (($#)) && shift
  mkdir -p "$dir"
  local ccache=""
  command -v ccache >/dev/null && ccache=ccache
  local launcher=(-DCMAKE_C_COMPILER_LAUNCHER="$ccache" -DCMAKE_CXX_COMPILER_LAUNCHER="$ccache")
  cmake -S "$MINNOW_ROOT" -B "$dir" "${launcher[@]}" "$@" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; return 1; }
  local t=()
  for x in "${targets[@]}"; do t+=(--target "$x"); done
  cmake --build "$dir" -j "$MINNOW_JOBS" "${t[@]}"
}

# What the Release build makes: build/minnow, plus any program that tests/python drives
# (add it here).
MINNOW_RELEASE_TARGETS=(minnow gguf_write_sample minnow_make_tiny_model)

# build_release [TARGET...]: the given targets, by default MINNOW_RELEASE_TARGETS.
build_release() {
  (($#)) || set -- "${MINNOW_RELEASE_TARGETS[@]}"
  configure_and_build "$MINNOW_ROOT/build" "$@" -- -DCMAKE_BUILD_TYPE=Release
}

# The ASan + UBSan build of everything (unit tests included), build-asan/. Release flags, as
# every area builds its own sanitizer tree: GCC's -Wmaybe-uninitialized depends on the
# optimisation level, so another level would fail -Werror on code that passes there. -g only
# adds line numbers to sanitizer reports.
build_asan() {
  configure_and_build "$MINNOW_ROOT/build-asan" all -- -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS=-g -DCMAKE_C_FLAGS=-g -DMINNOW_SANITIZE=ON
}

# A venv with scripts/requirements-test.txt, rebuilt only when that file changes.
ensure_venv() {
  local req="$MINNOW_ROOT/scripts/requirements-test.txt"
  local want stamp="$MINNOW_VENV/.minnow-requirements"
  want="$(sha256sum "$req" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
  if [[ -x "$MINNOW_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "python test venv: current ($MINNOW_VENV)"
    return 0
  fi
  echo "creating the venv"
  rm -rf "$MINNOW_VENV"
  python3 -m venv "$MINNOW_VENV" &&
    "$MINNOW_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" &&
    echo "$want" >"$stamp"
}
