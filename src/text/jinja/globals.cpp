// The global functions jinja2 gives every template: range, dict, namespace, cycler, joiner.
// (lipsum is left out: random text has no place in a prompt.)
#include "text/jinja/builtins.h"

namespace minnow::text::jinja {

namespace {

class Namespace final : public Object {
 public:
  std::string_view type_name() const override { return "Namespace"; }
  std::string repr() const override {
    std::string out = "<Namespace {";
    bool first = true;
    for (const auto& [k, v] : attrs_) {
      if (!first) out += ", ";
      first = false;
      out += repr_string(k) + ": ";
      append_repr(out, v);
    }
    return out + "}>";
  }
  std::optional<Value> attr(std::string_view name) const override {
    for (const auto& [k, v] : attrs_) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
  bool set_attr(std::string_view name, Value value) override {
    for (auto& [k, v] : attrs_) {
      if (k == name) {
        v = std::move(value);
        return true;
      }
    }
    attrs_.emplace_back(std::string(name), std::move(value));
    return true;
  }
  void release() override { attrs_.clear(); }

 private:
  std::vector<std::pair<std::string, Value>> attrs_;
};

class Cycler final : public Object, public std::enable_shared_from_this<Cycler> {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string_view type_name() const override { return "Cycler"; }
  std::string repr() const override { return "<Cycler>"; }
  std::optional<Value> attr(std::string_view name) const override;
  Value current() const { return items_[pos_]; }
  Value next() {
    Value v = items_[pos_];
    pos_ = (pos_ + 1) % items_.size();
    return v;
  }
  void reset() { pos_ = 0; }

 private:
  std::vector<Value> items_;
  size_t pos_ = 0;
};

class CyclerMethod final : public Object {
 public:
  CyclerMethod(std::shared_ptr<Cycler> c, bool next) : c_(std::move(c)), next_(next) {}
  std::string_view type_name() const override { return "method"; }
  std::string repr() const override {
    return next_ ? "<bound method Cycler.next>" : "<bound method Cycler.reset>";
  }
  bool callable() const override { return true; }
  Result<Value> call(Interpreter&, Args&) override {
    if (next_) return c_->next();
    c_->reset();
    return Value::none();
  }

 private:
  std::shared_ptr<Cycler> c_;
  bool next_;
};

std::optional<Value> Cycler::attr(std::string_view name) const {
  auto self = std::const_pointer_cast<Cycler>(shared_from_this());
  if (name == "current") return current();
  if (name == "next" || name == "reset") {
    return Value(std::shared_ptr<Object>(std::make_shared<CyclerMethod>(self, name == "next")));
  }
  return std::nullopt;
}

class Joiner final : public Object {
 public:
  explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
  std::string_view type_name() const override { return "Joiner"; }
  std::string repr() const override { return "<Joiner>"; }
  bool callable() const override { return true; }
  Result<Value> call(Interpreter&, Args&) override {
    if (!used_) {
      used_ = true;
      return Value("");
    }
    return Value(sep_);
  }

 private:
  std::string sep_;
  bool used_ = false;
};

Result<Value> g_range(Interpreter& in, Args& args) {
  if (!args.kw.empty()) return Status::error("range() takes no keyword arguments");
  if (args.pos.empty() || args.pos.size() > 3) {
    return Status::error("range expected 1 to 3 arguments, got " + std::to_string(args.pos.size()));
  }
  int64_t v[3] = {0, 0, 1};
  for (size_t i = 0; i < args.pos.size(); ++i) {
    const Value& a = args.pos[i];
    if (a.is_undefined()) return undefined_error(a);
    if (!a.is_int() && !a.is_bool()) {
      std::string msg = "'";  // built stepwise: GCC 12 misreports "lit" + string (-Wrestrict)
      msg += type_name(a);
      msg += "' object cannot be interpreted as an integer";
      return Status::error(msg);
    }
    v[i] = a.to_int();
  }
  int64_t start = 0, stop, step = 1;
  if (args.pos.size() == 1) {
    stop = v[0];
  } else {
    start = v[0];
    stop = v[1];
    if (args.pos.size() == 3) step = v[2];
  }
  if (step == 0) return Status::error("range() arg 3 must not be zero");
  // length computed in wide arithmetic: start/stop may be near the int64 limits
  const __int128 span =
      step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  const __int128 astep = step > 0 ? step : -static_cast<__int128>(step);
  const __int128 n = span <= 0 ? 0 : (span + astep - 1) / astep;
  if (n > in.limits().max_range) {
    return Status::error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
                         std::to_string(in.limits().max_range) + ").");
  }
  MINNOW_RETURN_IF_ERROR(in.check_items(static_cast<size_t>(n)));
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) out.emplace_back(start + i * step);
  return Sequence::range(start, stop, step, std::move(out));
}

// dict(mapping_or_pairs?, **kwargs)
Result<Value> build_dict(Interpreter& in, Args& args, const char* fn) {
  if (args.pos.size() > 1) {
    return Status::error(std::string(fn) + " expected at most 1 argument, got " +
                         std::to_string(args.pos.size()));
  }
  auto d = std::make_shared<Dict>();
  if (!args.pos.empty()) {
    const Value& src = args.pos[0];
    if (src.is_dict()) {
      for (const auto& [k, v] : src.as_dict().entries()) MINNOW_RETURN_IF_ERROR(d->set(k, v));
    } else {
      auto items = in.iterate(src);
      if (!items.ok()) return items.status();
      for (const Value& pair : *items) {
        if (!pair.is_list() || pair.items().size() != 2) {
          return Status::error("dictionary update sequence element has wrong length");
        }
        MINNOW_RETURN_IF_ERROR(d->set(pair.items()[0], pair.items()[1]));
      }
    }
  }
  for (const auto& [k, v] : args.kw) d->set(k, v);
  return Value(std::shared_ptr<const Dict>(std::move(d)));
}

Result<Value> g_dict(Interpreter& in, Args& args) { return build_dict(in, args, "dict"); }

Result<Value> g_namespace(Interpreter& in, Args& args) {
  auto init = build_dict(in, args, "namespace");
  if (!init.ok()) return init.status();
  auto ns = std::make_shared<Namespace>();
  for (const auto& [k, v] : init->as_dict().entries()) {
    if (!k.is_string()) return Status::error("namespace attribute names must be strings");
    ns->set_attr(k.as_string(), v);
  }
  std::shared_ptr<Object> obj = ns;
  in.track(obj);
  return Value(obj);
}

Result<Value> g_cycler(Interpreter&, Args& args) {
  if (args.pos.empty()) return Status::error("at least one item has to be provided");
  auto c = std::make_shared<Cycler>(args.pos);
  return Value(std::shared_ptr<Object>(c));
}

Result<Value> g_joiner(Interpreter&, Args& args) {
  auto b = bind(args, {"sep"}, "joiner");
  if (!b.ok()) return b.status();
  auto sep = arg_str(b->get(0), ", ", "sep");
  if (!sep.ok()) return sep.status();
  return Value(std::shared_ptr<Object>(std::make_shared<Joiner>(std::move(*sep))));
}

using GlobalFn = Result<Value> (*)(Interpreter&, Args&);

class BuiltinFunction final : public Object {
 public:
  BuiltinFunction(std::string_view name, GlobalFn fn) : name_(name), fn_(fn) {}
  std::string_view type_name() const override { return "builtin_function_or_method"; }
  std::string repr() const override { return "<built-in function " + std::string(name_) + ">"; }
  bool callable() const override { return true; }
  Result<Value> call(Interpreter& in, Args& args) override { return fn_(in, args); }

 private:
  std::string_view name_;
  GlobalFn fn_;
};

}  // namespace

std::optional<Value> find_global(std::string_view name) {
  static const std::pair<std::string_view, GlobalFn> kGlobals[] = {
      {"range", g_range},   {"dict", g_dict},     {"namespace", g_namespace},
      {"cycler", g_cycler}, {"joiner", g_joiner},
  };
  for (const auto& [n, fn] : kGlobals) {
    if (n == name) return Value(std::shared_ptr<Object>(std::make_shared<BuiltinFunction>(n, fn)));
  }
  return std::nullopt;
}

}  // namespace minnow::text::jinja
