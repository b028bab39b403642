// shim_values.cc: unisock_value <-> driver value conversion.

#include "shim_values.h"

#include <vector>

namespace unisock_shim {

namespace {

struct ToCtx {
  Driver& d;
  int ee = kEeSuccess;
  std::string why;
};

unisock_value* fail(ToCtx& c, int ee, std::string why) {
  if (c.ee == kEeSuccess) {
    c.ee = ee;
    c.why = std::move(why);
  }
  return nullptr;
}

unisock_value* to_rec(ToCtx& c, const DValue* v, int depth) {
  unisock_value* out = nullptr;
  unisock_result r = UNISOCK_RESULT_OK;
  switch (c.d.kind(v)) {
    case Kind::Undefined:
      r = unisock_value_new_undefined(&out);
      break;
    case Kind::Int:
      r = unisock_value_new_int(c.d.int_of(v), &out);
      break;
    case Kind::Real:
      r = unisock_value_new_real(c.d.real_of(v), &out);
      break;
    case Kind::String: {
      std::string_view s = c.d.bytes_of(v);
      r = unisock_value_new_string(s.data(), s.size(), &out);
      if (r == UNISOCK_RESULT_INVALID_UTF8) {
        r = unisock_value_new_buffer(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &out);
      }
      break;
    }
    case Kind::Buffer: {
      std::string_view s = c.d.bytes_of(v);
      r = unisock_value_new_buffer(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &out);
      break;
    }
    case Kind::Array: {
      if (depth >= kMaxDepth) return fail(c, kEeBadData, "nested too deeply");
      r = unisock_value_new_array(&out);
      if (r != UNISOCK_RESULT_OK) break;
      UValue arr(out);
      size_t n = c.d.array_size(v);
      for (size_t i = 0; i < n; i++) {
        unisock_value* item = to_rec(c, c.d.array_item(v, i), depth + 1);
        if (!item) return nullptr;
        r = unisock_value_array_push(arr.get(), item);  // takes item
        if (r != UNISOCK_RESULT_OK) return fail(c, unisock_result_ee(r), last_error_text());
      }
      return arr.release();
    }
    case Kind::Mapping: {
      if (depth >= kMaxDepth) return fail(c, kEeBadData, "nested too deeply");
      r = unisock_value_new_mapping(&out);
      if (r != UNISOCK_RESULT_OK) break;
      UValue map(out);
      std::vector<std::pair<const DValue*, const DValue*>> pairs;
      c.d.mapping_pairs(v, &pairs);
      for (auto& kv : pairs) {
        UValue key(to_rec(c, kv.first, depth + 1));
        if (!key) return nullptr;
        unisock_value* val = to_rec(c, kv.second, depth + 1);
        if (!val) return nullptr;
        // LPC mapping keys are unique: O(1) push (mapping_set would search).
        r = unisock_value_mapping_push(map.get(), key.release(), val);  // takes both
        if (r != UNISOCK_RESULT_OK) return fail(c, unisock_result_ee(r), last_error_text());
      }
      return map.release();
    }
    case Kind::Object:
      return fail(c, kEeTypeNotSupp, "an object cannot be sent");
    case Kind::Function:
      return fail(c, kEeTypeNotSupp, "a function cannot be sent");
    case Kind::Other:
      return fail(c, kEeTypeNotSupp, "this kind of value cannot be sent");
  }
  if (r != UNISOCK_RESULT_OK) {
    unisock_value_free(out);
    return fail(c, unisock_result_ee(r), last_error_text());
  }
  return out;
}

DValue* from_rec(Driver& d, const unisock_value* v) {
  switch (unisock_value_get_kind(v)) {
    case UNISOCK_VALUE_KIND_UNDEFINED:
      return d.dv_undefined();
    case UNISOCK_VALUE_KIND_INT: {
      int64_t n = 0;
      unisock_value_int(v, &n);
      return d.dv_int(n);
    }
    case UNISOCK_VALUE_KIND_REAL: {
      double x = 0;
      unisock_value_real(v, &x);
      return d.dv_real(x);
    }
    case UNISOCK_VALUE_KIND_STRING: {
      const uint8_t* p = nullptr;
      size_t n = 0;
      unisock_value_bytes(v, &p, &n);
      return d.dv_string(reinterpret_cast<const char*>(p), n);
    }
    case UNISOCK_VALUE_KIND_BUFFER: {
      const uint8_t* p = nullptr;
      size_t n = 0;
      unisock_value_bytes(v, &p, &n);
      return d.dv_buffer(p, n);
    }
    case UNISOCK_VALUE_KIND_ARRAY: {
      size_t n = 0;
      unisock_value_len(v, &n);
      DHold arr(d, d.dv_array(n));
      for (size_t i = 0; i < n; i++) {
        const unisock_value* item = nullptr;
        unisock_value_array_get(v, i, &item);
        d.array_put(arr.get(), i, from_rec(d, item));
      }
      return arr.release();
    }
    case UNISOCK_VALUE_KIND_MAPPING: {
      size_t n = 0;
      unisock_value_len(v, &n);
      DHold map(d, d.dv_mapping(n));
      for (size_t i = 0; i < n; i++) {
        const unisock_value* k = nullptr;
        const unisock_value* val = nullptr;
        unisock_value_mapping_get(v, i, &k, &val);
        DHold key(d, from_rec(d, k));
        DValue* dv = from_rec(d, val);
        d.mapping_put(map.get(), key.release(), dv);
      }
      return map.release();
    }
  }
  return d.dv_undefined();
}

}  // namespace

UValue to_unisock(Driver& d, const DValue* v, int* ee, std::string* why) {
  ToCtx c{d};
  UValue out(to_rec(c, v, 0));
  if (ee) *ee = out ? kEeSuccess : c.ee;
  if (why) *why = out ? std::string() : c.why;
  return out;
}

DValue* from_unisock(Driver& d, const unisock_value* v) { return from_rec(d, v); }

std::string last_error_text() {
  char buf[1024];
  size_t need = 0;
  unisock_result r = unisock_last_error(buf, sizeof buf, &need);
  if (r == UNISOCK_RESULT_BUFFER_TOO_SMALL && need >= sizeof buf) {
    std::string s(need + 1, '\0');
    unisock_last_error(&s[0], s.size(), nullptr);
    s.resize(need);
    return s;
  }
  if (r != UNISOCK_RESULT_OK && r != UNISOCK_RESULT_BUFFER_TOO_SMALL) return std::string();
  return std::string(buf);
}

std::string result_text(unisock_result r) {
  char buf[256];
  unisock_result_text(r, buf, sizeof buf, nullptr);
  return std::string(buf);
}

}  // namespace unisock_shim
