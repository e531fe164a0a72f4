// GGUF (v2 and v3) reader over mmap, and a writer.
//
// File layout (little-endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x { string key | u32 value_type | value }
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 tensor_type | u64 offset }
//   padding to `general.alignment` (default 32) | tensor data (offsets relative to here)
// where string = u64 length + bytes, and array = u32 elem_type + u64 count + elements.
//
// The reader validates every length, count, type and offset against the file size before
// using it, so a corrupt or hostile file yields an error naming the file, the field and its
// byte offset — never a crash, an over-read or an allocation the file cannot back.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gguf/tensor_type.h"
#include "util/status.h"

namespace minnow::gguf {

constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxAlignment = 1u << 20;  // larger is treated as corruption
constexpr uint64_t kMaxKeyBytes = 65535;      // the spec's bound on key (and here name) length
constexpr int kMaxDims = 4;
constexpr int kMaxArrayNesting = 4;  // arrays of arrays, bounded to keep recursion shallow
// Bounds on counts whose entries cost far more memory than file bytes (~150 bytes each for 14
// to 33 bytes of file), so that no file, however large, makes the reader allocate gigabytes.
// Real models have tens of keys, at most a few thousand tensors, and no nested arrays.
constexpr uint64_t kMaxMetadataEntries = 1u << 20;
constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxNestedArrayItems = 1u << 20;  // summed over the whole file

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

std::string_view value_type_name(ValueType type);  // "u32", "string", "array"...
bool is_valid_value_type(uint32_t raw);
// Bytes of one element of a fixed-size type; 0 for STRING and ARRAY.
uint32_t value_type_size(ValueType type);

// One metadata value. Strings and numeric array elements point into the mapped file.
struct Value {
  ValueType type = ValueType::U8;
  uint64_t file_offset = 0;  // where the value's bytes start

  // Scalars, widened: unsigned ints and BOOL in u64, signed ints in i64, floats in f64.
  uint64_t u64 = 0;
  int64_t i64 = 0;
  double f64 = 0;
  std::string_view str;  // STRING

  // ARRAY
  ValueType elem_type = ValueType::U8;
  uint64_t count = 0;  // elements; for STRING / ARRAY elements also strings.size() / items.size()
  const uint8_t* elems = nullptr;         // fixed-size elements, packed, possibly unaligned
  std::vector<std::string_view> strings;  // elem_type == STRING
  std::vector<Value> items;               // elem_type == ARRAY

  // Element i (< count) of a fixed-size numeric array, converted to double / int64 (any
  // numeric type; floats saturate to the int64 range, NaN gives 0).
  double elem_f64(uint64_t i) const;
  int64_t elem_i64(uint64_t i) const;
};

// Array values to hand to Writer::add_value; they point at the caller's elements and strings.
Value numeric_array(ValueType elem, uint64_t count, const void* elems);  // fixed-size elem types
Value string_array(std::vector<std::string_view> strings);
Value array_of_arrays(std::vector<Value> items);  // each item itself an array Value

struct KeyValue {
  std::string_view key;
  Value value;
};

struct TensorInfo {
  std::string_view name;
  TensorType type = TensorType::F32;
  uint32_t n_dims = 0;
  std::array<uint64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint64_t offset = 0;       // relative to the data section
  uint64_t info_offset = 0;  // file offset of this tensor's info record
  const uint8_t* data = nullptr;

  uint64_t rows() const { return n_elements / ne[0]; }
  std::string shape_string() const;  // "[576, 49152]"
};

class File {
 public:
  // Maps and validates the file at `path`.
  static Result<std::unique_ptr<File>> open(const std::string& path);
  // Validates a buffer the caller keeps alive (fuzzing, tests). `name` is used in messages.
  static Result<std::unique_ptr<File>> parse(std::string name, const uint8_t* data, size_t size);

  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }
  const uint8_t* bytes() const { return data_; }

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed accessors: an error names the file and key when it is missing ("<file>: metadata key
  // '<key>' is missing") or has another type ("<file>: value of '<key>' at offset <N>: has type
  // string, expected u32").
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<int32_t> get_i32(std::string_view key) const;
  Result<int64_t> get_i64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<double> get_f64(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  // Any unsigned or non-negative signed integer type (writers differ between u32 and u64).
  Result<uint64_t> get_uint(std::string_view key) const;
  // The array value, checked to be an array whose elements have type `elem` .
  Result<const Value*> get_array(std::string_view key, ValueType elem) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  uint64_t total_tensor_bytes() const;

 private:
  File() = default;
  Status parse_all();
  Result<const Value*> typed(std::string_view key, ValueType type) const;
  Status key_error(std::string_view key, const Value& v, std::string_view problem) const;

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;

  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// Builds a GGUF file (v3 unless set_version(2)). Keys and tensors are written in the order they
// are added. write() refuses what the reader would reject (bad alignment, duplicate keys);
// to_bytes() returns exactly what was asked for, which is how tests build malformed files.
class Writer {
 public:
  // An alignment other than the default is also written as general.alignment; do not add that
  // key yourself.
  explicit Writer(uint32_t alignment = kDefaultAlignment);

  // v2 and v3 share one layout (v3 only allowed big-endian files, which this writer never makes).
  void set_version(uint32_t version) { version_ = version; }

  void add_u8(std::string_view key, uint8_t v);
  void add_i8(std::string_view key, int8_t v);
  void add_u16(std::string_view key, uint16_t v);
  void add_i16(std::string_view key, int16_t v);
  void add_u32(std::string_view key, uint32_t v);
  void add_i32(std::string_view key, int32_t v);
  void add_u64(std::string_view key, uint64_t v);
  void add_i64(std::string_view key, int64_t v);
  void add_f32(std::string_view key, float v);
  void add_f64(std::string_view key, double v);
  void add_bool(std::string_view key, bool v);
  void add_string(std::string_view key, std::string_view v);
  void add_string_array(std::string_view key, const std::vector<std::string>& v);
  void add_f32_array(std::string_view key, const std::vector<float>& v);
  void add_i32_array(std::string_view key, const std::vector<int32_t>& v);
  void add_u32_array(std::string_view key, const std::vector<uint32_t>& v);
  // A fixed-size numeric array from raw little-endian element bytes.
  void add_array_raw(std::string_view key, ValueType elem, uint64_t count, const void* elems);
  // Any value in the reader's representation: copies metadata from a File, and builds nested
  // arrays (items, each with its own elem_type) and arrays of any element type. For arrays of
  // STRING / ARRAY the elements are strings / items; otherwise `count` elements at `elems`.
  void add_value(std::string_view key, const Value& v);

  // `ne[0]` is the row length; data holds row_bytes(type, ne[0]) * rows bytes (copied).
  Status add_tensor(std::string_view name, TensorType type, const std::vector<uint64_t>& ne,
                    const void* data, size_t n_bytes);

  std::vector<uint8_t> to_bytes() const;
  // Whether the file would be valid: alignment, version, unique keys, add_array_raw types.
  Status validate() const;
  // Validates, then writes to `path` through a temporary file renamed into place.
  Status write(const std::string& path) const;

 private:
  void begin_kv(std::string_view key, ValueType type);
  template <typename T>
  void put(T v);
  void put_string(std::string_view s);
  void put_array_body(const Value& v);  // elem_type, count, elements
  void note_problem(std::string problem) {
    if (problem_.empty()) problem_ = std::move(problem);
  }

  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> data;
  };

  uint32_t alignment_;
  uint32_t version_ = 3;
  uint64_t n_kv_ = 0;
  std::unordered_set<std::string> keys_;
  std::string problem_;  // the first reason validate() fails, if any
  std::vector<uint8_t> kv_bytes_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace minnow::gguf
