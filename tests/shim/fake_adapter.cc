// fake_adapter.cc: Driver over the fake driver API.

#include "fake_adapter.h"

#include <cstring>

using namespace fake;
using unisock_shim::CallbackRef;
using unisock_shim::DValue;
using unisock_shim::Kind;
using unisock_shim::ObjectRef;

namespace {
struct FakeCallback {
  svalue_t sv;  // T_STRING (a function name) or T_FUNCTION
};
const svalue_t* sv_of(const DValue* v) { return &v->sv; }
}  // namespace

DValue* FakeAdapter::hold(svalue_t sv) {
  holders_++;
  return new DValue{sv};
}

svalue_t FakeAdapter::take(DValue* v) {
  svalue_t sv = v->sv;
  delete v;
  holders_--;
  return sv;
}

CallbackRef FakeAdapter::callback(const svalue_t& sv) {
  auto* cb = new FakeCallback;
  assign_svalue_no_free(&cb->sv, &sv);
  callbacks_++;
  return cb;
}

CallbackRef FakeAdapter::callback(const std::string& name) {
  svalue_t s = make_str(name);
  CallbackRef cb = callback(s);
  free_svalue(&s);
  return cb;
}

CallbackRef FakeAdapter::callback(funptr_t* fp) {
  svalue_t s;
  s.type = T_FUNCTION;
  s.subtype = 0;
  s.u.fp = fp;
  return callback(s);  // adds its own reference
}

std::string FakeAdapter::callback_name(CallbackRef cb) {
  auto* c = static_cast<FakeCallback*>(cb);
  return c->sv.type == T_STRING ? std::string(c->sv.u.string, counted_strlen(c->sv.u.string))
                                : std::string();
}

Kind FakeAdapter::kind(const DValue* v) {
  switch (sv_of(v)->type) {
    case T_NUMBER:
      return sv_of(v)->subtype == T_UNDEFINED ? Kind::Undefined : Kind::Int;
    case T_REAL:
      return Kind::Real;
    case T_STRING:
      return Kind::String;
    case T_BUFFER:
      return Kind::Buffer;
    case T_ARRAY:
      return Kind::Array;
    case T_MAPPING:
      return Kind::Mapping;
    case T_OBJECT:
      return Kind::Object;
    case T_FUNCTION:
      return Kind::Function;
    default:
      return Kind::Other;
  }
}

int64_t FakeAdapter::int_of(const DValue* v) { return sv_of(v)->u.number; }
double FakeAdapter::real_of(const DValue* v) { return sv_of(v)->u.real; }

std::string_view FakeAdapter::bytes_of(const DValue* v) {
  const svalue_t* s = sv_of(v);
  if (s->type == T_BUFFER) {
    return std::string_view(reinterpret_cast<const char*>(s->u.buf->item), s->u.buf->size);
  }
  size_t n = s->subtype == STRING_CONSTANT ? strlen(s->u.string) : counted_strlen(s->u.string);
  return std::string_view(s->u.string, n);
}

size_t FakeAdapter::array_size(const DValue* v) { return sv_of(v)->u.arr->size; }

const DValue* FakeAdapter::array_item(const DValue* v, size_t i) {
  return view(&sv_of(v)->u.arr->item[i]);
}

void FakeAdapter::mapping_pairs(const DValue* v,
                                std::vector<std::pair<const DValue*, const DValue*>>* out) {
  for (auto* n : sv_of(v)->u.map->nodes) out->emplace_back(view(&n->values[0]), view(&n->values[1]));
}

DValue* FakeAdapter::dv_undefined() { return hold(const0u); }
DValue* FakeAdapter::dv_int(int64_t n) { return hold(make_int(n)); }
DValue* FakeAdapter::dv_real(double d) { return hold(make_real(d)); }
DValue* FakeAdapter::dv_string(const char* p, size_t n) { return hold(make_str(std::string(p, n))); }
DValue* FakeAdapter::dv_buffer(const uint8_t* p, size_t n) {
  return hold(make_buf(std::string(reinterpret_cast<const char*>(p), n)));
}

DValue* FakeAdapter::dv_array(size_t n) {
  svalue_t s;
  s.type = T_ARRAY;
  s.subtype = 0;
  s.u.arr = allocate_empty_array(static_cast<int>(n));
  return hold(s);
}

void FakeAdapter::array_put(DValue* arr, size_t i, DValue* item) {
  svalue_t* slot = &arr->sv.u.arr->item[i];
  free_svalue(slot);
  *slot = take(item);
}

DValue* FakeAdapter::dv_mapping(size_t n) {
  svalue_t s;
  s.type = T_MAPPING;
  s.subtype = 0;
  s.u.map = allocate_mapping(static_cast<int>(n));
  return hold(s);
}

void FakeAdapter::mapping_put(DValue* map, DValue* key, DValue* val) {
  svalue_t k = take(key);
  svalue_t* slot = find_for_insert(map->sv.u.map, &k, 0);
  free_svalue(&k);  // the mapping holds its own copy of the key
  free_svalue(slot);
  *slot = take(val);
}

DValue* FakeAdapter::dv_object(ObjectRef ob) {
  auto* o = static_cast<object_t*>(ob);
  if (!o || (o->flags & O_DESTRUCTED)) return hold(const0u);
  return hold(make_obj(o));
}

void FakeAdapter::free_value(DValue* v) {
  svalue_t s = take(v);
  free_svalue(&s);
}

int FakeAdapter::save_text(const DValue* v, std::string* out) {
  if (sv_of(v)->type == T_OBJECT) return unisock_shim::kEeTypeNotSupp;
  if (svalue_save_depth(sv_of(v)) > unisock_shim::kMaxDepth) return unisock_shim::kEeBadData;
  *out = save_svalue(sv_of(v));
  return unisock_shim::kEeSuccess;
}

DValue* FakeAdapter::restore_text(const std::string& text) {
  svalue_t s;
  if (restore_svalue(text.c_str(), &s) != 0) return nullptr;
  return hold(s);
}

CallbackRef FakeAdapter::callback_copy(CallbackRef cb) {
  return callback(static_cast<FakeCallback*>(cb)->sv);
}

void FakeAdapter::callback_free(CallbackRef cb) {
  auto* c = static_cast<FakeCallback*>(cb);
  free_svalue(&c->sv);
  delete c;
  callbacks_--;
}

void FakeAdapter::call(CallbackRef cb, ObjectRef target, std::vector<DValue*>* args,
                       size_t required) {
  auto* fc = static_cast<FakeCallback*>(cb);
  int declared = -1;
  if (fc && fc->sv.type == T_FUNCTION) {
    declared = fc->sv.u.fp->params;
  } else if (fc && target) {
    auto* ob = static_cast<object_t*>(target);
    auto it = ob->params.find(fc->sv.u.string);
    if (it != ob->params.end()) declared = it->second;
  }
  while (declared >= 0 && args->size() > required && args->size() > static_cast<size_t>(declared)) {
    free_value(args->back());
    args->pop_back();
  }
  int n = static_cast<int>(args->size());
  for (DValue* a : *args) push_svalue_moved(take(a));
  args->clear();
  auto* c = static_cast<FakeCallback*>(cb);
  if (!c) {
    pop_n_elems(n);
  } else if (c->sv.type == T_FUNCTION) {
    safe_call_function_pointer(c->sv.u.fp, n);
  } else {
    safe_apply(c->sv.u.string, static_cast<object_t*>(target), n);
  }
}
