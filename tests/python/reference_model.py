"""Reference forward pass, in numpy float64, for llama, qwen2, gemma3 and phi3 GGUF models.

The oracle of tests/python/test_engine_tiny.py. It is written from the maths of each
architecture as llama.cpp's GGUF conventions define it, independently of minnow's C++ (it shares
no code with src/model/ and was not written from it): weights are read and dequantized by
gguf-py, every activation is float64, and the whole sequence is recomputed at once (no KV
cache), so nothing here can share a bug with an incremental implementation.

  logits = ReferenceModel(path).logits(tokens, n_ctx=...)   # (len(tokens), n_vocab) float64
  ReferenceModel(path, kv_f16=True)   # K and V rounded to float16, as an f16 KV cache keeps them

Conventions (llama.cpp's):
  * RMSNorm: x / sqrt(mean(x^2) + eps) * w; gemma3's norm weights are used as stored (its GGUF
    already holds 1 + w).
  * RoPE over the first n_rot dims of each head, theta_i = pos * scale * base^(-2i/n_rot) /
    factor_i; "normal" rotates adjacent pairs (2i, 2i+1) (llama), "NeoX" pairs (i, i + n_rot/2)
    (qwen2, gemma3, phi3). factor_i from rope_freqs.weight (llama 3) or phi3's
    rope_factors_long / _short (long when n_ctx > rope.scaling.original_context_length).
    scale = 1 / rope.scaling.factor for linear scaling.
  * Attention: causal, GQA with query head h reading kv head h // (n_head / n_head_kv), scores
    scaled by 1/sqrt(head_dim); a sliding-window layer lets position p see keys k with
    p - k < window. gemma3: every 6th layer (il % 6 == 5) is global, the others slide with
    base 10000 and no scaling; q and k are RMS-normed per head before RoPE.
  * FFN: down(act(gate(x)) * up(x)), act = SiLU, or GELU (tanh form) for gemma3; phi3's ffn_up
    holds gate rows then up rows, its attn_qkv q rows then k then v.
  * gemma3: embeddings times sqrt(n_embd); post-attention and post-FFN norms on the block
    outputs before the residual add.
  * Output: output.weight, or token_embd.weight when absent (tied).

Checked once against llama.cpp (llama-cpp-python 0.3.36 in the system python3, f32 KV cache,
logits of every position) with
    python3 tests/python/reference_model.py MODEL --tokens IDS --n-ctx 1024 --llama-cpp
  * SmolLM2-135M-Instruct.Q4_1 dequantized to an all-F32 GGUF (`--write-f32 OUT`), 8 tokens
    1,9690,2,198,28120,905,30,1069: max |diff| 9.1e-5, logit range 44.6. On the Q4_1 file
    itself 1.36, as llama.cpp rounds activations to 8 bits against quantized weights.
  * SmolLM2 Q4_1 against tests/golden/engine/smollm2-135m.json (llama.cpp, last position of
    the 18 prompts of <= 40 tokens): same argmax on 17 (chat_list: llama.cpp's top two are
    0.30 apart), top-40 and probe logits within 0.65 of ranges 30 to 49.
  * gemma-3-270m dequantized to F32, 8 tokens 2,105,2364,107,9259,1902,236888,106: max |diff|
    0.035, logit range 114 (3e-4). ggml's GELU reads an f16 table; emulating it brings the tiny
    gemma3 model's 2.3e-3 down to 4.8e-4. (Q4_K_M file itself: 1.68.)
  * tiny f32 models from minnow_make_tiny_model, 40 tokens: max |diff| 1.0e-6 (llama),
    7.8e-7 (qwen2), 9.1e-7 (phi3), 2.3e-3 (gemma3, the GELU table); logit range ~8. Every
    position has the same argmax. A gemma3 window of 5 instead of 4 gives 4.1, layer 6 made
    global 1.4. Variants: llama tied 5.7e-6, rope_freqs 9.7e-7, mha 9.8e-7; qwen2 tied 4.4e-6;
    phi3 longrope at n_ctx 256 (short factors) 9.1e-7 and 512 (long) 9.2e-7; gemma3 mqa and
    rope_scaling 1.9e-3 and 2.0e-3 (the GELU table again).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ARCHS = ("llama", "qwen2", "gemma3", "phi3")
NEOX = {"qwen2", "gemma3", "phi3"}

# Output layers bigger than this many elements are multiplied in row chunks, so a 262k-token
# vocabulary never needs a float64 copy of the whole matrix.
_CHUNK_ELEMS = 1 << 24


def _field(reader: GGUFReader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


class ReferenceModel:
    def __init__(self, path: str | Path, kv_f16: bool = False):
        """kv_f16: round K and V to float16 as an f16 KV cache stores them (llama.cpp's
        default, and minnow's); everything else stays float64."""
        self.path = str(path)
        self.kv_f16 = kv_f16
        self.reader = GGUFReader(self.path)
        r = self.reader
        self.arch = _field(r, "general.architecture")
        if self.arch not in ARCHS:
            raise ValueError(f"{self.path}: architecture {self.arch!r} is not one of {ARCHS}")
        a = self.arch + "."
        self.n_embd = int(_field(r, a + "embedding_length"))
        self.n_layer = int(_field(r, a + "block_count"))
        self.n_ff = int(_field(r, a + "feed_forward_length"))
        self.n_head = int(_field(r, a + "attention.head_count"))
        self.n_head_kv = int(_field(r, a + "attention.head_count_kv", self.n_head))
        self.head_dim = int(_field(r, a + "attention.key_length", self.n_embd // self.n_head))
        self.head_dim_v = int(_field(r, a + "attention.value_length", self.head_dim))
        self.n_rot = int(_field(r, a + "rope.dimension_count", self.head_dim))
        self.eps = float(_field(r, a + "attention.layer_norm_rms_epsilon"))
        self.freq_base = float(_field(r, a + "rope.freq_base", 10000.0))
        factor = float(_field(r, a + "rope.scaling.factor", 0.0) or 0.0)
        self.freq_scale = 1.0 / factor if factor > 0 else 1.0
        self.n_ctx_train = int(_field(r, a + "context_length"))
        self.n_ctx_orig = int(_field(r, a + "rope.scaling.original_context_length",
                                     self.n_ctx_train))
        self.window = int(_field(r, a + "attention.sliding_window", 0) or 0)
        self._tensors = {t.name: t for t in r.tensors}
        self._cache: dict[str, np.ndarray] = {}
        self.n_vocab = int(self._tensors["token_embd.weight"].shape[1])

    # -- weights ------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._tensors

    def w(self, name: str) -> np.ndarray:
        """The tensor as float32 in numpy order (rows, cols) = (ne[1], ne[0])."""
        if name not in self._cache:
            t = self._tensors.get(name)
            if t is None:
                raise KeyError(f"{self.path}: tensor {name} is missing")
            ne = [int(x) for x in t.shape]
            x = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
            self._cache[name] = x.reshape(list(reversed(ne)))
        return self._cache[name]

    def _embed_rows(self, tokens) -> np.ndarray:
        return self.w("token_embd.weight")[np.asarray(tokens)].astype(np.float64)

    @staticmethod
    def _linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """x (T, in) float64 times w (out, in): (T, out) float64."""
        if w.size <= _CHUNK_ELEMS:
            y = x @ w.astype(np.float64).T
        else:
            step = max(1, _CHUNK_ELEMS // w.shape[1])
            y = np.empty((x.shape[0], w.shape[0]))
            for i in range(0, w.shape[0], step):
                y[:, i:i + step] = x @ w[i:i + step].astype(np.float64).T
        if bias is not None:
            y = y + bias
        return y

    def _rms_norm(self, x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps)
        return y * w if w is not None else y

    # -- blocks -------------------------------------------------------------------------------
    def _rope(self, x: np.ndarray, pos: np.ndarray, base: float, scale: float,
              factors: np.ndarray | None) -> np.ndarray:
        """x (T, H, D): rotates the first n_rot dims of every head."""
        n_rot = self.n_rot
        half = n_rot // 2
        inv = base ** (-2.0 * np.arange(half) / n_rot)  # (half,)
        if factors is not None:
            inv = inv / factors.astype(np.float64)
        theta = scale * pos[:, None].astype(np.float64) * inv[None, :]  # (T, half)
        cos = np.cos(theta)[:, None, :]
        sin = np.sin(theta)[:, None, :]
        y = x.copy()
        if self.arch in NEOX:
            a, b = x[..., :half], x[..., half:n_rot]
            y[..., :half] = a * cos - b * sin
            y[..., half:n_rot] = a * sin + b * cos
        else:
            a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
            y[..., 0:n_rot:2] = a * cos - b * sin
            y[..., 1:n_rot:2] = a * sin + b * cos
        return y

    def _rope_factors(self, n_ctx: int) -> np.ndarray | None:
        if self.has("rope_freqs.weight"):
            return self.w("rope_freqs.weight")
        if self.arch == "phi3" and self.has("rope_factors_long.weight"):
            name = "rope_factors_long" if n_ctx > self.n_ctx_orig else "rope_factors_short"
            return self.w(name + ".weight")
        return None

    def is_swa(self, il: int) -> bool:
        return self.arch == "gemma3" and self.window > 0 and il % 6 < 5

    def _attention(self, il: int, h: np.ndarray, pos: np.ndarray, n_ctx: int) -> np.ndarray:
        T = h.shape[0]
        H, Hkv, D, Dv = self.n_head, self.n_head_kv, self.head_dim, self.head_dim_v
        p = f"blk.{il}."
        if self.arch == "phi3":
            qkv = self._linear(h, self.w(p + "attn_qkv.weight"))
            q, k, v = np.split(qkv, [H * D, H * D + Hkv * D], axis=1)
        else:
            def proj(n):
                b = self.w(p + n + ".bias") if self.has(p + n + ".bias") else None
                return self._linear(h, self.w(p + n + ".weight"), b)
            q, k, v = proj("attn_q"), proj("attn_k"), proj("attn_v")
        q = q.reshape(T, H, D)
        k = k.reshape(T, Hkv, D)
        v = v.reshape(T, Hkv, Dv)
        if self.arch == "gemma3":
            q = self._rms_norm(q, self.w(p + "attn_q_norm.weight"))
            k = self._rms_norm(k, self.w(p + "attn_k_norm.weight"))
        base, scale = self.freq_base, self.freq_scale
        if self.is_swa(il):
            base, scale = 10000.0, 1.0
        factors = self._rope_factors(n_ctx)
        q = self._rope(q, pos, base, scale, factors)
        k = self._rope(k, pos, base, scale, factors)
        if self.kv_f16:  # a KV cache that stores K (after RoPE) and V as IEEE halves
            k = k.astype(np.float16).astype(np.float64)
            v = v.astype(np.float16).astype(np.float64)

        qp, kp = pos[:, None], pos[None, :]
        allowed = kp <= qp
        if self.is_swa(il):
            allowed &= (qp - kp) < self.window
        group = H // Hkv
        out = np.empty((T, H, Dv))
        for hh in range(H):
            kh = hh // group
            s = (q[:, hh, :] @ k[:, kh, :].T) / math.sqrt(D)  # (T, T)
            s = np.where(allowed, s, -np.inf)
            s = s - s.max(axis=1, keepdims=True)
            e = np.exp(s)
            out[:, hh, :] = (e / e.sum(axis=1, keepdims=True)) @ v[:, kh, :]
        return self._linear(out.reshape(T, H * Dv), self.w(p + "attn_output.weight"))

    def _ffn(self, il: int, h: np.ndarray) -> np.ndarray:
        p = f"blk.{il}."
        if self.arch == "phi3":
            gate, up = np.split(self._linear(h, self.w(p + "ffn_up.weight")), 2, axis=1)
        else:
            gate = self._linear(h, self.w(p + "ffn_gate.weight"))
            up = self._linear(h, self.w(p + "ffn_up.weight"))
        if self.arch == "gemma3":
            act = 0.5 * gate * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) *
                                              (gate + 0.044715 * gate ** 3)))
        else:
            act = gate / (1.0 + np.exp(-gate))
        return self._linear(act * up, self.w(p + "ffn_down.weight"))

    # -- the model ----------------------------------------------------------------------------
    def hidden(self, tokens, n_ctx: int | None = None) -> np.ndarray:
        """The normed final hidden states (T, n_embd) of tokens at positions 0..T-1."""
        n_ctx = n_ctx or self.n_ctx_train
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.size == 0:
            raise ValueError("no tokens")
        if tokens.min() < 0 or tokens.max() >= self.n_vocab:
            raise ValueError(f"token id out of range [0, {self.n_vocab})")
        pos = np.arange(tokens.size)
        x = self._embed_rows(tokens)
        if self.arch == "gemma3":
            x = x * math.sqrt(self.n_embd)
        for il in range(self.n_layer):
            p = f"blk.{il}."
            h = self._rms_norm(x, self.w(p + "attn_norm.weight"))
            a = self._attention(il, h, pos, n_ctx)
            if self.arch == "gemma3":
                a = self._rms_norm(a, self.w(p + "post_attention_norm.weight"))
            x = x + a
            h = self._rms_norm(x, self.w(p + "ffn_norm.weight"))
            f = self._ffn(il, h)
            if self.arch == "gemma3":
                f = self._rms_norm(f, self.w(p + "post_ffw_norm.weight"))
            x = x + f
        return self._rms_norm(x, self.w("output_norm.weight"))

    def logits(self, tokens, n_ctx: int | None = None, last_only: bool = False) -> np.ndarray:
        """(T, n_vocab) float64 logits at every position (or (1, n_vocab) with last_only)."""
        h = self.hidden(tokens, n_ctx)
        if last_only:
            h = h[-1:]
        out = "output.weight" if self.has("output.weight") else "token_embd.weight"
        return self._linear(h, self.w(out))


# ------------------------------------------------------------------------------------------
# One-off check against llama.cpp (system python3 with llama-cpp-python; not run by pytest).

def llama_cpp_logits(path: str, tokens: list[int], n_ctx: int) -> np.ndarray:
    import llama_cpp  # only in the system python3

    m = llama_cpp.Llama(model_path=path, logits_all=True, n_ctx=n_ctx, n_batch=512,
                        n_threads=2, verbose=False,
                        type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    m.eval(tokens)
    return np.array(m.scores[:len(tokens)], dtype=np.float64)


def write_f32(src: str, dst: str) -> None:
    """Copies a GGUF with every tensor dequantized to F32, so that llama.cpp computes the same
    weights without rounding activations to 8 bits."""
    from gguf import GGUFValueType, GGUFWriter

    r = GGUFReader(src)
    w = GGUFWriter(dst, _field(r, "general.architecture"))
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            w.add_uint32(key, 0)  # ALL_F32
            continue
        vtype = f.types[0]
        w.add_key_value(key, f.contents(), vtype,
                        sub_type=f.types[-1] if vtype == GGUFValueType.ARRAY else None)
    for t in r.tensors:
        x = dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, x.reshape(list(reversed([int(n) for n in t.shape]))))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", help="comma-separated token ids")
    ap.add_argument("--write-f32", metavar="OUT", help="write MODEL with F32 tensors to OUT")
    ap.add_argument("--n-ctx", type=int, default=None)
    ap.add_argument("--llama-cpp", action="store_true",
                    help="compare every position with llama.cpp (llama-cpp-python)")
    args = ap.parse_args()
    if args.write_f32:
        write_f32(args.model, args.write_f32)
        return 0
    if not args.tokens:
        ap.error("--tokens is required")
    tokens = [int(t) for t in args.tokens.split(",")]
    ref = ReferenceModel(args.model)
    n_ctx = args.n_ctx or min(ref.n_ctx_train, 1024)
    lg = ref.logits(tokens, n_ctx)
    print(f"{ref.arch}: {len(tokens)} tokens, n_vocab {ref.n_vocab}, argmax "
          f"{lg.argmax(axis=1).tolist()}, logit range {lg.min():.3f}..{lg.max():.3f}")
    if args.llama_cpp:
        lc = llama_cpp_logits(args.model, tokens, n_ctx)
        d = np.abs(lc - lg)
        print(f"vs llama.cpp: max |diff| {d.max():.3g} (per position "
              f"{np.round(d.max(axis=1), 5).tolist()}), same argmax "
              f"{(lc.argmax(axis=1) == lg.argmax(axis=1)).mean() * 100:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
