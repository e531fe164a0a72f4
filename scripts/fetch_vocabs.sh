#!/usr/bin/env bash
# Fetches the vocab-only GGUF files that llama.cpp ships for its tokenizer tests
# (vendor/llama.cpp/models/ggml-vocab-*.gguf inside the llama-cpp-python source
# distribution on PyPI) into $MINNOW_VOCAB_DIR (default ~/.cache/minnow/vocab).
# The tokenizer golden tests (tests/text_tok_golden.cpp) read them from there and
# skip, with a message, when they are absent. Idempotent: does nothing when every
# file is already present.
set -euo pipefail

VERSION=0.3.36
DEST="${MINNOW_VOCAB_DIR:-$HOME/.cache/minnow/vocab}"
NAMES=(gpt-2 llama-bpe qwen2 qwen35 deepseek-llm deepseek-coder falcon starcoder refact
       command-r mpt gpt-neox aquila llama-spm phi-3 baichuan gemma-4)

missing=0
for n in "${NAMES[@]}"; do
  [[ -s "$DEST/ggml-vocab-$n.gguf" ]] || missing=1
done
if [[ $missing == 0 ]]; then
  echo "fetch_vocabs: all vocab files present in $DEST"
  exit 0
fi

mkdir -p "$DEST"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sdist="${LCP_SDIST:-}"
if [[ -z "$sdist" || ! -s "$sdist" ]]; then
  python3 -m pip download --quiet --no-deps --no-binary :all: \
    "llama-cpp-python==$VERSION" -d "$work"
  sdist="$work/llama_cpp_python-$VERSION.tar.gz"
fi

patterns=()
for n in "${NAMES[@]}"; do
  patterns+=("llama_cpp_python-$VERSION/vendor/llama.cpp/models/ggml-vocab-$n.gguf")
done
tar -xzf "$sdist" -C "$work" "${patterns[@]}"
for n in "${NAMES[@]}"; do
  src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp/models/ggml-vocab-$n.gguf"
  mv -f "$src" "$DEST/ggml-vocab-$n.gguf"
done
echo "fetch_vocabs: ${#NAMES[@]} vocab files in $DEST"
