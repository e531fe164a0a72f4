#include "text/jinja/interpreter.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "text/jinja/builtins.h"
#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

#define JTRY(lhs, expr)                                                   \
  auto JCAT(jtry_, __LINE__) = (expr);                                    \
  if (!JCAT(jtry_, __LINE__).ok()) return JCAT(jtry_, __LINE__).status(); \
  lhs = std::move(JCAT(jtry_, __LINE__)).value()
#define JCAT(a, b) JCAT2(a, b)
#define JCAT2(a, b) a##b

const Value* Frame::find(std::string_view name) const {
  for (const auto& [k, v] : vars) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Frame::set(std::string name, Value value) {
  for (auto& [k, v] : vars) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(std::move(name), std::move(value));
}

namespace {

// A macro (or the body of a {% call %} block, which becomes `caller`).
class MacroObject final : public Object {
 public:
  MacroObject(const Stmt* def, std::shared_ptr<Frame> closure, std::string name)
      : def_(def), closure_(std::move(closure)), name_(std::move(name)) {}
  std::string_view type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro '" + name_ + "'>"; }
  bool callable() const override { return true; }
  Result<Value> call(Interpreter& in, Args& args) override {
    Value caller;
    for (size_t i = 0; i < args.kw.size(); ++i) {
      if (args.kw[i].first == "caller") {
        caller = args.kw[i].second;
        args.kw.erase(args.kw.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
    auto r = in.call_macro(*def_, closure_, name_, args, caller);
    if (!r.ok()) return r.status();
    return Value(std::move(*r));
  }
  std::optional<Value> attr(std::string_view name) const override {
    if (name == "name") return Value(name_);
    if (name == "arguments") {
      std::vector<Value> params(def_->params.begin(), def_->params.end());
      return Value::tuple(std::move(params));
    }
    return std::nullopt;
  }
  void release() override { closure_.reset(); }

 private:
  const Stmt* def_;
  std::shared_ptr<Frame> closure_;
  std::string name_;
};

// jinja2's LoopContext: one per executing for-statement, advanced in place.
class LoopObject final : public Object, public std::enable_shared_from_this<LoopObject> {
 public:
  LoopObject(std::shared_ptr<const std::vector<Value>> items, int depth, const Stmt* stmt,
             std::weak_ptr<Frame> scope)
      : items_(std::move(items)), depth_(depth), stmt_(stmt), scope_(std::move(scope)) {}

  std::string_view type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index0_ + 1) + "/" + std::to_string(n()) + ">";
  }
  bool callable() const override { return stmt_->recursive; }
  Result<Value> call(Interpreter& in, Args& args) override {
    if (!stmt_->recursive) {
      return Status::error(
          "Tried to call non recursive loop. Maybe you forgot the 'recursive' "
          "modifier.");
    }
    auto scope = scope_.lock();
    if (!active_ || !scope || args.pos.size() != 1 || !args.kw.empty()) {
      return Status::error("a recursive loop takes one iterable, inside the loop");
    }
    auto r = in.run_loop(*stmt_, args.pos[0], scope, depth_ + 1);
    if (!r.ok()) return r.status();
    return Value(std::move(*r));
  }
  std::optional<Value> attr(std::string_view name) const override;
  void set_index(int64_t i) { index0_ = i; }
  void finish() { active_ = false; }
  Value cycle(const Args& args) const {
    if (args.pos.empty()) return Value();
    return args.pos[static_cast<size_t>(index0_) % args.pos.size()];
  }
  bool changed(const Args& args) {
    Value v = Value::list(args.pos);
    if (has_last_ && equals(last_changed_, v)) return false;
    has_last_ = true;
    last_changed_ = std::move(v);
    return true;
  }

 private:
  int64_t n() const { return static_cast<int64_t>(items_->size()); }
  std::shared_ptr<const std::vector<Value>> items_;
  int depth_;
  const Stmt* stmt_;
  std::weak_ptr<Frame> scope_;
  int64_t index0_ = 0;
  bool active_ = true;
  bool has_last_ = false;
  Value last_changed_;
};

// loop.cycle / loop.changed as callables.
class LoopMethod final : public Object {
 public:
  LoopMethod(std::shared_ptr<LoopObject> loop, bool cycle)
      : loop_(std::move(loop)), cycle_(cycle) {}
  std::string_view type_name() const override { return "method"; }
  std::string repr() const override {
    return cycle_ ? "<bound method cycle>" : "<bound method changed>";
  }
  bool callable() const override { return true; }
  Result<Value> call(Interpreter&, Args& args) override {
    if (cycle_) {
      if (args.pos.empty()) return Status::error("no items for cycling given");
      return loop_->cycle(args);
    }
    return Value(loop_->changed(args));
  }

 private:
  std::shared_ptr<LoopObject> loop_;
  bool cycle_;
};

std::optional<Value> LoopObject::attr(std::string_view name) const {
  const int64_t len = n();
  if (name == "index") return Value(index0_ + 1);
  if (name == "index0") return Value(index0_);
  if (name == "revindex") return Value(len - index0_);
  if (name == "revindex0") return Value(len - index0_ - 1);
  if (name == "first") return Value(index0_ == 0);
  if (name == "last") return Value(index0_ == len - 1);
  if (name == "length") return Value(len);
  if (name == "depth") return Value(static_cast<int64_t>(depth_ + 1));
  if (name == "depth0") return Value(static_cast<int64_t>(depth_));
  if (name == "previtem") {
    if (index0_ == 0) return Value::undefined(UndefinedInfo{"previtem", "LoopContext object"});
    return (*items_)[static_cast<size_t>(index0_ - 1)];
  }
  if (name == "nextitem") {
    if (index0_ + 1 >= len)
      return Value::undefined(UndefinedInfo{"nextitem", "LoopContext object"});
    return (*items_)[static_cast<size_t>(index0_ + 1)];
  }
  auto self = std::const_pointer_cast<LoopObject>(shared_from_this());
  if (name == "cycle")
    return Value(std::shared_ptr<Object>(std::make_shared<LoopMethod>(self, true)));
  if (name == "changed")
    return Value(std::shared_ptr<Object>(std::make_shared<LoopMethod>(self, false)));
  return std::nullopt;
}

class NativeFunction final : public Object {
 public:
  NativeFunction(std::string name, NativeFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string_view type_name() const override { return "function"; }
  std::string repr() const override { return "<function " + name_ + ">"; }
  bool callable() const override { return true; }
  Result<Value> call(Interpreter&, Args& args) override { return fn_(args); }

 private:
  std::string name_;
  NativeFn fn_;
};

}  // namespace

struct DepthGuard {
  explicit DepthGuard(Interpreter* in) : in_(in) { ++in_->depth_; }
  ~DepthGuard() { --in_->depth_; }
  Interpreter* in_;
};

Value make_function(std::string name, NativeFn fn) {
  return Value(
      std::shared_ptr<Object>(std::make_shared<NativeFunction>(std::move(name), std::move(fn))));
}

// ---- Interpreter ----

Interpreter::Interpreter(std::string_view source, const Limits& limits, const Variables& globals)
    : source_(source), limits_(limits), globals_(globals), frame_(std::make_shared<Frame>()) {}

Interpreter::~Interpreter() {
  for (auto& w : tracked_) {
    if (auto o = w.lock()) o->release();
  }
}

void Interpreter::track(const std::shared_ptr<Object>& obj) {
  if (tracked_.size() >= tracked_prune_at_) {
    std::erase_if(tracked_, [](const std::weak_ptr<Object>& w) { return w.expired(); });
    tracked_prune_at_ = std::max<size_t>(64, tracked_.size() * 2);
  }
  tracked_.push_back(obj);
}

Result<std::string> Interpreter::run(const Body& body) {
  stack_base_ = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  std::string out;
  out_ = &out;
  Status st = exec_body(body);
  out_ = nullptr;
  if (!st.ok()) {
    const std::string where = error_located_ ? location(source_, error_offset_) : "1:1";
    return Status::error(where + ": " + st.message());
  }
  return out;
}

Status Interpreter::charge(size_t work_units) {
  steps_ += static_cast<int64_t>(work_units / 32);
  if (steps_ > limits_.max_steps) {
    return Status::error("template exceeded the sandbox limit of " +
                         std::to_string(limits_.max_steps) + " evaluation steps");
  }
  return Status();
}

Status Interpreter::check_bytes(size_t n) {
  if (n > limits_.max_output_bytes) {
    return Status::error("string of " + std::to_string(n) + " bytes exceeds the sandbox limit of " +
                         std::to_string(limits_.max_output_bytes) + " bytes");
  }
  return charge(n);
}

Status Interpreter::check_items(size_t n) {
  if (n > limits_.max_items) {
    return Status::error("sequence of " + std::to_string(n) +
                         " items exceeds the sandbox limit of " +
                         std::to_string(limits_.max_items) + " items");
  }
  return charge(n);
}

Status Interpreter::fail_at(uint32_t offset, Status st) {
  if (!error_located_) {
    error_located_ = true;
    error_offset_ = offset;
  }
  return st;
}

Status Interpreter::enter() {
  if (++steps_ > limits_.max_steps) {
    return Status::error("template exceeded the sandbox limit of " +
                         std::to_string(limits_.max_steps) + " evaluation steps");
  }
  if (depth_ > limits_.max_depth) {
    return Status::error("template recursion deeper than the sandbox limit of " +
                         std::to_string(limits_.max_depth) + " levels");
  }
  const auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (stack_base_ > sp && stack_base_ - sp > limits_.max_stack_bytes) {
    return Status::error("template recursion used more than the sandbox limit of " +
                         std::to_string(limits_.max_stack_bytes) + " bytes of stack");
  }
  return Status();
}

Status Interpreter::emit(std::string_view s) {
  out_->append(s);
  if (out_->size() > limits_.max_output_bytes) {
    return Status::error("output exceeds the sandbox limit of " +
                         std::to_string(limits_.max_output_bytes) + " bytes");
  }
  return Status();
}

Result<std::string> Interpreter::capture(const Body& body) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  Status st = exec_body(body);
  out_ = saved;
  if (!st.ok()) return st;
  return buf;
}

Status undefined_error(const Value& v) { return Status::error(undefined_message(v)); }

Result<Value> Interpreter::lookup(const std::string& name) {
  if (folding_) return Status::error("not constant");
  for (const Frame* f = frame_.get(); f; f = f->parent.get()) {
    if (const Value* v = f->find(name)) return *v;
  }
  for (const auto& [k, v] : globals_) {
    if (k == name) return v;
  }
  if (auto g = find_global(name)) return *g;
  return Value::undefined(name);
}

// ---- attribute and item access (jinja2's SandboxedEnvironment.getattr / getitem) ----

namespace {

Value unsafe_undefined(const Value& obj, std::string_view name) {
  UndefinedInfo info;
  info.name = std::string(name);
  info.owner = repr_string(type_name(obj)) + " object";
  info.unsafe = true;
  return Value::undefined(std::move(info));
}

Value missing_attr(const Value& obj, std::string_view name) {
  UndefinedInfo info;
  info.name = std::string(name);
  info.owner = object_type_repr(obj);
  return Value::undefined(std::move(info));
}

Value missing_element(const Value& obj, const Value& key) {
  UndefinedInfo info;
  info.name = repr(key);
  info.owner = object_type_repr(obj);
  info.key_is_element = true;
  return Value::undefined(std::move(info));
}

// Python's slice.indices + element selection over n items.
std::vector<size_t> slice_indices(int64_t n, const Value& start_v, const Value& stop_v,
                                  int64_t step) {
  auto clamp = [&](const Value& v, int64_t dflt, bool is_start) -> int64_t {
    if (v.is_none() || v.is_undefined()) return dflt;
    int64_t x = v.to_int();
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    (void)is_start;
    return x;
  };
  std::vector<size_t> idx;
  if (step > 0) {
    const int64_t a = clamp(start_v, 0, true), b = clamp(stop_v, n, false);
    for (int64_t i = a; i < b; i += step) idx.push_back(static_cast<size_t>(i));
  } else {
    const int64_t a = clamp(start_v, n - 1, true), b = clamp(stop_v, -1, false);
    for (int64_t i = a; i > b; i += step) idx.push_back(static_cast<size_t>(i));
  }
  return idx;
}

}  // namespace

Result<Value> Interpreter::getattr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return unsafe_undefined(obj, name);
  MethodFn fn = nullptr;
  switch (find_method(obj, name, &fn)) {
    case MethodAccess::kSafe:
      return make_bound_method(obj, std::string(name), fn);
    case MethodAccess::kUnsafe:
      return unsafe_undefined(obj, name);
    case MethodAccess::kNone:
      break;
  }
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(name)) return *v;
  } else if (obj.is_object()) {
    if (auto v = obj.as_object().attr(name)) return *v;
  }
  return missing_attr(obj, name);
}

Result<Value> Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(key)) return *v;
  } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.to_int();
    if (obj.is_list()) {
      const int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      const std::string& s = obj.as_string();
      if (is_ascii(s)) {
        const int64_t n = static_cast<int64_t>(s.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value(std::string(1, s[static_cast<size_t>(i)]));
      } else {
        const std::u32string cps = utf8_decode(s);
        const int64_t n = static_cast<int64_t>(cps.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
          std::string out;
          utf8_append(out, cps[static_cast<size_t>(i)]);
          return Value(std::move(out));
        }
      }
    }
    return missing_element(obj, key);
  }
  if (obj.is_object() && (key.is_int() || key.is_bool())) {
    auto* seq = dynamic_cast<const Sequence*>(&obj.as_object());
    if (seq && seq->type() == Sequence::Type::kRange) {
      const int64_t n = static_cast<int64_t>(seq->peek().size());
      int64_t i = key.to_int();
      if (i < 0) i += n;
      if (i >= 0 && i < n) return seq->peek()[static_cast<size_t>(i)];
    }
  }
  if (key.is_string()) return getattr(obj, key.as_string());  // jinja2 falls back to getattr
  return missing_element(obj, key);
}

Result<Value> Interpreter::call(const Value& callee, Args& args) {
  if (callee.is_undefined()) return undefined_error(callee);
  if (callee.is_object() && callee.as_object().callable()) {
    return callee.as_object().call(*this, args);
  }
  return Status::error("'" + type_name(callee) + "' object is not callable");
}

Result<std::vector<Value>> Interpreter::iterate(const Value& v) {
  if (v.is_list()) MINNOW_RETURN_IF_ERROR(charge(v.items().size()));
  if (v.is_string()) MINNOW_RETURN_IF_ERROR(charge(v.as_string().size()));
  if (v.is_dict()) MINNOW_RETURN_IF_ERROR(charge(v.as_dict().size()));
  switch (v.kind()) {
    case Kind::kUndefined:
      return std::vector<Value>();
    case Kind::kList:
      return v.items();
    case Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.as_dict().size());
      for (const auto& [k, val] : v.as_dict().entries()) keys.push_back(k);
      return keys;
    }
    case Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      if (is_ascii(s)) {
        chars.reserve(s.size());
        for (char c : s) chars.emplace_back(std::string(1, c));
      } else {
        for (char32_t cp : utf8_decode(s)) {
          std::string one;
          utf8_append(one, cp);
          chars.emplace_back(std::move(one));
        }
      }
      return chars;
    }
    case Kind::kObject:
      if (auto* seq = dynamic_cast<const Sequence*>(&v.as_object()); seq && !seq->failure().ok()) {
        return seq->failure();
      }
      if (auto items = v.as_object().iterate()) {
        MINNOW_RETURN_IF_ERROR(charge(items->size()));
        return std::move(*items);
      }
      [[fallthrough]];
    default:
      return Status::error("'" + type_name(v) + "' object is not iterable");
  }
}

Result<bool> Interpreter::contains(const Value& container, const Value& item) {
  if (container.is_list()) MINNOW_RETURN_IF_ERROR(charge(container.items().size()));
  if (container.is_string()) MINNOW_RETURN_IF_ERROR(charge(container.as_string().size()));
  switch (container.kind()) {
    case Kind::kString:
      if (!item.is_string()) {
        return Status::error("'in <string>' requires string as left operand, not " +
                             type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Kind::kList:
      for (const Value& v : container.items()) {
        if (equals(v, item)) return true;
      }
      return false;
    case Kind::kDict: {
      auto k = hash_key(item);
      if (!k.ok()) return k.status();
      return container.as_dict().find(item) != nullptr;
    }
    case Kind::kUndefined:
      return false;
    case Kind::kObject:
      if (auto* seq = dynamic_cast<Sequence*>(&container.as_object())) {
        if (!seq->failure().ok()) return seq->failure();
        if (seq->one_shot()) {  // consumes up to the match, as Python's `in` does
          while (auto v = seq->next()) {
            if (equals(*v, item)) return true;
          }
          return false;
        }
        MINNOW_RETURN_IF_ERROR(charge(seq->peek().size()));
        for (const Value& v : seq->peek()) {
          if (equals(v, item)) return true;
        }
        return false;
      }
      [[fallthrough]];
    default:
      return Status::error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

bool Interpreter::has_filter(std::string_view name) const { return find_filter(name) != nullptr; }
bool Interpreter::has_test(std::string_view name) const { return find_test(name) != nullptr; }

Result<Value> Interpreter::apply_filter(std::string_view name, const Value& input, Args& args) {
  // filters that need the template context are never folded by jinja2
  if (folding_ && (name == "map" || name == "select" || name == "reject" || name == "selectattr" ||
                   name == "rejectattr")) {
    return Status::error("not constant");
  }
  FilterFn fn = find_filter(name);
  if (!fn) return Status::error("no filter named '" + std::string(name) + "'");
  return fn(*this, input, args);
}

Result<bool> Interpreter::apply_test(std::string_view name, const Value& input, Args& args) {
  TestFn fn = find_test(name);
  if (!fn) return Status::error("no test named '" + std::string(name) + "'");
  return fn(*this, input, args);
}

// ---- expressions ----

Result<Value> Interpreter::eval(const Expr& e) {
  DepthGuard guard(this);
  if (Status st = enter(); !st.ok()) return fail_at(e.offset, st);
  Result<Value> r = eval_inner(e);
  if (!r.ok()) return fail_at(e.offset, r.status());
  return r;
}

Result<Args> Interpreter::eval_args(const Expr& e, size_t first) {
  Args args;
  args.pos.reserve(e.kids.size() - first);
  for (size_t i = first; i < e.kids.size(); ++i) {
    JTRY(Value v, eval(*e.kids[i]));
    args.pos.push_back(std::move(v));
  }
  for (const auto& [k, ex] : e.kwargs) {
    JTRY(Value v, eval(*ex));
    args.kw.emplace_back(k, std::move(v));
  }
  return args;
}

// Every case lives in its own out-of-line function: a recursive descent through nested
// expressions then only pays for the locals of the cases on its path, which keeps the stack per
// nesting level small (checked by the small-stack tests, with and without sanitizers).
Result<Value> Interpreter::eval_inner(const Expr& e) {
  switch (e.kind) {
    case ExprKind::kConst:
      return e.value;
    case ExprKind::kName:
      return lookup(e.name);
    case ExprKind::kGetattr:
      return eval_getattr(e);
    case ExprKind::kGetitem:
      return eval_getitem(e);
    case ExprKind::kSlice:
      return Status::error("slice outside of a subscript");
    case ExprKind::kCall:
      return eval_call(e);
    case ExprKind::kFilter:
      return eval_filter(e, nullptr);
    case ExprKind::kTest:
      return eval_test(e);
    case ExprKind::kNot:
    case ExprKind::kNeg:
    case ExprKind::kPos:
      return eval_unary(e);
    case ExprKind::kBinary:
      return eval_binary_expr(e);
    case ExprKind::kAnd:
    case ExprKind::kOr:
      return eval_logic(e);
    case ExprKind::kConcat:
      return eval_concat(e);
    case ExprKind::kCompare:
      return eval_compare(e);
    case ExprKind::kCond:
      return eval_cond(e);
    case ExprKind::kList:
    case ExprKind::kTuple:
      return eval_sequence(e);
    case ExprKind::kDict:
      return eval_dict(e);
  }
  return Status::error("unknown expression");
}

Result<Value> Interpreter::eval_getattr(const Expr& e) {
  JTRY(Value obj, eval(*e.kids[0]));
  return getattr(obj, e.name);
}

Result<Value> Interpreter::eval_getitem(const Expr& e) {
  JTRY(Value obj, eval(*e.kids[0]));
  const Expr& k = *e.kids[1];
  if (k.kind != ExprKind::kSlice) {
    JTRY(Value key, eval(k));
    return getitem(obj, key);
  }
  Value parts[3];
  for (int i = 0; i < 3; ++i) {
    if (k.kids[static_cast<size_t>(i)]) {
      JTRY(parts[i], eval(*k.kids[static_cast<size_t>(i)]));
      if (!parts[i].is_none() && !(parts[i].is_int() || parts[i].is_bool())) {
        return Status::error("slice indices must be integers or None");
      }
    } else {
      parts[i] = Value::none();
    }
  }
  const int64_t step = parts[2].is_none() ? 1 : parts[2].to_int();
  if (step == 0) return Status::error("slice step cannot be zero");
  if (obj.is_undefined()) return undefined_error(obj);
  if (obj.is_list()) {
    const auto& items = obj.items();
    std::vector<Value> out;
    for (size_t i : slice_indices(static_cast<int64_t>(items.size()), parts[0], parts[1], step)) {
      out.push_back(items[i]);
    }
    return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  if (obj.is_string()) {
    const std::u32string cps = utf8_decode(obj.as_string());
    std::u32string out;
    for (size_t i : slice_indices(static_cast<int64_t>(cps.size()), parts[0], parts[1], step)) {
      out.push_back(cps[i]);
    }
    return Value(utf8_encode(out));
  }
  if (obj.is_object()) {
    auto* seq = dynamic_cast<const Sequence*>(&obj.as_object());
    if (seq && seq->type() == Sequence::Type::kRange) {
      std::vector<Value> out;
      const auto& items = seq->peek();
      for (size_t i : slice_indices(static_cast<int64_t>(items.size()), parts[0], parts[1], step)) {
        out.push_back(items[i]);
      }
      return Value::list(std::move(out));
    }
  }
  // jinja2 compiles slices to a plain Python subscript, which raises here -- unless the whole
  // {{ }} expression was folded at compile time through the sandbox's getitem (see
  // exec_output), whose failures are Undefined.
  if (folding_) return missing_element(obj, Value("slice"));
  if (obj.is_dict()) return Status::error("unhashable type: 'slice'");
  return Status::error("'" + type_name(obj) + "' object is not subscriptable");
}

Result<Value> Interpreter::eval_test(const Expr& e) {
  JTRY(Value v, eval(*e.kids[0]));
  JTRY(Args args, eval_args(e, 1));
  JTRY(bool b, apply_test(e.name, v, args));
  return Value(b);
}

Result<Value> Interpreter::eval_unary(const Expr& e) {
  JTRY(Value v, eval(*e.kids[0]));
  if (e.kind == ExprKind::kNot) return Value(!truthy(v));
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_number()) {
    return Status::error(std::string("bad operand type for unary ") +
                         (e.kind == ExprKind::kNeg ? "-" : "+") + ": '" + type_name(v) + "'");
  }
  if (e.kind == ExprKind::kPos) return v.is_bool() ? Value(v.to_int()) : v;
  if (v.is_float()) return Value(-v.as_float());
  if (v.to_int() == std::numeric_limits<int64_t>::min()) return Status::error("integer overflow");
  return Value(-v.to_int());
}

namespace {

Status type_error(std::string_view op, const Value& a, const Value& b) {
  return Status::error("unsupported operand type(s) for " + std::string(op) + ": '" + type_name(a) +
                       "' and '" + type_name(b) + "'");
}

bool add_overflows(int64_t a, int64_t b, int64_t* r) { return __builtin_add_overflow(a, b, r); }
bool sub_overflows(int64_t a, int64_t b, int64_t* r) { return __builtin_sub_overflow(a, b, r); }
bool mul_overflows(int64_t a, int64_t b, int64_t* r) { return __builtin_mul_overflow(a, b, r); }

Status overflow() {
  return Status::error("integer overflow (minnow's template integers are 64-bit)");
}

}  // namespace

Result<Value> Interpreter::eval_binary_expr(const Expr& e) {
  JTRY(Value a, eval(*e.kids[0]));
  JTRY(Value b, eval(*e.kids[1]));
  const Expr& base = *e.kids[0];
  if (e.op == Op::kPow && !folding_ && base.kind == ExprKind::kConst &&
      ((base.value.is_int() && base.value.as_int() < 0) ||
       (base.value.is_float() && std::signbit(base.value.as_float())))) {
    // jinja2 writes a folded negative constant into its generated Python without parentheses,
    // so `-2 ** n` (or `(0 - 2) ** n`) computes -(2 ** n) there; templates see that.
    const Value magnitude =
        base.value.is_int() ? Value(-base.value.as_int()) : Value(-base.value.as_float());
    JTRY(Value r, eval_binary(Op::kPow, magnitude, b));
    if (r.is_float()) return Value(-r.as_float());
    if (r.as_int() == std::numeric_limits<int64_t>::min()) return overflow();
    return Value(-r.as_int());
  }
  return eval_binary(e.op, a, b);
}

Result<Value> Interpreter::eval_logic(const Expr& e) {
  JTRY(Value a, eval(*e.kids[0]));
  if ((e.kind == ExprKind::kAnd) != truthy(a)) return a;  // and: falsy a; or: truthy a
  return eval(*e.kids[1]);
}

Result<Value> Interpreter::eval_concat(const Expr& e) {
  std::string s;
  for (const auto& k : e.kids) {
    JTRY(Value v, eval(*k));
    append_str(s, v);
    MINNOW_RETURN_IF_ERROR(check_bytes(s.size()));
  }
  return Value(std::move(s));
}

Result<Value> Interpreter::eval_cond(const Expr& e) {
  JTRY(Value t, eval(*e.kids[0]));
  if (truthy(t)) return eval(*e.kids[1]);
  if (e.kids[2]) return eval(*e.kids[2]);
  if (folding_) return Status::error("not constant");
  return Value::undefined(UndefinedInfo{"inline if-expression evaluated to false", ""});
}

Result<Value> Interpreter::eval_sequence(const Expr& e) {
  std::vector<Value> items;
  items.reserve(e.kids.size());
  for (const auto& k : e.kids) {
    JTRY(Value v, eval(*k));
    items.push_back(std::move(v));
  }
  return e.kind == ExprKind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
}

Result<Value> Interpreter::eval_dict(const Expr& e) {
  auto d = std::make_shared<Dict>();
  for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
    JTRY(Value k, eval(*e.kids[i]));
    JTRY(Value v, eval(*e.kids[i + 1]));
    MINNOW_RETURN_IF_ERROR(d->set(std::move(k), std::move(v)));
  }
  return Value(std::shared_ptr<const Dict>(std::move(d)));
}

Result<Value> Interpreter::eval_call(const Expr& e) {
  if (folding_) return Status::error("not constant");
  const Expr& callee = *e.kids[0];
  if (callee.kind == ExprKind::kGetattr) {
    // obj.method(...): call the method directly instead of building a bound method
    JTRY(Value obj, eval(*callee.kids[0]));
    if (obj.is_undefined()) return undefined_error(obj);
    MethodFn fn = nullptr;
    const MethodAccess access =
        callee.name.starts_with("__") ? MethodAccess::kNone : find_method(obj, callee.name, &fn);
    if (access == MethodAccess::kSafe) {
      JTRY(Args args, eval_args(e, 1));
      return fn(*this, obj, args);
    }
    JTRY(Value f, getattr(obj, callee.name));
    JTRY(Args args, eval_args(e, 1));
    return call(f, args);
  }
  JTRY(Value f, eval(callee));
  JTRY(Args args, eval_args(e, 1));
  return call(f, args);
}

Result<Value> Interpreter::eval_filter(const Expr& e, const Value* block_input) {
  Value input;
  if (!e.kids[0]) {
    if (!block_input) return Status::error("filter without input");
    input = *block_input;
  } else if (block_input && e.kids[0]->kind == ExprKind::kFilter) {
    JTRY(input, eval_filter(*e.kids[0], block_input));
  } else {
    JTRY(input, eval(*e.kids[0]));
  }
  JTRY(Args args, eval_args(e, 1));
  return apply_filter(e.name, input, args);
}

Result<Value> Interpreter::eval_compare(const Expr& e) {
  JTRY(Value left, eval(*e.kids[0]));
  for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
    JTRY(Value right, eval(*e.kids[i + 1]));
    bool ok;
    switch (e.cmp_ops[i]) {
      case CmpOp::kEq:
        ok = equals(left, right);
        break;
      case CmpOp::kNe:
        ok = !equals(left, right);
        break;
      case CmpOp::kIn: {
        JTRY(ok, contains(right, left));
        break;
      }
      case CmpOp::kNotIn: {
        JTRY(bool in, contains(right, left));
        ok = !in;
        break;
      }
      default: {
        if (left.is_undefined()) return undefined_error(left);
        if (right.is_undefined()) return undefined_error(right);
        static constexpr const char* kNames[] = {"==", "!=", "<", "<=", ">", ">="};
        JTRY(int c, compare(left, right, kNames[static_cast<int>(e.cmp_ops[i])]));
        switch (e.cmp_ops[i]) {
          case CmpOp::kLt:
            ok = c < 0;
            break;
          case CmpOp::kLe:
            ok = c <= 0;
            break;
          case CmpOp::kGt:
            ok = c > 0;
            break;
          default:
            ok = c >= 0;
            break;
        }
      }
    }
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Result<Value> Interpreter::eval_binary(Op op, const Value& a, const Value& b) {
  if (a.is_undefined()) return undefined_error(a);
  if (op == Op::kMod && a.is_string()) {
    // str % x is formatting; Python runs str.__mod__ first, so even an Undefined x is simply
    // formatted (as "") instead of raising
    JTRY(std::string s, percent_format(a.as_string(), b));
    MINNOW_RETURN_IF_ERROR(check_bytes(s.size()));
    return Value(std::move(s));
  }
  if (b.is_undefined()) return undefined_error(b);
  const std::string_view sym = op_text(op);
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  switch (op) {
    case Op::kAdd: {
      if (ints) {
        int64_t r;
        if (add_overflows(a.to_int(), b.to_int(), &r)) return overflow();
        return Value(r);
      }
      if (nums) return Value(a.to_double() + b.to_double());
      if (a.is_string() && b.is_string()) {
        if (a.is_markup() || b.is_markup()) {
          // Markup + str escapes the plain side (jinja2 does this even with autoescape off)
          std::string s = a.is_markup() ? a.as_string() : html_escape(a.as_string());
          s += b.is_markup() ? b.as_string() : html_escape(b.as_string());
          MINNOW_RETURN_IF_ERROR(check_bytes(s.size()));
          return Value::markup(std::move(s));
        }
        MINNOW_RETURN_IF_ERROR(check_bytes(a.as_string().size() + b.as_string().size()));
        return Value(a.as_string() + b.as_string());
      }
      if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
        MINNOW_RETURN_IF_ERROR(check_items(a.items().size() + b.items().size()));
        std::vector<Value> items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      if (a.is_string() || a.is_list()) {
        return Status::error("can only concatenate " + type_name(a) + " (not \"" + type_name(b) +
                             "\") to " + type_name(a));
      }
      return type_error(sym, a, b);
    }
    case Op::kSub: {
      if (ints) {
        int64_t r;
        if (sub_overflows(a.to_int(), b.to_int(), &r)) return overflow();
        return Value(r);
      }
      if (nums) return Value(a.to_double() - b.to_double());
      return type_error(sym, a, b);
    }
    case Op::kMul: {
      if (ints) {
        int64_t r;
        if (mul_overflows(a.to_int(), b.to_int(), &r)) return overflow();
        return Value(r);
      }
      if (nums) return Value(a.to_double() * b.to_double());
      const Value* seq = nullptr;
      const Value* count = nullptr;
      if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) seq = &a, count = &b;
      if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) seq = &b, count = &a;
      if (!seq) return type_error(sym, a, b);
      const int64_t n = std::max<int64_t>(0, count->to_int());
      if (seq->is_string()) {
        const size_t len = seq->as_string().size();
        if (len != 0 && static_cast<uint64_t>(n) > limits_.max_output_bytes / len + 1) {
          return check_bytes(limits_.max_output_bytes + 1);
        }
        MINNOW_RETURN_IF_ERROR(check_bytes(len * static_cast<size_t>(n)));
        std::string s;
        s.reserve(len * static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) s += seq->as_string();
        return Value(std::move(s));
      }
      const size_t len = seq->items().size();
      if (len != 0 && static_cast<uint64_t>(n) > limits_.max_items / len + 1) {
        return check_items(limits_.max_items + 1);
      }
      MINNOW_RETURN_IF_ERROR(check_items(len * static_cast<size_t>(n)));
      std::vector<Value> items;
      items.reserve(len * static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        items.insert(items.end(), seq->items().begin(), seq->items().end());
      return seq->is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    case Op::kDiv: {
      if (!nums) return type_error(sym, a, b);
      if (b.to_double() == 0.0) return Status::error("division by zero");
      return Value(a.to_double() / b.to_double());
    }
    case Op::kFloorDiv:
    case Op::kMod: {
      if (!nums) return type_error(sym, a, b);
      if (ints) {
        const int64_t x = a.to_int(), y = b.to_int();
        if (y == 0) return Status::error("integer division or modulo by zero");
        if (x == std::numeric_limits<int64_t>::min() && y == -1) return overflow();
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {  // Python floors toward negative infinity
          q -= 1;
          r += y;
        }
        return op == Op::kFloorDiv ? Value(q) : Value(r);
      }
      // CPython's float divmod
      const double x = a.to_double(), y = b.to_double();
      if (y == 0.0) return Status::error("float floor division or modulo by zero");
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      if (op == Op::kMod) return Value(mod);
      double floordiv;
      if (div != 0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, x / y);
      }
      return Value(floordiv);
    }
    case Op::kPow: {
      if (!nums) return type_error("** or pow()", a, b);
      if (ints && b.to_int() >= 0) {
        int64_t base = a.to_int(), exp = b.to_int(), r = 1;
        while (exp > 0) {
          if (exp & 1) {
            if (mul_overflows(r, base, &r)) return overflow();
          }
          exp >>= 1;
          if (exp > 0 && mul_overflows(base, base, &base)) return overflow();
        }
        return Value(r);
      }
      const double x = a.to_double(), y = b.to_double();
      if (x == 0.0 && y < 0) return Status::error("0.0 cannot be raised to a negative power");
      if (x < 0 && std::isfinite(y) && std::floor(y) != y) {
        return Status::error(
            "complex numbers (negative base, fractional exponent) are not supported");
      }
      const double r = std::pow(x, y);
      if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) {
        return Status::error("(34, 'Numerical result out of range')");  // Python's OverflowError
      }
      return Value(r);
    }
    default:
      return Status::error("unsupported operator " + std::string(sym));
  }
}

// ---- statements ----

Status Interpreter::exec_body(const Body& body) {
  DepthGuard guard(this);
  for (const auto& s : body) {
    if (Status st = enter(); !st.ok()) return fail_at(s->offset, st);
    if (Status st = exec(*s); !st.ok()) return fail_at(s->offset, st);
    if (flow_ != Flow::kNormal) return Status();
  }
  return Status();
}

Status Interpreter::assign(const Target& t, const Value& v) {
  if (t.items.empty()) {
    frame_->set(t.name, v);
    return Status();
  }
  std::vector<Value> parts;
  if (v.is_list()) {
    parts = v.items();
  } else if (v.is_string() || v.is_dict() || (v.is_object() && v.as_object().length())) {
    auto it = iterate(v);
    if (!it.ok()) return it.status();
    parts = std::move(*it);
  } else {
    return Status::error("cannot unpack non-iterable " + type_name(v) + " object");
  }
  if (parts.size() > t.items.size()) {
    return Status::error("too many values to unpack (expected " + std::to_string(t.items.size()) +
                         ")");
  }
  if (parts.size() < t.items.size()) {
    return Status::error("not enough values to unpack (expected " + std::to_string(t.items.size()) +
                         ", got " + std::to_string(parts.size()) + ")");
  }
  for (size_t i = 0; i < parts.size(); ++i) MINNOW_RETURN_IF_ERROR(assign(t.items[i], parts[i]));
  return Status();
}

Result<std::string> Interpreter::run_loop(const Stmt& loop, const Value& iterable,
                                          const std::shared_ptr<Frame>& scope, int depth) {
  std::string buf;
  std::string* saved_out = out_;
  std::shared_ptr<Frame> saved_frame = frame_;
  out_ = &buf;
  frame_ = scope;
  Status st = exec_for(loop, iterable, depth);
  out_ = saved_out;
  frame_ = saved_frame;
  if (!st.ok()) return st;
  return buf;
}

Status Interpreter::exec_for(const Stmt& s, const Value& iterable, int depth) {
  JTRY(std::vector<Value> items, iterate(iterable));
  std::shared_ptr<Frame> outer = frame_;
  if (s.filter) {
    std::vector<Value> kept;
    for (Value& item : items) {
      if (++iterations_ > limits_.max_loop_iterations) break;
      frame_ = std::make_shared<Frame>();
      frame_->parent = outer;
      Status st = assign(s.target, item);
      Result<Value> keep = st.ok() ? eval(*s.filter) : Result<Value>(st);
      frame_ = outer;
      if (!keep.ok()) return keep.status();
      if (truthy(*keep)) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body);
  auto shared_items = std::make_shared<const std::vector<Value>>(std::move(items));
  auto loop = std::make_shared<LoopObject>(shared_items, depth, &s, outer);
  const Value loop_value{std::shared_ptr<Object>(loop)};
  Status result;
  for (size_t i = 0; i < shared_items->size(); ++i) {
    if (++iterations_ > limits_.max_loop_iterations) {
      result = Status::error("template exceeded the sandbox limit of " +
                             std::to_string(limits_.max_loop_iterations) + " loop iterations");
      break;
    }
    frame_ = std::make_shared<Frame>();
    frame_->parent = outer;
    loop->set_index(static_cast<int64_t>(i));
    frame_->set("loop", loop_value);
    result = assign(s.target, (*shared_items)[i]);
    if (result.ok()) result = exec_body(s.body);
    if (!result.ok()) break;
    if (flow_ == Flow::kBreak) {
      flow_ = Flow::kNormal;
      break;
    }
    flow_ = Flow::kNormal;
  }
  loop->finish();
  frame_ = outer;
  return result;
}

Result<std::string> Interpreter::call_macro(const Stmt& def, const std::shared_ptr<Frame>& closure,
                                            const std::string& name, Args& args,
                                            const Value& caller) {
  if (call_depth_ >= limits_.max_call_depth) {
    return Status::error("macro '" + name + "' nested deeper than the sandbox limit of " +
                         std::to_string(limits_.max_call_depth) + " calls");
  }
  const size_t n = def.params.size();
  auto frame = std::make_shared<Frame>();
  frame->parent = closure;
  std::vector<const Value*> bound(n, nullptr);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.pos.size(); ++i) {
    if (i < n) {
      bound[i] = &args.pos[i];
    } else {
      varargs.push_back(args.pos[i]);
    }
  }
  auto kwargs = std::make_shared<Dict>();
  for (const auto& [k, v] : args.kw) {
    bool matched = false;
    for (size_t i = 0; i < n; ++i) {
      if (def.params[i] != k) continue;
      if (bound[i]) {
        return Status::error("macro '" + name + "' got multiple values for argument '" + k + "'");
      }
      bound[i] = &v;
      matched = true;
      break;
    }
    if (!matched) kwargs->set(k, v);
  }
  ++call_depth_;
  std::shared_ptr<Frame> saved = frame_;
  frame_ = frame;
  Status st;
  const size_t first_default = n - def.defaults.size();
  for (size_t i = 0; i < n && st.ok(); ++i) {
    if (bound[i]) {
      frame->set(def.params[i], *bound[i]);
    } else if (i >= first_default) {
      // defaults are evaluated per call, in the macro's scope (they may use earlier params)
      Result<Value> d = eval(*def.defaults[i - first_default]);
      if (d.ok()) {
        frame->set(def.params[i], std::move(*d));
      } else {
        st = d.status();
      }
    } else {
      frame->set(def.params[i], Value::undefined(def.params[i]));
    }
  }
  Result<std::string> out = std::string();
  if (st.ok()) {
    frame->set("varargs", Value::tuple(std::move(varargs)));
    frame->set("kwargs", Value(std::shared_ptr<const Dict>(std::move(kwargs))));
    if (!caller.is_undefined()) frame->set("caller", caller);
    out = capture(def.body);
    flow_ = Flow::kNormal;
  }
  frame_ = saved;
  --call_depth_;
  if (!st.ok()) return st;
  return out;
}

Status Interpreter::exec(const Stmt& s) {
  switch (s.kind) {
    case StmtKind::kText:
      return emit(s.text);
    case StmtKind::kOutput:
      return exec_output(s);
    case StmtKind::kIf:
      return exec_if(s);
    case StmtKind::kFor:
      return exec_for_stmt(s);
    case StmtKind::kSet:
      return exec_set(s);
    case StmtKind::kSetNs:
      return exec_set_ns(s);
    case StmtKind::kSetBlock:
      return exec_set_block(s);
    case StmtKind::kMacro: {
      auto m = std::make_shared<MacroObject>(&s, frame_, s.text);
      track(m);
      frame_->set(s.text, Value(std::shared_ptr<Object>(m)));
      return Status();
    }
    case StmtKind::kCallBlock:
      return exec_call_block(s);
    case StmtKind::kFilterBlock:
      return exec_filter_block(s);
    case StmtKind::kWith:
    case StmtKind::kGeneration:
      return exec_scoped(s);
    case StmtKind::kBreak:
      flow_ = Flow::kBreak;
      return Status();
    case StmtKind::kContinue:
      flow_ = Flow::kContinue;
      return Status();
  }
  return Status::error("unknown statement");
}

Result<Value> Interpreter::fold(const Expr& e) {
  const bool located = error_located_;
  folding_ = true;
  Result<Value> r = eval(e);
  folding_ = false;
  error_located_ = located;
  return r;
}

Status Interpreter::exec_output(const Stmt& s) {
  JTRY(Value v, eval(*s.expr));
  if (v.is_string()) return emit(v.as_string());
  std::string tmp;
  append_str(tmp, v);
  return emit(tmp);
}

Status Interpreter::exec_if(const Stmt& s) {
  for (const auto& [test, body] : s.branches) {
    JTRY(Value t, eval(*test));
    if (truthy(t)) return exec_body(body);
  }
  return exec_body(s.else_body);
}

Status Interpreter::exec_for_stmt(const Stmt& s) {
  JTRY(Value it, eval(*s.expr));
  return exec_for(s, it, 0);
}

Status Interpreter::exec_set(const Stmt& s) {
  JTRY(Value v, eval(*s.expr));
  return assign(s.target, v);
}

Status Interpreter::exec_set_ns(const Stmt& s) {
  JTRY(Value v, eval(*s.expr));
  JTRY(Value ns, lookup(s.text));
  if (nesting(v) > limits_.max_value_depth) {
    return Status::error("value nested deeper than the sandbox limit of " +
                         std::to_string(limits_.max_value_depth) + " levels");
  }
  if (!ns.is_object() || !ns.as_object().set_attr(s.attr, std::move(v))) {
    return Status::error("cannot assign attribute on non-namespace object '" + s.text + "'");
  }
  return Status();
}

Status Interpreter::exec_set_block(const Stmt& s) {
  JTRY(std::string text, capture(s.body));
  Value v(std::move(text));
  if (s.expr) {
    JTRY(v, eval_filter(*s.expr, &v));
  }
  return assign(s.target, v);
}

Status Interpreter::exec_call_block(const Stmt& s) {
  auto caller = std::make_shared<MacroObject>(&s, frame_, "caller");
  track(caller);
  const Expr& call_expr = *s.expr;
  JTRY(Value f, eval(*call_expr.kids[0]));
  JTRY(Args args, eval_args(call_expr, 1));
  args.kw.emplace_back("caller", Value(std::shared_ptr<Object>(caller)));
  JTRY(Value r, call(f, args));
  return emit(to_str(r));
}

Status Interpreter::exec_filter_block(const Stmt& s) {
  JTRY(std::string text, capture(s.body));
  const Value v(std::move(text));
  JTRY(Value r, eval_filter(*s.expr, &v));
  return emit(to_str(r));
}

// {% with %} and {% generation %} run their body in a child scope (transformers renders a
// generation block through a caller block, which has its own scope).
Status Interpreter::exec_scoped(const Stmt& s) {
  std::vector<Value> values;
  for (const auto& e : s.with_values) {  // evaluated in the outer scope
    JTRY(Value v, eval(*e));
    values.push_back(std::move(v));
  }
  std::shared_ptr<Frame> saved = frame_;
  frame_ = std::make_shared<Frame>();
  frame_->parent = saved;
  Status st;
  for (size_t i = 0; i < values.size() && st.ok(); ++i) st = assign(s.with_targets[i], values[i]);
  if (st.ok()) st = exec_body(s.body);
  frame_ = saved;
  return st;
}

}  // namespace minnow::text::jinja
