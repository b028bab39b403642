/*
 * sockets.cc: unisock as FluffOS's sockets package -- the thin layer that
 * includes the driver's headers.
 *
 * It implements the shim core's Driver interface over svalue_t and the
 * driver's allocators, save_svalue/restore_svalue and safe calls; keeps the
 * lpc_socket_t mirror other driver code uses; registers unisock's reactor fd
 * once in g_event_base; puts the admin's policy from the driver's config file
 * in force before the first socket (shim_policy.h); and defines the efuns of
 * sockets.spec. Everything about sockets themselves (I/O, TLS, framing,
 * options) is in unisock.
 */

#include "base/package_api.h"

#include "packages/sockets/socket_efuns.h"
#include "vm/internal/simul_efun.h"

#include <event2/event.h>
#include <netdb.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "shim_core.h"
#include "shim_policy.h"
#include "shim_values.h"
#include "unisock.h"

namespace unisock_shim {
// The driver's value: an svalue_t. Owned ones live in a heap holder; borrowed
// ones are the driver's own svalues (stack slots, array items, mapping nodes).
struct DValue {
  svalue_t sv;
};
}  // namespace unisock_shim

namespace {

using unisock_shim::CallbackRef;
using unisock_shim::DValue;
using unisock_shim::Kind;
using unisock_shim::ObjectRef;

// A stored callback: a shared string (function name) or a function pointer, with a reference.
struct Callback {
  svalue_t sv;
};

const DValue* view(const svalue_t* sv) { return reinterpret_cast<const DValue*>(sv); }

DValue* hold(const svalue_t& sv) { return new DValue{sv}; }

svalue_t take(DValue* v) {
  svalue_t sv = v->sv;
  delete v;
  return sv;
}

int value_depth(const svalue_t* v, int depth) {
  if (depth > MAX_SAVE_SVALUE_DEPTH) return depth;
  int d = depth;
  if (v->type == T_ARRAY || v->type == T_CLASS) {
    for (int i = 0; i < v->u.arr->size && d <= MAX_SAVE_SVALUE_DEPTH; i++) {
      int x = value_depth(&v->u.arr->item[i], depth + 1);
      if (x > d) d = x;
    }
  } else if (v->type == T_MAPPING) {
    mapping_t* m = v->u.map;
    for (int j = static_cast<int>(m->table_size); j >= 0 && d <= MAX_SAVE_SVALUE_DEPTH; j--) {
      for (mapping_node_t* n = m->table[j]; n; n = n->next) {
        int x = value_depth(n->values + 1, depth + 1);
        if (x > d) d = x;
        x = value_depth(n->values, depth + 1);
        if (x > d) d = x;
      }
    }
  }
  return d;
}

class FluffDriver : public unisock_shim::Driver {
 public:
  Kind kind(const DValue* v) override {
    switch (v->sv.type) {
      case T_NUMBER:
        return v->sv.subtype == T_UNDEFINED ? Kind::Undefined : Kind::Int;
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
  int64_t int_of(const DValue* v) override { return v->sv.u.number; }
  double real_of(const DValue* v) override { return v->sv.u.real; }
  std::string_view bytes_of(const DValue* v) override {
    if (v->sv.type == T_BUFFER) {
      return std::string_view(reinterpret_cast<const char*>(v->sv.u.buf->item), v->sv.u.buf->size);
    }
    return std::string_view(v->sv.u.string, SVALUE_STRLEN(&v->sv));
  }
  size_t array_size(const DValue* v) override { return v->sv.u.arr->size; }
  const DValue* array_item(const DValue* v, size_t i) override {
    return view(&v->sv.u.arr->item[i]);
  }
  void mapping_pairs(const DValue* v,
                     std::vector<std::pair<const DValue*, const DValue*>>* out) override {
    mapping_t* m = v->sv.u.map;
    for (int j = static_cast<int>(m->table_size); j >= 0; j--) {
      for (mapping_node_t* n = m->table[j]; n; n = n->next) {
        out->emplace_back(view(n->values), view(n->values + 1));
      }
    }
  }

  DValue* dv_undefined() override { return hold(const0u); }
  DValue* dv_int(int64_t n) override {
    svalue_t sv = const0;
    sv.u.number = n;
    return hold(sv);
  }
  DValue* dv_real(double d) override {
    svalue_t sv;
    sv.type = T_REAL;
    sv.subtype = 0;
    sv.u.real = d;
    return hold(sv);
  }
  DValue* dv_string(const char* p, size_t n) override {
    char* s = new_string(n, "unisock: string");
    memcpy(s, p, n);
    s[n] = '\0';
    svalue_t sv;
    sv.type = T_STRING;
    sv.subtype = STRING_MALLOC;
    sv.u.string = s;
    return hold(sv);
  }
  DValue* dv_buffer(const uint8_t* p, size_t n) override {
    buffer_t* b = allocate_buffer(static_cast<int>(n));
    if (n) memcpy(b->item, p, n);
    svalue_t sv;
    sv.type = T_BUFFER;
    sv.subtype = 0;
    sv.u.buf = b;
    return hold(sv);
  }
  DValue* dv_array(size_t n) override {
    svalue_t sv;
    sv.type = T_ARRAY;
    sv.subtype = 0;
    sv.u.arr = allocate_array(static_cast<int>(n));
    return hold(sv);
  }
  void array_put(DValue* arr, size_t i, DValue* item) override {
    svalue_t* slot = &arr->sv.u.arr->item[i];
    free_svalue(slot, "unisock: array_put");
    *slot = take(item);
  }
  DValue* dv_mapping(size_t n) override {
    svalue_t sv;
    sv.type = T_MAPPING;
    sv.subtype = 0;
    sv.u.map = allocate_mapping(static_cast<int>(n));
    return hold(sv);
  }
  void mapping_put(DValue* map, DValue* key, DValue* val) override {
    svalue_t k = take(key);
    svalue_t v = take(val);
    try {
      svalue_t* slot = find_for_insert(map->sv.u.map, &k, 1);
      *slot = v;
    } catch (...) {
      free_svalue(&k, "unisock: mapping_put");
      free_svalue(&v, "unisock: mapping_put");
      throw;
    }
    free_svalue(&k, "unisock: mapping_put");  // the node holds its own copy
  }
  DValue* dv_object(ObjectRef ob) override {
    auto* o = static_cast<object_t*>(ob);
    if (!o || (o->flags & O_DESTRUCTED)) return hold(const0u);
    svalue_t sv;
    sv.type = T_OBJECT;
    sv.subtype = 0;
    sv.u.ob = o;
    add_ref(o, "unisock: new_object");
    return hold(sv);
  }
  void free_value(DValue* v) override {
    svalue_t sv = take(v);
    free_svalue(&sv, "unisock: free_value");
  }

  int save_text(const DValue* v, std::string* out) override {
    if (v->sv.type == T_OBJECT) return unisock_shim::kEeTypeNotSupp;
    if (value_depth(&v->sv, 0) > MAX_SAVE_SVALUE_DEPTH) return unisock_shim::kEeBadData;
    svalue_t* sv = const_cast<svalue_t*>(&v->sv);
    save_svalue_depth = 0;
    int len = svalue_save_size(sv);
    std::vector<char> buf(static_cast<size_t>(len) + 2);
    char* p = buf.data();
    *p = '\0';
    save_svalue(sv, &p);
    out->assign(buf.data(), strlen(buf.data()));
    return unisock_shim::kEeSuccess;
  }
  DValue* restore_text(const std::string& text) override {
    std::vector<char> buf(text.begin(), text.end());
    buf.push_back('\0');
    svalue_t v = const0;
    if (restore_svalue(buf.data(), &v) != 0) return nullptr;
    return hold(v);
  }

  CallbackRef callback_copy(CallbackRef cb) override {
    auto* c = new Callback;
    assign_svalue_no_free(&c->sv, &static_cast<Callback*>(cb)->sv);
    return c;
  }
  void callback_free(CallbackRef cb) override {
    auto* c = static_cast<Callback*>(cb);
    free_svalue(&c->sv, "unisock: callback_free");
    delete c;
  }
  void call(CallbackRef cb, ObjectRef target, std::vector<DValue*>* args,
            size_t required) override {
    auto* c = static_cast<Callback*>(cb);
    auto* ob = static_cast<object_t*>(target);
    if (c && args->size() > required) {
      // Optional arguments the function does not declare are not pushed: a
      // callback written for fewer arguments runs exactly as it did.
      int takes = params_taken(c->sv, ob);
      while (takes >= 0 && args->size() > required && args->size() > static_cast<size_t>(takes)) {
        free_value(args->back());
        args->pop_back();
      }
    }
    int n = 0;
    for (DValue* a : *args) {
      svalue_t sv = take(a);
      if (sp + 1 >= end_of_stack) {  // no room: drop the rest instead of raising an error here
        free_svalue(&sv, "unisock: call");
        continue;
      }
      *++sp = sv;
      n++;
    }
    args->clear();
    if (!c || (c->sv.type == T_STRING && (!ob || (ob->flags & O_DESTRUCTED)))) {
      pop_n_elems(n);
      return;
    }
    set_eval(max_eval_cost);
    if (c->sv.type == T_FUNCTION) {
      safe_call_function_pointer(c->sv.u.fp, n);
    } else {
      safe_apply(c->sv.u.string, ob, n, ORIGIN_INTERNAL);
    }
  }

  void entry_changed(int id) override;
  void log(const std::string& line) override { debug_message("%s\n", line.c_str()); }
  std::string object_name(ObjectRef ob) override {
    auto* o = static_cast<object_t*>(ob);
    return o && o->obname ? std::string("/") + o->obname : std::string();
  }

 private:
  // How many arguments the function a callback runs declares, after the
  // arguments a function pointer binds: -1 when it takes any number (a
  // `...` function, an efun without a limit) or is not found (the call then
  // does what the driver does with it). Extra arguments are not safe to
  // push everywhere: the driver raises an error for an efun pointer given
  // too many, for any apply when "call other type check" is on, and leaves
  // the stack uneven for a function with default arguments (apply_low,
  // fill_default_args).
  static int params_taken(const svalue_t& cb, object_t* ob) {
    if (cb.type == T_STRING) {
      if (!ob || (ob->flags & O_DESTRUCTED)) return -1;
      // The object apply_low runs it in: the outermost shadow, then inward.
      object_t* o = ob;
#ifndef NO_SHADOWS
      while (o->shadowed && o->shadowed != current_object && !(o->shadowed->flags & O_DESTRUCTED))
        o = o->shadowed;
#endif
      for (;;) {
        auto entry = apply_cache_lookup(cb.u.string, o->prog);
        if (entry.progp) {
          if (o->prog->function_flags[entry.runtime_index] & FUNC_TRUE_VARARGS) return -1;
          return entry.funp->num_arg;
        }
#ifndef NO_SHADOWS
        if (o->shadowing) {
          o = o->shadowing;
          continue;
        }
#endif
        return -1;
      }
    }
    if (cb.type != T_FUNCTION || !cb.u.fp) return -1;
    funptr_t* f = cb.u.fp;
    int bound = f->hdr.args ? f->hdr.args->size : 0;
    int declared = -1;
    switch (f->hdr.type & FP_MASK) {
      case FP_EFUN:
        declared = instrs[f->f.efun.index].max_arg;  // -1: no limit
        break;
      case FP_LOCAL: {
        object_t* owner = f->hdr.owner;
        if (!owner || (owner->flags & O_DESTRUCTED)) return -1;
        program_t* prog = owner->prog;
        int idx = f->f.local.index;
        if (prog->function_flags[idx] & FUNC_ALIAS) idx = prog->function_flags[idx] & ~FUNC_ALIAS;
        if (prog->function_flags[idx] & (FUNC_PROTOTYPE | FUNC_UNDEFINED | FUNC_TRUE_VARARGS))
          return -1;
        auto where = get_function_at_index(prog, idx);
        if (!where.first) return -1;
        declared = where.first->function_table[where.second].num_arg;
        break;
      }
      case FP_SIMUL: {
        if (!simul_efun_ob || !simuls) return -1;
        const function_lookup_info_t& si = simuls[f->f.simul.index];
        if (!si.func || (simul_efun_ob->prog->function_flags[si.index] & FUNC_TRUE_VARARGS))
          return -1;
        declared = si.func->num_arg;
        break;
      }
      case FP_FUNCTIONAL:
        declared = f->f.functional.num_arg;  // counts the bound arguments
        break;
      default:
        return -1;
    }
    if (declared < 0) return -1;
    return declared > bound ? declared - bound : 0;
  }
};

FluffDriver g_driver;
unisock_shim::Core* g_core = nullptr;
std::deque<lpc_socket_t> g_mirror;
struct event* g_reactor_event = nullptr;

// The driver's config file, read when the process starts: the driver keeps
// its lines to itself and has changed into the mudlib directory by the time
// the package is first used, so its path (relative to the directory the
// driver was started in) would be lost by then.
unisock_shim::DriverConfig& start_config() {
  static unisock_shim::DriverConfig c;
  return c;
}
__attribute__((constructor)) void capture_start_config() {
  start_config() = unisock_shim::capture_driver_config();
}

// The admin's policy into unisock, once, before the first socket: the config
// file's unisock lines, external_cmd_N and the mudlib directory as the driver
// holds them. Every line (problems, then the policy in force) goes to the
// debug log.
void ensure_policy() {
  static bool done = false;
  if (done) return;
  done = true;
  unisock_shim::DriverConfig cfg = start_config();
  const char* mudlib = CONFIG_STR(__MUD_LIB_DIR__);
  cfg.mudlib_dir = mudlib ? mudlib : "";
  if (char* wd = getcwd(nullptr, 0)) {  // the driver runs in the mudlib directory
    cfg.mudlib_host = wd;
    free(wd);
  }
  for (int i = 0; i < g_num_external_cmds; i++)
    cfg.external_cmds.push_back(external_cmd[i] ? external_cmd[i] : "");
  for (const std::string& line : unisock_shim::apply_config_policy(cfg))
    debug_message("%s\n", line.c_str());
}

unisock_shim::Core& core() {
  if (!g_core) {
    ensure_policy();
    g_core = new unisock_shim::Core(g_driver);
  }
  return *g_core;
}

// Runs f with an error context, as safe_apply does: an LPC error raised while
// building values (e.g. a mapping over the size limit) ends the work, not the driver.
template <class F>
void guarded(F&& f) {
  error_context_t econ;
  save_context(&econ);
  try {
    f();
  } catch (const char*) {
    restore_context(&econ);
  }
  pop_context(&econ);
}

void on_reactor(evutil_socket_t, short, void*) {
  guarded([] { core().pump(); });
}

// unisock's reactor fd, added once to the driver's event base.
void ensure_reactor() {
  core();  // the policy first (ensure_policy), before anything of unisock runs
  if (g_reactor_event || !g_event_base) return;
  int32_t fd = -1;
  if (unisock_reactor_fd(&fd) != UNISOCK_RESULT_OK || fd < 0) return;
  // libevent in debug mode (the driver's Debug build) asserts that every fd it
  // watches is non-blocking. The epoll fd's O_NONBLOCK changes nothing for
  // unisock (it never blocks on it: unisock_dispatch polls with a zero timeout).
  evutil_make_socket_nonblocking(fd);
  g_reactor_event = event_new(g_event_base, fd, EV_READ | EV_PERSIST, on_reactor, nullptr);
  event_add(g_reactor_event, nullptr);
  debug_message("unisock %s: sockets package ready (reactor fd %d)\n", unisock_version(), fd);
}

lpc_socket_t& mirror(int id) {
  while (static_cast<int>(g_mirror.size()) <= id) {
    g_mirror.emplace_back();
    lpc_socket_t& s = g_mirror.back();
    memset(static_cast<void*>(&s), 0, sizeof s);
    s.fd = -1;
    for (auto& o : s.options) o = const0u;
  }
  return g_mirror[id];
}

void free_mirror_events(lpc_socket_t& s) {
  if (s.ev_read) event_free(s.ev_read);
  if (s.ev_write) event_free(s.ev_write);
  s.ev_read = s.ev_write = nullptr;
}

// A pending (handed-over) entry takes what the driver wrote into its mirror.
void sync_from_mirror(int id) {
  unisock_shim::Entry* e = core().get(id);
  if (!e || e->pending_fd < 0) return;
  lpc_socket_t& s = mirror(id);
  e->owner = s.owner_ob;
  e->release_ob = s.release_ob;
  e->flags = s.flags;
  e->mode = s.mode;
  if (s.fd >= 0 && s.fd != e->pending_fd) e->pending_fd = s.fd;
}

// Hands a pending fd to unisock now.
void settle(int id) {
  unisock_shim::Entry* e = core().get(id);
  if (!e || e->pending_fd < 0) return;
  sync_from_mirror(id);
  free_mirror_events(mirror(id));
  core().adopt_pending(id);
}

void settle_all() {
  for (int i = 0; i < core().size(); i++) settle(i);
}

void on_pending_ready(evutil_socket_t, short, void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  guarded([id] { settle(id); });
}

// A stored callback from an efun argument (string or function; anything else: none).
CallbackRef make_callback(svalue_t* arg) {
  if (!arg) return nullptr;
  auto* c = new Callback;
  if (arg->type == T_FUNCTION) {
    assign_svalue_no_free(&c->sv, arg);
  } else if (arg->type == T_STRING) {
    c->sv.type = T_STRING;
    c->sv.subtype = STRING_SHARED;
    c->sv.u.string = make_shared_string(arg->u.string);
  } else {
    delete c;
    return nullptr;
  }
  return c;
}

// "ip port" -> addr (truncated to ADDR_BUF_SIZE) and port, for valid_socket.
void split_addr(const std::string& a, char* addr, int* port) {
  size_t sp = a.find(' ');
  std::string host = sp == std::string::npos ? a : a.substr(0, sp);
  if (host.size() >= ADDR_BUF_SIZE) host.resize(ADDR_BUF_SIZE - 1);
  strcpy(addr, host.c_str());
  *port = sp == std::string::npos ? 0 : atoi(a.c_str() + sp + 1);
}

// The master's valid_socket(caller, what, info), info = ({ fd, owner, addr,
// port, mode, asked }) (asked taken; null: an empty mapping).
bool ask_master(const char* what, int fd, object_t* owner, const char* addr, int port,
                int64_t mode, DValue* asked) {
  svalue_t info = take(core().socket_info(fd, owner, addr, port, mode, asked));
  push_object(current_object);
  push_constant_string(what);
  push_refed_array(info.u.arr);
  svalue_t* ret = apply_master_ob(APPLY_VALID_SOCKET, 3);
  return MASTER_APPROVED(ret);
}

// valid_socket for an operation on socket fd (`asked` as ask_master's).
bool valid(const char* what, int fd, DValue* asked = nullptr) {
  char addr[ADDR_BUF_SIZE];
  int port = 0;
  get_socket_address(fd, addr, &port, 0);
  return ask_master(what, fd, get_socket_owner(fd), addr, port, core().mode_of(fd), asked);
}

// What external_start (packages/external) asks, read off its arguments on
// the VM stack: it asks valid_socket("external", -1, ..., "N/A", -1) first
// thing, with them untouched. Null when the stack does not look like its call.
DValue* external_start_asked() {
  if (st_num_arg < 4 || st_num_arg > 5) return nullptr;
  svalue_t* arg = sp - st_num_arg + 1;
  if (arg[0].type != T_NUMBER || !(arg[1].type & (T_STRING | T_ARRAY))) return nullptr;
  LPC_INT which = arg[0].u.number - 1;
  if (which < 0 || which >= g_num_external_cmds || !external_cmd[which]) return nullptr;
  return core().asked_external_start(external_cmd[which], view(&arg[1]));
}

void mark_efun_socket() {
  if (current_object) current_object->flags |= O_EFUN_SOCKET;
}

}  // namespace

void FluffDriver::entry_changed(int id) {
  const unisock_shim::Entry* e = core().get(id);
  if (!e || e->pending_fd >= 0) return;  // a pending entry is the driver's to fill in
  lpc_socket_t& s = mirror(id);
  // The hand-over events exist only while an fd is pending; once unisock has it
  // (or the entry is gone) they must not fire again.
  free_mirror_events(s);
  if (e->state == unisock_shim::State::Closed) {
    free_mirror_events(s);
    memset(static_cast<void*>(&s), 0, sizeof s);
    s.fd = -1;
    for (auto& o : s.options) o = const0u;
    return;
  }
  s.flags = static_cast<unsigned short>(e->flags);
  s.mode = static_cast<socket_mode>(e->mode);
  s.state = static_cast<socket_state>(e->state);
  s.owner_ob = static_cast<object_t*>(e->owner);
  s.release_ob = static_cast<object_t*>(e->release_ob);
}

// ---- what the rest of the driver uses ------------------------------------------------------------

int find_new_socket() {
  ensure_reactor();
  int id = core().find_new_socket();
  mirror(id);
  return id;
}

lpc_socket_t* lpc_socks_get(int i) { return &mirror(i); }

int lpc_socks_num() { return core().size(); }

void new_lpc_socket_event_listener(int idx, lpc_socket_t* sock, evutil_socket_t real_fd) {
  ensure_reactor();
  mirror(idx);
  core().set_pending_fd(idx, real_fd);
  void* arg = reinterpret_cast<void*>(static_cast<intptr_t>(idx));
  free_mirror_events(*sock);
  sock->fd = real_fd;
  sock->ev_read = event_new(g_event_base, real_fd, EV_READ | EV_PERSIST, on_pending_ready, arg);
  sock->ev_write = event_new(g_event_base, real_fd, EV_WRITE, on_pending_ready, arg);
}

void set_read_callback(int which, svalue_t* cb) { core().set_read_callback(which, make_callback(cb)); }
void set_write_callback(int which, svalue_t* cb) {
  core().set_write_callback(which, make_callback(cb));
}
void set_close_callback(int which, svalue_t* cb) {
  core().set_close_callback(which, make_callback(cb));
}

int socket_close(int fd, int flags) {
  sync_from_mirror(fd);
  if ((flags & SC_DO_CALLBACK) && core().live(fd)) {
    unisock_shim::Entry* e = core().get(fd);
    if (e->close_cb) {
      CallbackRef cb = g_driver.callback_copy(e->close_cb);
      static const char kWhy[] = "closed by the driver";
      std::vector<DValue*> args{g_driver.dv_int(fd), g_driver.dv_string(kWhy, sizeof kWhy - 1)};
      core().invoke(cb, e->owner, &args, 1);
      g_driver.callback_free(cb);
    }
  }
  return core().close(fd, current_object, (flags & SC_FORCE) != 0);
}

void close_referencing_sockets(object_t* ob) {
  for (int i = 0; i < core().size(); i++) sync_from_mirror(i);
  core().close_owned_by(ob);
}

void lpc_socks_closeall() {
  if (!g_core) return;
  for (auto& s : g_mirror) free_mirror_events(s);
  core().close_all();
}

#ifdef DEBUGMALLOC_EXTENSIONS
static void mark_callback(CallbackRef cb) {
  if (!cb) return;
  svalue_t* sv = &static_cast<Callback*>(cb)->sv;
  if (sv->type == T_FUNCTION) {
    sv->u.fp->hdr.extra_ref++;
  } else if (sv->type == T_STRING) {
    EXTRA_REF(BLOCK(sv->u.string))++;
  }
}
#endif

void mark_sockets() {
#ifdef DEBUGMALLOC_EXTENSIONS
  if (!g_core) return;
  core().for_each_callback(mark_callback);
#endif
}

int check_valid_socket(const char* const what, int fd, object_t* owner, const char* const addr,
                       int port) {
  // external_start is the one caller outside the package: its socket will be a STREAM.
  if (fd == -1 && port == -1 && !strcmp(what, "external") && !strcmp(addr, "N/A"))
    return ask_master(what, fd, owner, addr, port, STREAM, external_start_asked());
  return ask_master(what, fd, owner, addr, port, core().mode_of(fd), nullptr);
}

void assign_socket_owner(svalue_t* sv, object_t* ob) {
  if (ob && !(ob->flags & O_DESTRUCTED)) {
    sv->type = T_OBJECT;
    sv->subtype = 0;
    sv->u.ob = ob;
    add_ref(ob, "assign_socket_owner");
  } else {
    *sv = const0u;
  }
}

object_t* get_socket_owner(int fd) { return static_cast<object_t*>(core().owner_of(fd)); }

int get_socket_address(int fd, char* addr, int* port, int local) {
  addr[0] = '\0';
  *port = 0;
  if (fd < 0 || fd >= core().size()) return EEFDRANGE;
  split_addr(core().address(fd, local != 0), addr, port);
  return EESUCCESS;
}

array_t* socket_status(int which) {
  DValue* v = core().status(which);
  if (!v) return nullptr;
  svalue_t sv = take(v);
  return sv.u.arr;
}

const char* socket_error(int error) {
  static const char* const texts[] = {"Problem creating socket",
                                      "Problem with setsockopt",
                                      "Problem setting non-blocking mode",
                                      "No more available efun sockets",
                                      "Descriptor out of range",
                                      "Socket is closed",
                                      "Security violation attempted",
                                      "Socket is already bound",
                                      "Address already in use",
                                      "Problem with bind",
                                      "Problem with getsockname",
                                      "Socket mode not supported",
                                      "Socket not bound to an address",
                                      "Socket is already connected",
                                      "Problem with listen",
                                      "Socket not listening",
                                      "Operation would block",
                                      "Interrupted system call",
                                      "Problem with accept",
                                      "Socket is listening",
                                      "Problem with address format",
                                      "Operation already in progress",
                                      "Connection refused",
                                      "Problem with connect",
                                      "Socket not connected",
                                      "Object type not supported",
                                      "Problem with sendto",
                                      "Problem with send",
                                      "Wait for callback",
                                      "Socket already released",
                                      "Socket not released",
                                      "Data nested too deeply"};
  int i = -(error + 1);
  if (i < 0 || i >= static_cast<int>(sizeof texts / sizeof texts[0])) {
    return "socket_error: invalid error number";
  }
  return texts[i];
}

// ---- efuns -------------------------------------------------------------------------------------------

#ifdef F_SOCKET_CREATE
void f_socket_create() {
  int num_arg = st_num_arg;
  svalue_t* arg = sp - num_arg + 1;
  if (num_arg == 3 && !(arg[2].type & (T_STRING | T_FUNCTION))) bad_arg(3, F_SOCKET_CREATE);
  ensure_reactor();
  int ret = EESECURITY;
  if (ask_master("create", -1, current_object, "N/A", -1, arg[0].u.number, nullptr)) {
    ret = core().create(arg[0].u.number, make_callback(&arg[1]),
                        num_arg == 3 ? make_callback(&arg[2]) : nullptr, current_object);
    if (ret >= 0) {
      mirror(ret);
      mark_efun_socket();
    }
  }
  pop_n_elems(num_arg - 1);
  put_number(ret);
}
#endif

#ifdef F_SOCKET_BIND
void f_socket_bind() {
  int num_arg = st_num_arg;
  svalue_t* arg = sp - num_arg + 1;
  if (num_arg == 3 && arg[2].type != T_STRING) bad_arg(3, F_SOCKET_BIND);
  int fd = arg[0].u.number;
  settle(fd);
  int ret = valid("bind", fd, core().asked_start(fd, nullptr))
                ? core().bind(fd, arg[1].u.number, num_arg == 3 ? arg[2].u.string : nullptr,
                              current_object)
                : EESECURITY;
  pop_n_elems(num_arg - 1);
  put_number(ret);
}
#endif

#ifdef F_SOCKET_LISTEN
void f_socket_listen() {
  int fd = (sp - 1)->u.number;
  settle(fd);
  int ret = valid("listen", fd) ? core().listen(fd, make_callback(sp), current_object) : EESECURITY;
  if (ret == EESUCCESS) mark_efun_socket();
  pop_stack();
  put_number(ret);
}
#endif

#ifdef F_SOCKET_ACCEPT
void f_socket_accept() {
  if (!(sp->type & (T_STRING | T_FUNCTION))) bad_arg(3, F_SOCKET_ACCEPT);
  int fd = (sp - 2)->u.number;
  settle(fd);
  int ret = valid("accept", fd)
                ? core().accept(fd, make_callback(sp - 1), make_callback(sp), current_object)
                : EESECURITY;
  if (ret >= 0) {
    mirror(ret);
    mark_efun_socket();
  }
  pop_2_elems();
  put_number(ret);
}
#endif

#ifdef F_SOCKET_CONNECT
void f_socket_connect() {
  if (!((sp - 1)->type & (T_FUNCTION | T_STRING))) bad_arg(3, F_SOCKET_CONNECT);
  if (!(sp->type & (T_FUNCTION | T_STRING))) bad_arg(4, F_SOCKET_CONNECT);
  int fd = (sp - 3)->u.number;
  settle(fd);
  // valid_socket sees the address being connected to (a URL's host and port).
  char addr[ADDR_BUF_SIZE];
  int port = 0;
  {
    std::string host;
    int64_t p = 0;
    unisock_shim::connect_target((sp - 2)->u.string, &host, &p);
    if (host.size() >= ADDR_BUF_SIZE) host.resize(ADDR_BUF_SIZE - 1);
    strcpy(addr, host.c_str());
    port = static_cast<int>(p);
  }
  int ret = ask_master("connect", fd, get_socket_owner(fd), addr, port, core().mode_of(fd),
                       core().asked_connect(fd, (sp - 2)->u.string))
                ? core().connect(fd, (sp - 2)->u.string, make_callback(sp - 1), make_callback(sp),
                                 current_object)
                : EESECURITY;
  if (ret == EESUCCESS) mark_efun_socket();
  pop_3_elems();
  put_number(ret);
}
#endif

#ifdef F_SOCKET_WRITE
void f_socket_write() {
  int num_arg = st_num_arg;
  svalue_t* arg = sp - num_arg + 1;
  if (num_arg == 3 && arg[2].type != T_STRING) bad_arg(3, F_SOCKET_WRITE);
  int fd = arg[0].u.number;
  settle(fd);
  int ret = valid("write", fd) ? core().write(fd, view(&arg[1]),
                                              num_arg == 3 ? arg[2].u.string : nullptr,
                                              current_object)
                               : EESECURITY;
  pop_n_elems(num_arg - 1);
  put_number(ret);
}
#endif

#ifdef F_SOCKET_CLOSE
void f_socket_close() {
  int fd = sp->u.number;
  sync_from_mirror(fd);
  int ret = valid("close", fd) ? core().close(fd, current_object) : EESECURITY;
  put_number(ret);
}
#endif

#ifdef F_SOCKET_RELEASE
void f_socket_release() {
  if (!(sp->type & (T_STRING | T_FUNCTION))) bad_arg(3, F_SOCKET_RELEASE);
  int fd = (sp - 2)->u.number;
  settle(fd);
  int ret = valid("release", fd)
                ? core().release(fd, (sp - 1)->u.ob, make_callback(sp), current_object)
                : EESECURITY;
  pop_2_elems();  // the callback and the object (which may have been destructed meanwhile)
  put_number(ret);
}
#endif

#ifdef F_SOCKET_ACQUIRE
void f_socket_acquire() {
  if (!((sp - 1)->type & (T_FUNCTION | T_STRING))) bad_arg(3, F_SOCKET_ACQUIRE);
  if (!(sp->type & (T_FUNCTION | T_STRING))) bad_arg(4, F_SOCKET_ACQUIRE);
  int fd = (sp - 3)->u.number;
  settle(fd);
  int ret = valid("acquire", fd) ? core().acquire(fd, make_callback(sp - 2), make_callback(sp - 1),
                                                  make_callback(sp), current_object)
                                 : EESECURITY;
  if (ret == EESUCCESS) mark_efun_socket();
  pop_3_elems();
  put_number(ret);
}
#endif

#ifdef F_SOCKET_ERROR
void f_socket_error() { put_constant_string(socket_error(sp->u.number)); }
#endif

#ifdef F_SOCKET_ADDRESS
void f_socket_address() {
  int local = (sp--)->u.number;
  if (sp->type & T_OBJECT) {
    object_t* ob = sp->u.ob;
    if (!ob->interactive) {
      free_object(&sp->u.ob, "f_socket_address");
      *sp = const0u;
      return;
    }
    char host[NI_MAXHOST], service[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<struct sockaddr*>(&ob->interactive->addr),
                    ob->interactive->addrlen, host, sizeof host, service, sizeof service,
                    NI_NUMERICHOST | NI_NUMERICSERV)) {
      strcpy(host, "0.0.0.0");
      strcpy(service, "0");
    }
    std::string s = std::string(host) + " " + service;
    pop_stack();
    copy_and_push_string(s.c_str());
    return;
  }
  int fd = sp->u.number;
  settle(fd);
  std::string s = fd >= 0 && fd < core().size() ? core().address(fd, local != 0) : " 0";
  put_malloced_string(string_copy(s.c_str(), "f_socket_address"));
}
#endif

#ifdef F_SOCKET_SET_OPTION
void f_socket_set_option() {
  int fd = (sp - 2)->u.number;
  LPC_INT option = (sp - 1)->u.number;
  settle(fd);
  if (!valid("set_option", fd, core().asked_option(option, view(sp))))
    error("socket_set_option: permission denied by valid_socket\n");
  std::string err;
  if (!core().set_option(fd, option, view(sp), current_object, &err)) error("%s\n", err.c_str());
  pop_3_elems();
}
#endif

#ifdef F_SOCKET_GET_OPTION
void f_socket_get_option() {
  int fd = (sp - 1)->u.number;
  LPC_INT option = sp->u.number;
  settle(fd);
  if (!valid("get_option", fd)) error("socket_get_option: permission denied by valid_socket\n");
  std::string err;
  DValue* out = nullptr;
  if (!core().get_option(fd, option, current_object, &out, &err)) error("%s\n", err.c_str());
  svalue_t v = take(out);
  pop_2_elems();
  *++sp = v;
}
#endif

#ifdef F_SOCKET_STATUS
void f_socket_status() {
  settle_all();
  if (st_num_arg) {
    array_t* info = socket_status(sp->u.number);
    if (!info) {
      put_number(0);
    } else {
      put_array(info);
    }
  } else {
    DValue* all = core().status_all();
    svalue_t v = take(all);
    push_refed_array(v.u.arr);
  }
}
#endif

// ---- HTTP utility efuns ---------------------------------------------------------------------------

namespace {
// Replaces the top of the stack with a unisock value (taken), or raises the last error.
void put_result(unisock_result r, unisock_value* out, const char* efun) {
  unisock_shim::UValue hold(out);
  if (r != UNISOCK_RESULT_OK) {
    std::string why = unisock_shim::last_error_text();
    error("%s: %s\n", efun, why.empty() ? unisock_shim::result_text(r).c_str() : why.c_str());
  }
  svalue_t v = take(unisock_shim::from_unisock(g_driver, out));
  pop_stack();
  *++sp = v;
}

// The efuns that take one string and give back a value.
using StringFunction = unisock_result (*)(const char*, size_t, unisock_value**);
void string_efun(StringFunction fn, const char* efun) {
  unisock_value* out = nullptr;
  unisock_result r = fn(sp->u.string, SVALUE_STRLEN(sp), &out);
  put_result(r, out, efun);
}
}  // namespace

#ifdef F_HTTP_ENCODE_URL
void f_http_encode_url() { string_efun(unisock_http_encode_url, "http_encode_url"); }
#endif

#ifdef F_HTTP_DECODE_URL
void f_http_decode_url() { string_efun(unisock_http_decode_url, "http_decode_url"); }
#endif

#ifdef F_HTTP_PARSE_HEADERS
void f_http_parse_headers() { string_efun(unisock_http_parse_headers, "http_parse_headers"); }
#endif

#ifdef F_HTTP_FORMAT_HEADERS
void f_http_format_headers() {
  int ee = 0;
  std::string why;
  unisock_shim::UValue headers = unisock_shim::to_unisock(g_driver, view(sp), &ee, &why);
  if (!headers) error("http_format_headers: %s\n", why.c_str());
  unisock_value* out = nullptr;
  unisock_result r = unisock_http_format_headers(headers.get(), &out);
  put_result(r, out, "http_format_headers");
}
#endif

#ifdef F_HTTP_DATE
void f_http_date() {
  unisock_value* out = nullptr;
  unisock_result r = unisock_http_date(sp->u.number, &out);
  put_result(r, out, "http_date");
}
#endif

#ifdef F_HTTP_PARSE_DATE
void f_http_parse_date() {
  int64_t t = -1;
  unisock_result r = unisock_http_parse_date(sp->u.string, SVALUE_STRLEN(sp), &t);
  if (r != UNISOCK_RESULT_OK) t = -1;
  free_string_svalue(sp);
  put_number(t);
}
#endif

#ifdef F_HTTP_STATUS_TEXT
void f_http_status_text() {
  unisock_value* out = nullptr;
  unisock_result r = unisock_http_status_text(sp->u.number, &out);
  put_result(r, out, "http_status_text");
}
#endif

// ---- external-process efuns (modes 22/23) ---------------------------------------------------------
//
// The master's valid_socket is asked first, as for the socket efuns: "write" for
// external_write_process (what socket_write asks), "bind" for external_spawn_process
// (it is socket_bind(id, 0), so a master's rule on starting processes holds for both),
// "external" for the others. A refusal, a bad id, another object's socket or a
// socket of another mode is an EE code (< 0) for every one of them; a path, event
// bits or a limit unisock refuses is an LPC error naming why (shim_core.h).

namespace {
// Replaces the top of the stack (a number) with *out (taken) or the EE code.
void put_value_or_ee(int ret, DValue* out) {
  if (ret == EESUCCESS && out) {
    *sp = take(out);
  } else {
    if (out) g_driver.free_value(out);
    put_number(ret);
  }
}
}  // namespace

#ifdef F_EXTERNAL_WRITE_PROCESS
void f_external_write_process() {
  int fd = (sp - 1)->u.number;
  settle(fd);
  int64_t ret = valid("write", fd, core().asked_external("external_write_process", nullptr))
                    ? core().external_write(fd, view(sp), current_object)
                    : EESECURITY;
  pop_stack();
  put_number(ret);
}
#endif

#ifdef F_EXTERNAL_READ_PROCESS
void f_external_read_process() {
  int num_arg = st_num_arg;
  svalue_t* arg = sp - num_arg + 1;
  int fd = arg[0].u.number;
  int64_t max_bytes = num_arg == 2 ? arg[1].u.number : 0;
  settle(fd);
  DValue* out = nullptr;
  int ret = valid("external", fd, core().asked_external("external_read_process", nullptr))
                ? core().external_read(fd, max_bytes, current_object, &out)
                : EESECURITY;
  pop_n_elems(num_arg - 1);
  put_value_or_ee(ret, out);
}
#endif

#ifdef F_EXTERNAL_MONITOR_PATH
void f_external_monitor_path() {
  int num_arg = st_num_arg;
  svalue_t* arg = sp - num_arg + 1;
  int fd = arg[0].u.number;
  std::string path(arg[1].u.string, SVALUE_STRLEN(&arg[1]));
  int64_t events = num_arg == 3 ? arg[2].u.number : 0;
  settle(fd);
  std::string err;
  int64_t ret = valid("external", fd, core().asked_external("external_monitor_path", &path))
                    ? core().external_monitor_path(fd, path, events, current_object, &err)
                    : EESECURITY;
  if (!err.empty()) error("%s\n", err.c_str());
  pop_n_elems(num_arg - 1);
  put_number(ret);
}
#endif

#ifdef F_EXTERNAL_STOP_MONITORING
void f_external_stop_monitoring() {
  int fd = (sp - 1)->u.number;
  std::string path(sp->u.string, SVALUE_STRLEN(sp));
  settle(fd);
  std::string err;
  int ret = valid("external", fd, core().asked_external("external_stop_monitoring", &path))
                ? core().external_stop_monitoring(fd, path, current_object, &err)
                : EESECURITY;
  if (!err.empty()) error("%s\n", err.c_str());
  pop_stack();
  put_number(ret);
}
#endif

#ifdef F_EXTERNAL_GET_FILE_EVENTS
void f_external_get_file_events() {
  int fd = sp->u.number;
  settle(fd);
  DValue* out = nullptr;
  int ret = valid("external", fd, core().asked_external("external_get_file_events", nullptr))
                ? core().external_file_events(fd, current_object, &out)
                : EESECURITY;
  put_value_or_ee(ret, out);
}
#endif

#ifdef F_EXTERNAL_SET_RESOURCE_LIMITS
void f_external_set_resource_limits() {
  int fd = (sp - 1)->u.number;
  settle(fd);
  std::string err;
  int ret = valid("external", fd, core().asked_external("external_set_resource_limits", nullptr))
                ? core().external_set_limits(fd, view(sp), current_object, &err)
                : EESECURITY;
  if (!err.empty()) error("%s\n", err.c_str());
  pop_stack();
  put_number(ret);
}
#endif

#ifdef F_EXTERNAL_GET_PROCESS_STATS
void f_external_get_process_stats() {
  int fd = sp->u.number;
  settle(fd);
  DValue* out = nullptr;
  int ret = valid("external", fd, core().asked_external("external_get_process_stats", nullptr))
                ? core().external_stats(fd, current_object, &out)
                : EESECURITY;
  put_value_or_ee(ret, out);
}
#endif

#ifdef F_EXTERNAL_SPAWN_PROCESS
void f_external_spawn_process() {
  int fd = sp->u.number;
  settle(fd);
  int ret = valid("bind", fd, core().asked_start(fd, "external_spawn_process"))
                ? core().external_spawn(fd, current_object)
                : EESECURITY;
  put_number(ret);
}
#endif
