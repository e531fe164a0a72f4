// Driven by tests/python/test_gguf_writer.py, which checks minnow's GGUF writer and reader
// against gguf-py (an independent implementation):
//
//   gguf_write_sample write OUT.gguf [ALIGNMENT [VERSION]]
//       writes a file with every metadata value type (arrays of every element type, arrays of
//       strings, nested arrays) and tensors of several types and ranks; prints, as JSON, what it
//       meant to write (built from the same values it hands to the writer, not read back).
//   gguf_write_sample dump IN.gguf
//       reads a file with minnow's reader and prints what it read as JSON.
//   gguf_write_sample types
//       prints minnow's tensor type table (name, id, block elements, block bytes).
//
// JSON: {"version", "alignment", "metadata": [{"key", "type", "value"}...],
//        "tensors": [{"name", "type", "shape", "n_bytes", "data_hex"}...]}; dump adds
// "data_offset" and each tensor's "offset". An array is {"type": "array", "elem_type", "value"}
// whose value is a list of scalars, or for nested arrays a list of {"elem_type", "value"}.
// Non-finite floats are the strings "nan", "inf", "-inf".
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace {

using minnow::TensorType;
using minnow::gguf::Value;
using minnow::gguf::ValueType;
using nlohmann::json;

json float_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

json element_json(const Value& v, uint64_t i) {
  switch (v.elem_type) {
    case ValueType::F32:
    case ValueType::F64:
      return float_json(v.elem_f64(i));
    case ValueType::BOOL:
      return v.elem_i64(i) != 0;
    case ValueType::U64: {
      uint64_t u;
      std::memcpy(&u, v.elems + 8 * i, 8);
      return u;
    }
    default:
      return v.elem_i64(i);
  }
}

// The elements of an array value (a list; nested arrays as {"elem_type", "value"} objects).
json array_json(const Value& v) {
  json out = json::array();
  switch (v.elem_type) {
    case ValueType::STRING:
      for (std::string_view s : v.strings) out.push_back(std::string(s));
      break;
    case ValueType::ARRAY:
      for (const Value& item : v.items) {
        out.push_back({{"elem_type", minnow::gguf::value_type_name(item.elem_type)},
                       {"value", array_json(item)}});
      }
      break;
    default:
      for (uint64_t i = 0; i < v.count; ++i) out.push_back(element_json(v, i));
  }
  return out;
}

json value_json(std::string_view key, const Value& v) {
  json j = {{"key", std::string(key)}, {"type", minnow::gguf::value_type_name(v.type)}};
  switch (v.type) {
    case ValueType::U8:
    case ValueType::U16:
    case ValueType::U32:
    case ValueType::U64:
      j["value"] = v.u64;
      break;
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
      j["value"] = v.i64;
      break;
    case ValueType::F32:
    case ValueType::F64:
      j["value"] = float_json(v.f64);
      break;
    case ValueType::BOOL:
      j["value"] = v.u64 != 0;
      break;
    case ValueType::STRING:
      j["value"] = std::string(v.str);
      break;
    case ValueType::ARRAY:
      j["elem_type"] = minnow::gguf::value_type_name(v.elem_type);
      j["value"] = array_json(v);
      break;
  }
  return j;
}

std::string hex(const uint8_t* p, uint64_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (uint64_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

json tensor_json(std::string_view name, TensorType type, const std::vector<uint64_t>& ne,
                 const uint8_t* data, uint64_t n_bytes) {
  return {{"name", std::string(name)},
          {"type", std::string(minnow::tensor_type_name(type))},
          {"shape", ne},
          {"n_bytes", n_bytes},
          {"data_hex", hex(data, n_bytes)}};
}

Value scalar(ValueType type) {
  Value v;
  v.type = type;
  return v;
}
Value u(ValueType type, uint64_t x) {
  Value v = scalar(type);
  v.u64 = x;
  return v;
}
Value i(ValueType type, int64_t x) {
  Value v = scalar(type);
  v.i64 = x;
  return v;
}
Value f(ValueType type, double x) {
  Value v = scalar(type);
  v.f64 = x;
  return v;
}
Value s(std::string_view x) {
  Value v = scalar(ValueType::STRING);
  v.str = x;
  return v;
}

// Element storage for the sample's arrays; static so the Values can point at it.
const uint8_t kU8s[] = {0, 1, 127, 255};
const int8_t kI8s[] = {-128, -1, 0, 127};
const uint16_t kU16s[] = {0, 1, 65535};
const int16_t kI16s[] = {-32768, 0, 32767};
const uint32_t kU32s[] = {0, 4294967295u, 12345};
const int32_t kI32s[] = {-2147483647 - 1, -1, 0, 2147483647};
const uint64_t kU64s[] = {0, 18446744073709551615ull, 1ull << 53};
const int64_t kI64s[] = {std::numeric_limits<int64_t>::min(), -1,
                         std::numeric_limits<int64_t>::max()};
const float kF32s[] = {0.0f, -1.5f, 3.14159274f, 1e-38f, 3.4e38f};
const double kF64s[] = {0.1, -2.5e-300, 1.7976931348623157e308};
const uint8_t kBools[] = {1, 0, 0, 1};
const int32_t kRow0[] = {1, 2, 3};
const int32_t kRow1[] = {4};
const int32_t kRow2[] = {5, 6};

std::vector<std::pair<std::string, Value>> sample_metadata() {
  using VT = ValueType;
  using minnow::gguf::numeric_array;
  return {
      {"general.architecture", s("llama")},
      {"general.name", s("minnow writer sample \xe2\x9c\x93")},
      {"sample.u8", u(VT::U8, 255)},
      {"sample.i8", i(VT::I8, -128)},
      {"sample.u16", u(VT::U16, 65535)},
      {"sample.i16", i(VT::I16, -32768)},
      {"sample.u32", u(VT::U32, 4294967295u)},
      {"sample.i32", i(VT::I32, -2147483647 - 1)},
      {"sample.u64", u(VT::U64, 18446744073709551615ull)},
      {"sample.i64", i(VT::I64, std::numeric_limits<int64_t>::min())},
      {"sample.f32", f(VT::F32, -0.333333343267f)},
      {"sample.f64", f(VT::F64, 2.718281828459045)},
      {"sample.bool_true", u(VT::BOOL, 1)},
      {"sample.bool_false", u(VT::BOOL, 0)},
      {"sample.string", s("tab\tquote\" backslash\\ caf\xc3\xa9 \xf0\x9f\x90\x9f")},
      {"sample.string_empty", s("")},
      {"sample.arr_u8", numeric_array(VT::U8, 4, kU8s)},
      {"sample.arr_i8", numeric_array(VT::I8, 4, kI8s)},
      {"sample.arr_u16", numeric_array(VT::U16, 3, kU16s)},
      {"sample.arr_i16", numeric_array(VT::I16, 3, kI16s)},
      {"sample.arr_u32", numeric_array(VT::U32, 3, kU32s)},
      {"sample.arr_i32", numeric_array(VT::I32, 4, kI32s)},
      {"sample.arr_u64", numeric_array(VT::U64, 3, kU64s)},
      {"sample.arr_i64", numeric_array(VT::I64, 3, kI64s)},
      {"sample.arr_f32", numeric_array(VT::F32, 5, kF32s)},
      {"sample.arr_f64", numeric_array(VT::F64, 3, kF64s)},
      {"sample.arr_bool", numeric_array(VT::BOOL, 4, kBools)},
      {"sample.arr_string",
       minnow::gguf::string_array({"<s>", "", "\xe2\x96\x81hello", "a b\nc", "\xe4\xb8\xad"})},
      {"sample.arr_nested_i32", minnow::gguf::array_of_arrays({numeric_array(VT::I32, 3, kRow0),
                                                               numeric_array(VT::I32, 1, kRow1),
                                                               numeric_array(VT::I32, 2, kRow2)})},
      {"sample.arr_nested_string",
       minnow::gguf::array_of_arrays(
           {minnow::gguf::string_array({"ab", "c"}), minnow::gguf::string_array({"def"})})},
  };
}

struct SampleTensor {
  std::string name;
  TensorType type;
  std::vector<uint64_t> ne;
};

std::vector<SampleTensor> sample_tensors() {
  return {
      {"token_embd.weight", TensorType::Q8_0, {64, 3}},
      {"blk.0.attn_q.weight", TensorType::Q4_K, {256, 2}},
      {"blk.0.attn_norm.weight", TensorType::F32, {7}},
      {"blk.0.ffn_down.weight", TensorType::Q6_K, {256, 1}},
      {"blk.0.ffn_up.weight", TensorType::Q4_0, {32, 2, 2}},
      {"blk.0.ffn_gate.weight", TensorType::Q4_1, {32, 1}},
      {"blk.0.f16", TensorType::F16, {3, 2, 2, 2}},
      {"blk.0.bf16", TensorType::BF16, {5}},
      {"blk.0.q5_k", TensorType::Q5_K, {256}},
      {"blk.0.i8", TensorType::I8, {3}},
      {"blk.0.i32", TensorType::I32, {2, 3}},
      {"output.weight", TensorType::F64, {2}},
  };
}

// Deterministic bytes (xorshift), different for each tensor.
std::vector<uint8_t> sample_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

int cmd_write(const std::string& path, uint32_t alignment, uint32_t version) {
  minnow::gguf::Writer w(alignment);
  w.set_version(version);
  json meta = json::array();
  if (alignment != minnow::gguf::kDefaultAlignment) {
    meta.push_back(value_json(minnow::gguf::kAlignmentKey, u(ValueType::U32, alignment)));
  }
  for (const auto& [key, value] : sample_metadata()) {
    w.add_value(key, value);
    meta.push_back(value_json(key, value));
  }
  json tensors = json::array();
  uint32_t seed = 1;
  for (const SampleTensor& t : sample_tensors()) {
    const minnow::TensorTypeTraits& tt = minnow::traits(t.type);
    uint64_t n = 1;
    for (uint64_t d : t.ne) n *= d;
    std::vector<uint8_t> data = sample_bytes(n / tt.block_elems * tt.block_bytes, seed++);
    minnow::Status st = w.add_tensor(t.name, t.type, t.ne, data.data(), data.size());
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.message().c_str());
      return 1;
    }
    tensors.push_back(tensor_json(t.name, t.type, t.ne, data.data(), data.size()));
  }
  minnow::Status st = w.write(path);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 1;
  }
  json out = {
      {"version", version}, {"alignment", alignment}, {"metadata", meta}, {"tensors", tensors}};
  std::cout << out.dump(1) << "\n";
  return 0;
}

int cmd_dump(const std::string& path) {
  auto file = minnow::gguf::File::open(path);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.error().c_str());
    return 1;
  }
  const minnow::gguf::File& f = **file;
  json meta = json::array();
  for (const auto& kv : f.metadata()) meta.push_back(value_json(kv.key, kv.value));
  json tensors = json::array();
  for (const auto& t : f.tensors()) {
    std::vector<uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    json j = tensor_json(t.name, t.type, ne, t.data, t.n_bytes);
    j["offset"] = t.offset;
    tensors.push_back(j);
  }
  json out = {{"version", f.version()},
              {"alignment", f.alignment()},
              {"data_offset", f.data_offset()},
              {"metadata", meta},
              {"tensors", tensors}};
  std::cout << out.dump(1) << "\n";
  return 0;
}

int cmd_types() {
  json out = json::array();
  for (uint32_t id = 0; id < 256; ++id) {
    auto tt = minnow::tensor_type_traits(id);
    if (!tt) continue;
    out.push_back({{"name", std::string(tt->name)},
                   {"id", id},
                   {"block_elems", tt->block_elems},
                   {"block_bytes", tt->block_bytes}});
  }
  std::cout << out.dump(1) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 2 && args.size() <= 4 && args[0] == "write") {
    uint32_t alignment = args.size() > 2 ? static_cast<uint32_t>(std::stoul(args[2]))
                                         : minnow::gguf::kDefaultAlignment;
    uint32_t version = args.size() > 3 ? static_cast<uint32_t>(std::stoul(args[3])) : 3;
    return cmd_write(args[1], alignment, version);
  }
  if (args.size() == 2 && args[0] == "dump") return cmd_dump(args[1]);
  if (args.size() == 1 && args[0] == "types") return cmd_types();
  std::fprintf(stderr,
               "usage: gguf_write_sample write OUT.gguf [ALIGNMENT [VERSION]]\n"
               "       gguf_write_sample dump IN.gguf\n"
               "       gguf_write_sample types\n");
  return 2;
}
