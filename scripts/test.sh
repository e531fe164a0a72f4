#!/usr/bin/env bash
# Quick start, step 2 of 2: runs every test. Ensures the same packages and models as
# quickstart.sh (fast when current), then
#   1. builds everything with ASan + UBSan in build-asan/ and runs the unit tests there (ctest);
#   2. builds the Release binary build/minnow and runs the Python tests (tests/python), which
#      check it against independent readers, in a venv with scripts/requirements-test.txt.
# Ends with PASSED or FAILED and a non-zero exit status on any failure.
set -uo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "$0")/setup.sh"
cd "$MINNOW_ROOT" || exit 1

failed=()
run() {  # run NAME COMMAND...: runs a stage, remembers a failure and goes on
  local name="$1"; shift
  step "$name"
  "$@" || { failed+=("$name"); printf '\n*** %s failed\n' "$name"; return 1; }
}

finish() {
  echo
  if ((${#failed[@]})); then
    echo "minnow tests: FAILED (${failed[*]})"
    exit 1
  fi
  echo "minnow tests: PASSED"
}

# Without these nothing below can run.
if ! { run "checking Debian packages" ensure_apt &&
  run "fetching models" ensure_models &&
  run "fetching tokenizer vocabularies (golden tests)" bash scripts/fetch_vocabs.sh &&
  run "Python test tools: $MINNOW_VENV" ensure_venv; }; then
  finish
fi

if run "build (ASan + UBSan): build-asan" build_asan; then
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    run "unit tests (ctest, sanitized)" ctest --test-dir build-asan --output-on-failure -j 2
fi
if run "build (Release): build/minnow" build_release; then
  MINNOW_BIN="$MINNOW_ROOT/build/minnow" \
    run "Python tests (pytest tests/python)" "$MINNOW_VENV/bin/python" -m pytest -q tests/python
fi

finish
