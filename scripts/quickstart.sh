#!/usr/bin/env bash
# Quick start, step 1 of 2: installs what minnow needs (Debian packages, the models), builds the
# Release binary build/minnow and runs the main job on the default model. Safe to run again: it
# downloads and rebuilds only what is missing or out of date.
set -euo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "$0")/setup.sh"
cd "$MINNOW_ROOT"

step "checking Debian packages"
ensure_apt
step "fetching models into ${MINNOW_CACHE:-$HOME/.cache/minnow/models}"
ensure_models
step "building Release: build/minnow"
build_release minnow
step "the model store (${MINNOW_MODELS:-$HOME/.minnow/models}): the cache's models, hard-linked"
build/minnow list
step "build/minnow inspect smollm2:135m"
build/minnow inspect smollm2:135m
step "build/minnow run smollm2:135m (greedy, 64 tokens at most, with timings)"
build/minnow run smollm2:135m "In one sentence, why do small language models matter?" \
  --temperature 0 -n 64 --verbose
