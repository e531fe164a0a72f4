#include "model/weights.h"

#include <cstdio>

#include "kernels/quants.h"
#include "model/tensor_names.h"

namespace minnow::model {

namespace {

// "[a, b]" / "[a]", built with snprintf: GCC 12 warns falsely (-Wrestrict) on operator+ chains.
std::string shape(int64_t a, int64_t b = -1) {
  char buf[64];
  if (b < 0)
    std::snprintf(buf, sizeof(buf), "[%lld]", static_cast<long long>(a));
  else
    std::snprintf(buf, sizeof(buf), "[%lld, %lld]", static_cast<long long>(a),
                  static_cast<long long>(b));
  return buf;
}

class Loader {
 public:
  Loader(const gguf::File& file, const ModelConfig& c) : file_(file), c_(c) {}

  // A 2-D matrix of `rows` outputs × `cols` inputs (GGUF ne = [cols, rows]).
  Status matrix(TensorName name, int layer, int64_t rows, int64_t cols, Matrix& out,
                bool optional = false) {
    const std::string n = tensor_name(name, layer);
    const gguf::TensorInfo* t = file_.find_tensor(n);
    if (!t) return optional ? Status() : missing(n);
    if (t->n_dims != 2 || t->ne[0] != uint64_t(cols) || t->ne[1] != uint64_t(rows)) {
      return wrong_shape(n, *t, shape(cols, rows));
    }
    if (!kernels::matmul_supports(t->type)) {
      return Status::error(file_.path() + ": tensor " + n + " has type " +
                           std::string(tensor_type_name(t->type)) +
                           ", which the matmul kernels do not support");
    }
    if (cols % traits(t->type).block_elems != 0) {
      return Status::error(file_.path() + ": tensor " + n + ": " + std::to_string(cols) +
                           " columns is not a whole number of " +
                           std::string(tensor_type_name(t->type)) + " blocks");
    }
    out = Matrix{t->type, t->data, rows, cols};
    return Status();
  }

  // A 1-D vector of n elements, converted to f32.
  Status vector(TensorName name, int layer, std::string_view suffix, int64_t n, Vector& out,
                bool optional = false) {
    const std::string tn = tensor_name(name, layer, suffix);
    const gguf::TensorInfo* t = file_.find_tensor(tn);
    if (!t) return optional ? Status() : missing(tn);
    if (t->n_elements != uint64_t(n) || t->ne[0] != uint64_t(n)) {
      return wrong_shape(tn, *t, shape(n));
    }
    if (!kernels::has_reference_dequantize(t->type) || n % traits(t->type).block_elems != 0) {
      return Status::error(file_.path() + ": tensor " + tn + " has type " +
                           std::string(tensor_type_name(t->type)) +
                           ", which cannot be read as a vector");
    }
    out.resize(n);
    kernels::dequantize_row_ref(t->type, t->data, out.data(), n);
    return Status();
  }

 private:
  Status missing(const std::string& name) const {
    return Status::error(file_.path() + ": missing tensor " + name + " (required by " + c_.arch +
                         ")");
  }
  Status wrong_shape(const std::string& name, const gguf::TensorInfo& t,
                     const std::string& expected) const {
    return Status::error(file_.path() + ": tensor " + name + " has shape " + t.shape_string() +
                         ", expected " + expected);
  }

  const gguf::File& file_;
  const ModelConfig& c_;
};

}  // namespace

Result<Weights> load_weights(const gguf::File& file, const ModelConfig& c) {
  Loader l(file, c);
  Weights w;
  const int64_t e = c.n_embd;
  MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kTokenEmbd, -1, c.n_vocab, e, w.token_embd));
  MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kOutputNorm, -1, "weight", e, w.output_norm));
  MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kOutput, -1, c.n_vocab, e, w.output, true));
  if (!w.output.data) {
    w.output = w.token_embd;
    w.tied_output = true;
  }
  const int64_t half_rot = c.n_rot / 2;
  MINNOW_RETURN_IF_ERROR(
      l.vector(TensorName::kRopeFreqs, -1, "weight", half_rot, w.rope_freqs, true));
  MINNOW_RETURN_IF_ERROR(
      l.vector(TensorName::kRopeFactorsLong, -1, "weight", half_rot, w.rope_long, true));
  MINNOW_RETURN_IF_ERROR(
      l.vector(TensorName::kRopeFactorsShort, -1, "weight", half_rot, w.rope_short, true));

  w.layers.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il) {
    LayerWeights& L = w.layers[il];
    MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kAttnNorm, il, "weight", e, L.attn_norm));
    if (c.fused_qkv) {
      MINNOW_RETURN_IF_ERROR(
          l.matrix(TensorName::kAttnQkv, il, c.q_dim() + c.k_dim() + c.v_dim(), e, L.wqkv));
    } else {
      MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kAttnQ, il, c.q_dim(), e, L.wq));
      MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kAttnK, il, c.k_dim(), e, L.wk));
      MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kAttnV, il, c.v_dim(), e, L.wv));
    }
    if (c.qkv_bias) {
      MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kAttnQ, il, "bias", c.q_dim(), L.bq));
      MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kAttnK, il, "bias", c.k_dim(), L.bk));
      MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kAttnV, il, "bias", c.v_dim(), L.bv));
    }
    if (c.qk_norm) {
      MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kAttnQNorm, il, "weight", c.head_dim, L.q_norm));
      MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kAttnKNorm, il, "weight", c.head_dim, L.k_norm));
    }
    MINNOW_RETURN_IF_ERROR(
        l.matrix(TensorName::kAttnOutput, il, e, int64_t(c.n_head) * c.head_dim_v, L.wo));
    if (c.post_norms) {
      MINNOW_RETURN_IF_ERROR(
          l.vector(TensorName::kPostAttnNorm, il, "weight", e, L.post_attn_norm));
      MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kPostFfwNorm, il, "weight", e, L.post_ffw_norm));
    }
    MINNOW_RETURN_IF_ERROR(l.vector(TensorName::kFfnNorm, il, "weight", e, L.ffn_norm));
    if (c.fused_gate_up) {
      MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kFfnUp, il, 2 * int64_t(c.n_ff), e, L.w_up));
    } else {
      MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kFfnGate, il, c.n_ff, e, L.w_gate));
      MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kFfnUp, il, c.n_ff, e, L.w_up));
    }
    MINNOW_RETURN_IF_ERROR(l.matrix(TensorName::kFfnDown, il, e, c.n_ff, L.w_down));
  }
  return w;
}

}  // namespace minnow::model
