// fake_driver.cc: the stand-in driver API (see fake_driver.h).

#include "fake_driver.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fake {

const svalue_t const0 = {T_NUMBER, 0, {0}};
const svalue_t const0u = {T_NUMBER, T_UNDEFINED, {0}};
std::vector<svalue_t> stack;

static long g_live = 0;
long live_blocks() { return g_live; }

// ---- strings ----------------------------------------------------------------------------------
struct str_hdr {
  size_t len;
  uint32_t refs;
};

char* new_string(size_t len) {
  auto* h = static_cast<str_hdr*>(malloc(sizeof(str_hdr) + len + 1));
  h->len = len;
  h->refs = 1;
  char* s = reinterpret_cast<char*>(h + 1);
  s[len] = 0;
  g_live++;
  return s;
}

char* string_copy(const char* s, size_t len) {
  char* out = new_string(len);
  memcpy(out, s, len);
  return out;
}

static str_hdr* hdr(const char* s) {
  return reinterpret_cast<str_hdr*>(const_cast<char*>(s)) - 1;
}
const char* ref_string(const char* s) {
  hdr(s)->refs++;
  return s;
}
void free_string(const char* s) {
  if (--hdr(s)->refs == 0) {
    free(hdr(s));
    g_live--;
  }
}
size_t counted_strlen(const char* s) { return hdr(s)->len; }

// ---- arrays, mappings, buffers ------------------------------------------------------------------
array_t* allocate_empty_array(int n) {
  auto* a = new array_t{1, n, new svalue_t[n > 0 ? n : 1]};
  for (int i = 0; i < n; i++) a->item[i] = const0u;
  g_live++;
  return a;
}
void free_array(array_t* a) {
  if (--a->ref) return;
  for (int i = 0; i < a->size; i++) free_svalue(&a->item[i]);
  delete[] a->item;
  delete a;
  g_live--;
}

mapping_t* allocate_mapping(int) {
  g_live++;
  return new mapping_t{1, {}};
}
svalue_t* find_for_insert(mapping_t* m, svalue_t* key, int) {
  for (auto* n : m->nodes) {
    if (svalue_equal(&n->values[0], key)) return &n->values[1];
  }
  auto* n = new mapping_node_t;
  g_live++;
  assign_svalue_no_free(&n->values[0], key);
  n->values[1] = const0u;
  m->nodes.push_back(n);
  return &n->values[1];
}
void free_mapping(mapping_t* m) {
  if (--m->ref) return;
  for (auto* n : m->nodes) {
    free_svalue(&n->values[0]);
    free_svalue(&n->values[1]);
    delete n;
    g_live--;
  }
  delete m;
  g_live--;
}

buffer_t* allocate_buffer(int n) {
  g_live++;
  return new buffer_t{1, static_cast<unsigned>(n), new unsigned char[n > 0 ? n : 1]()};
}
void free_buffer(buffer_t* b) {
  if (--b->ref) return;
  delete[] b->item;
  delete b;
  g_live--;
}

// ---- objects, function pointers -------------------------------------------------------------------
object_t* new_object(const std::string& name) {
  g_live++;
  return new object_t{1, 0, name, {}};
}
void add_ref(object_t* ob) { ob->ref++; }
void free_object(object_t* ob) {
  if (--ob->ref == 0) {
    delete ob;
    g_live--;
  }
}
void destruct_object(object_t* ob) {
  ob->flags |= O_DESTRUCTED;
  ob->funcs.clear();
  free_object(ob);
}

funptr_t* make_funp(object_t* owner, std::function<void(svalue_t*, int)> body) {
  g_live++;
  return new funptr_t{1, owner, std::move(body)};
}
void free_funp(funptr_t* f) {
  if (--f->ref == 0) {
    delete f;
    g_live--;
  }
}

// ---- svalues ----------------------------------------------------------------------------------------
void free_svalue(svalue_t* v) {
  switch (v->type) {
    case T_STRING:
      if (v->subtype != STRING_CONSTANT) free_string(v->u.string);
      break;
    case T_ARRAY:
    case T_CLASS:
      free_array(v->u.arr);
      break;
    case T_MAPPING:
      free_mapping(v->u.map);
      break;
    case T_BUFFER:
      free_buffer(v->u.buf);
      break;
    case T_OBJECT:
      free_object(v->u.ob);
      break;
    case T_FUNCTION:
      free_funp(v->u.fp);
      break;
  }
  *v = const0u;
}

void assign_svalue_no_free(svalue_t* to, const svalue_t* from) {
  *to = *from;
  switch (from->type) {
    case T_STRING:
      if (from->subtype != STRING_CONSTANT) ref_string(from->u.string);
      break;
    case T_ARRAY:
    case T_CLASS:
      from->u.arr->ref++;
      break;
    case T_MAPPING:
      from->u.map->ref++;
      break;
    case T_BUFFER:
      from->u.buf->ref++;
      break;
    case T_OBJECT:
      from->u.ob->ref++;
      break;
    case T_FUNCTION:
      from->u.fp->ref++;
      break;
  }
}

static size_t str_len(const svalue_t* v) {
  return v->subtype == STRING_CONSTANT ? strlen(v->u.string) : counted_strlen(v->u.string);
}

bool svalue_equal(const svalue_t* a, const svalue_t* b) {
  if (a->type != b->type) return false;
  switch (a->type) {
    case T_NUMBER:
      return a->u.number == b->u.number &&
             (a->subtype == T_UNDEFINED) == (b->subtype == T_UNDEFINED);
    case T_REAL:
      return a->u.real == b->u.real;
    case T_STRING:
      return str_len(a) == str_len(b) && memcmp(a->u.string, b->u.string, str_len(a)) == 0;
    case T_BUFFER:
      return a->u.buf->size == b->u.buf->size &&
             memcmp(a->u.buf->item, b->u.buf->item, a->u.buf->size) == 0;
    case T_ARRAY:
      if (a->u.arr->size != b->u.arr->size) return false;
      for (int i = 0; i < a->u.arr->size; i++) {
        if (!svalue_equal(&a->u.arr->item[i], &b->u.arr->item[i])) return false;
      }
      return true;
    case T_MAPPING: {
      if (a->u.map->nodes.size() != b->u.map->nodes.size()) return false;
      for (auto* n : a->u.map->nodes) {
        bool found = false;
        for (auto* m : b->u.map->nodes) {
          if (svalue_equal(&n->values[0], &m->values[0])) {
            if (!svalue_equal(&n->values[1], &m->values[1])) return false;
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
    }
    case T_OBJECT:
      return a->u.ob == b->u.ob;
    case T_FUNCTION:
      return a->u.fp == b->u.fp;
  }
  return false;
}

// ---- stack and calls -------------------------------------------------------------------------------
void push_svalue_moved(svalue_t v) { stack.push_back(v); }
void pop_n_elems(int n) {
  while (n-- > 0) {
    free_svalue(&stack.back());
    stack.pop_back();
  }
}

void safe_apply(const char* fun, object_t* ob, int n) {
  svalue_t* args = &stack[stack.size() - n];
  if (ob && !(ob->flags & O_DESTRUCTED)) {
    auto it = ob->funcs.find(fun);
    if (it != ob->funcs.end()) {
      auto body = it->second;  // the object may change its functions meanwhile
      body(args, n);
    }
  }
  pop_n_elems(n);
}

void safe_call_function_pointer(funptr_t* f, int n) {
  svalue_t* args = &stack[stack.size() - n];
  if (!(f->owner && (f->owner->flags & O_DESTRUCTED))) {
    auto body = f->body;
    body(args, n);
  }
  pop_n_elems(n);
}

// ---- save / restore -----------------------------------------------------------------------------------
int svalue_save_depth(const svalue_t* v) {
  int d = 0;
  if (v->type == T_ARRAY) {
    for (int i = 0; i < v->u.arr->size; i++) {
      int x = svalue_save_depth(&v->u.arr->item[i]);
      if (x > d) d = x;
      if (d > 1000) break;
    }
    return d + 1;
  }
  if (v->type == T_MAPPING) {
    for (auto* n : v->u.map->nodes) {
      int x = svalue_save_depth(&n->values[1]);
      if (x > d) d = x;
    }
    return d + 1;
  }
  return 0;
}

static void save_rec(const svalue_t* v, std::string* out) {
  switch (v->type) {
    case T_NUMBER:
      *out += std::to_string(v->u.number);
      return;
    case T_REAL: {
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", v->u.real);
      if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
      *out += buf;
      return;
    }
    case T_STRING: {
      *out += '"';
      for (size_t i = 0, n = str_len(v); i < n; i++) {
        char c = v->u.string[i];
        if (c == '"' || c == '\\' || c == '\r') {
          *out += '\\';
          *out += c;
        } else {
          *out += c == '\n' ? '\r' : c;
        }
      }
      *out += '"';
      return;
    }
    case T_ARRAY:
      *out += "({";
      for (int i = 0; i < v->u.arr->size; i++) {
        save_rec(&v->u.arr->item[i], out);
        *out += ',';
      }
      *out += "})";
      return;
    case T_MAPPING:
      *out += "([";
      for (auto* n : v->u.map->nodes) {
        save_rec(&n->values[0], out);
        *out += ':';
        save_rec(&n->values[1], out);
        *out += ',';
      }
      *out += "])";
      return;
    default:
      *out += '0';
  }
}

std::string save_svalue(const svalue_t* v) {
  std::string out;
  save_rec(v, &out);
  return out;
}

static bool restore_rec(const char*& p, svalue_t* out) {
  if (*p == '"') {
    std::string s;
    for (p++; *p && *p != '"'; p++) {
      if (*p == '\\' && p[1]) p++;
      s += *p == '\r' ? '\n' : *p;
    }
    if (*p != '"') return false;
    p++;
    *out = make_str(s);
    return true;
  }
  if (p[0] == '(' && p[1] == '{') {
    p += 2;
    std::vector<svalue_t> items;
    while (!(p[0] == '}' && p[1] == ')')) {
      svalue_t v;
      bool ok = restore_rec(p, &v);
      if (ok && *p != ',') {
        free_svalue(&v);
        ok = false;
      }
      if (!ok) {
        for (auto& x : items) free_svalue(&x);
        return false;
      }
      items.push_back(v);
      p++;
    }
    p += 2;
    *out = make_arr(std::move(items));
    return true;
  }
  if (p[0] == '(' && p[1] == '[') {
    p += 2;
    std::vector<std::pair<svalue_t, svalue_t>> kv;
    while (!(p[0] == ']' && p[1] == ')')) {
      svalue_t k, v;
      bool ok = restore_rec(p, &k);
      if (ok && (*p != ':' || !restore_rec(++p, &v))) {
        free_svalue(&k);
        ok = false;
      } else if (ok && *p != ',') {
        free_svalue(&k);
        free_svalue(&v);
        ok = false;
      }
      if (!ok) {
        for (auto& x : kv) {
          free_svalue(&x.first);
          free_svalue(&x.second);
        }
        return false;
      }
      kv.emplace_back(k, v);
      p++;
    }
    p += 2;
    *out = make_map(std::move(kv));
    return true;
  }
  char* end = nullptr;
  const char* start = p;
  while (*p && *p != ',' && *p != ':' && *p != '}' && *p != ']') p++;
  std::string num(start, p - start);
  if (num.empty()) return false;
  if (num.find_first_of(".eEn") != std::string::npos) {
    *out = make_real(strtod(num.c_str(), &end));
  } else {
    *out = make_int(strtoll(num.c_str(), &end, 10));
  }
  return end && *end == 0;
}

int restore_svalue(const char* text, svalue_t* out) {
  const char* p = text;
  if (!restore_rec(p, out)) return 1;
  if (*p) {
    free_svalue(out);
    return 1;
  }
  return 0;
}

// ---- helpers -------------------------------------------------------------------------------------------
svalue_t make_int(int64_t n) {
  svalue_t v = const0;
  v.u.number = n;
  return v;
}
svalue_t make_real(double d) {
  svalue_t v;
  v.type = T_REAL;
  v.subtype = 0;
  v.u.real = d;
  return v;
}
svalue_t make_str(const std::string& s) {
  svalue_t v;
  v.type = T_STRING;
  v.subtype = STRING_MALLOC;
  v.u.string = string_copy(s.data(), s.size());
  return v;
}
svalue_t make_buf(const std::string& bytes) {
  svalue_t v;
  v.type = T_BUFFER;
  v.subtype = 0;
  v.u.buf = allocate_buffer(static_cast<int>(bytes.size()));
  memcpy(v.u.buf->item, bytes.data(), bytes.size());
  return v;
}
svalue_t make_arr(std::vector<svalue_t> items) {
  svalue_t v;
  v.type = T_ARRAY;
  v.subtype = 0;
  v.u.arr = allocate_empty_array(static_cast<int>(items.size()));
  for (size_t i = 0; i < items.size(); i++) v.u.arr->item[i] = items[i];
  return v;
}
svalue_t make_map(std::vector<std::pair<svalue_t, svalue_t>> kv) {
  svalue_t v;
  v.type = T_MAPPING;
  v.subtype = 0;
  v.u.map = allocate_mapping(static_cast<int>(kv.size()));
  for (auto& p : kv) {
    svalue_t* slot = find_for_insert(v.u.map, &p.first, 0);
    free_svalue(slot);
    *slot = p.second;
    free_svalue(&p.first);
  }
  return v;
}
svalue_t make_obj(object_t* ob) {
  svalue_t v;
  v.type = T_OBJECT;
  v.subtype = 0;
  v.u.ob = ob;
  add_ref(ob);
  return v;
}

std::string describe(const svalue_t* v) {
  if (v->type == T_NUMBER && v->subtype == T_UNDEFINED) return "undefined";
  if (v->type == T_BUFFER) {
    return "buffer(" + std::string(reinterpret_cast<char*>(v->u.buf->item), v->u.buf->size) + ")";
  }
  if (v->type == T_OBJECT) return "object(" + v->u.ob->name + ")";
  return save_svalue(v);
}

}  // namespace fake
