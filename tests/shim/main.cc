// Tests of the shim core against the stand-in driver and the real libunisock.
// Prints one line per test and finally "N passed, M failed"; exits non-zero on failure.
// Every wait is bounded (run_until's deadline).

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "fake_adapter.h"
#include "fake_driver.h"
#include "shim_core.h"
#include "shim_policy.h"
#include "shim_values.h"

using namespace fake;
namespace us = unisock_shim;

static int g_passed = 0, g_failed = 0;
static bool g_ok = true;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      printf("    check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
      g_ok = false;                                                            \
    }                                                                          \
  } while (0)
#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    auto _a = (a);                                                                       \
    auto _b = (b);                                                                       \
    if (!(_a == _b)) {                                                                   \
      printf("    check failed at %s:%d: %s == %s (%s vs %s)\n", __FILE__, __LINE__, #a, #b, \
             str(_a).c_str(), str(_b).c_str());                     \
      g_ok = false;                                                                      \
    }                                                                                    \
  } while (0)

static std::string str(const std::string& s) { return s; }
template <class T>
static std::string str(T v) {
  return std::to_string(v);
}

static FakeAdapter* A;  // the adapter every test uses
static us::Core* C;     // and the core

static void run(const char* name, const std::function<void()>& body) {
  g_ok = true;
  long blocks = live_blocks(), holders = A->live_holders(), cbs = A->live_callbacks();
  body();
  // Nothing the test made may outlive it: driver allocations, value holders, callbacks.
  if (live_blocks() != blocks || A->live_holders() != holders || A->live_callbacks() != cbs) {
    printf("    leak: blocks %ld -> %ld, holders %ld -> %ld, callbacks %ld -> %ld\n", blocks,
           live_blocks(), holders, A->live_holders(), cbs, A->live_callbacks());
    g_ok = false;
  }
  if (!stack.empty()) {
    printf("    stack not empty: %zu\n", stack.size());
    g_ok = false;
  }
  printf("%s %s\n", g_ok ? "ok  " : "FAIL", name);
  (g_ok ? g_passed : g_failed)++;
}

static int reactor_fd() {
  int32_t fd = -1;
  unisock_reactor_fd(&fd);
  return fd;
}

// Runs the event loop (poll on the reactor fd, then pump) until pred() or ms pass.
static bool run_until(const std::function<bool()>& pred, int ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  int fd = reactor_fd();
  while (!pred()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left < 50 ? left : 50)) > 0 || true) C->pump();
  }
  return true;
}

static int port_of(const std::string& addr) {
  size_t sp = addr.rfind(' ');
  return sp == std::string::npos ? -1 : atoi(addr.c_str() + sp + 1);
}

// A recorded callback call: the function name and the arguments (described).
struct Call {
  std::string fn;
  std::vector<std::string> args;
  std::vector<svalue_t> values;  // copies (with references) of the arguments
};

// An LPC object whose callbacks record their calls.
struct Obj {
  object_t* ob;
  std::vector<Call> calls;
  explicit Obj(const std::string& name) : ob(new_object(name)) {}
  ~Obj() {
    clear();
    if (!(ob->flags & O_DESTRUCTED)) destruct_object(ob);
  }
  void clear() {
    for (auto& c : calls)
      for (auto& v : c.values) free_svalue(&v);
    calls.clear();
  }
  // Defines fn (recording, then running `then` if given).
  void def(const std::string& fn, std::function<void(svalue_t*, int)> then = nullptr) {
    ob->funcs[fn] = [this, fn, then](svalue_t* args, int n) {
      Call c;
      c.fn = fn;
      for (int i = 0; i < n; i++) {
        c.args.push_back(describe(&args[i]));
        svalue_t copy;
        assign_svalue_no_free(&copy, &args[i]);
        c.values.push_back(copy);
      }
      calls.push_back(std::move(c));
      if (then) then(args, n);
    };
  }
  // fn declares n parameters: optional arguments past n are dropped.
  void params(const std::string& fn, int n) { ob->params[fn] = n; }
  int count(const std::string& fn) const {
    int n = 0;
    for (auto& c : calls) n += c.fn == fn;
    return n;
  }
  const Call* last(const std::string& fn) const {
    for (auto it = calls.rbegin(); it != calls.rend(); ++it)
      if (it->fn == fn) return &*it;
    return nullptr;
  }
};

static svalue_t nested_value() {
  return make_map({
      {make_str("name"), make_str("Zoë \"quoted\"\nline")},
      {make_str("n"), make_int(-42)},
      {make_str("pi"), make_real(3.25)},
      {make_str("list"), make_arr({make_int(1), make_str("two"),
                                   make_arr({make_real(0.5), make_map({{make_int(7), make_str("seven")}})})})},
      {make_int(99), make_map({{make_str("deep"), make_arr({make_arr({make_arr({make_int(3)})})})}})},
  });
}

// ---- tests ------------------------------------------------------------------------------------------

static void test_conversion_round_trip() {
  svalue_t v = make_map({
      {make_str("s"), make_str("héllo")},
      {make_str("i"), make_int(INT64_MIN)},
      {make_str("r"), make_real(-1.5e300)},
      {make_str("b"), make_buf(std::string("\0\x01\xff", 3))},
      {make_str("u"), const0u},
      {make_str("a"), make_arr({make_int(1), make_arr({}), make_map({})})},
      {make_int(5), nested_value()},
  });
  int ee = 0;
  us::UValue u = us::to_unisock(*A, FakeAdapter::view(&v), &ee);
  CHECK(u != nullptr);
  CHECK_EQ(ee, us::kEeSuccess);
  CHECK_EQ((int)unisock_value_get_kind(u.get()), (int)UNISOCK_VALUE_KIND_MAPPING);
  size_t n = 0;
  unisock_value_len(u.get(), &n);
  CHECK_EQ(n, (size_t)7);
  us::DValue* back = us::from_unisock(*A, u.get());
  svalue_t b = A->take(back);
  CHECK(svalue_equal(&v, &b));
  // undefined stays undefined (not 0)
  svalue_t* slot = nullptr;
  svalue_t key = make_str("u");
  slot = find_for_insert(b.u.map, &key, 0);
  CHECK(slot->type == T_NUMBER && slot->subtype == T_UNDEFINED);
  free_svalue(&key);
  free_svalue(&b);
  free_svalue(&v);
}

static void test_conversion_refuses_objects_and_cycles() {
  Obj o("/obj/thing");
  svalue_t v = make_arr({make_int(1), make_obj(o.ob)});
  int ee = 0;
  std::string why;
  us::UValue u = us::to_unisock(*A, FakeAdapter::view(&v), &ee, &why);
  CHECK(u == nullptr);
  CHECK_EQ(ee, us::kEeTypeNotSupp);
  CHECK(why.find("object") != std::string::npos);
  free_svalue(&v);

  // An array that contains itself: stopped by the depth limit, nothing leaks.
  svalue_t cyc = make_arr({make_int(0)});
  free_svalue(&cyc.u.arr->item[0]);
  assign_svalue_no_free(&cyc.u.arr->item[0], &cyc);
  u = us::to_unisock(*A, FakeAdapter::view(&cyc), &ee);
  CHECK(u == nullptr);
  CHECK_EQ(ee, us::kEeBadData);
  // break the cycle so that it can be freed
  svalue_t inner = cyc.u.arr->item[0];
  cyc.u.arr->item[0] = const0;
  free_svalue(&inner);
  free_svalue(&cyc);
}

static void test_error_mapping() {
  Obj o("/obj/a");
  Obj other("/obj/b");
  CHECK_EQ(C->close(9999, o.ob), us::kEeFdRange);
  CHECK_EQ(C->close(-1, o.ob), us::kEeFdRange);
  int bad = C->create(-1, A->callback("rcb"), nullptr, o.ob);
  CHECK_EQ(bad, us::kEeModeNotSupp);
  // 7-9 are no mode; a mode of a family not built here gives kEeModeNotSupp too
  // (unisock logs one line), one that is built a socket.
  CHECK_EQ(C->create(7, A->callback("rcb"), A->callback("ccb"), o.ob), us::kEeModeNotSupp);
  for (int64_t mode = UNISOCK_MODE_HTTP_SERVER; mode <= UNISOCK_MODE_IPC_CLIENT; mode++) {
    int id = C->create(mode, A->callback("rcb"), A->callback("ccb"), o.ob);
    if (id >= 0) {
      CHECK_EQ(C->close(id, o.ob), us::kEeSuccess);
    } else {
      CHECK_EQ(id, us::kEeModeNotSupp);
    }
  }
  int fd = C->create(us::MODE_STREAM, A->callback("rcb"), A->callback("ccb"), o.ob);
  CHECK(fd >= 0);
  svalue_t s = make_str("data");
  CHECK_EQ(C->write(fd, FakeAdapter::view(&s), nullptr, o.ob), -25);  // EENOTCONN
  CHECK_EQ(C->write(fd, FakeAdapter::view(&s), nullptr, other.ob), us::kEeSecurity);
  CHECK_EQ(C->listen(fd, A->callback("lcb"), o.ob), -13);  // EENOADDR
  CHECK_EQ(C->bind(fd, 0, nullptr, other.ob), us::kEeSecurity);
  CHECK_EQ(C->bind(fd, 0, nullptr, o.ob), us::kEeSuccess);
  CHECK_EQ(C->bind(fd, 0, nullptr, o.ob), -8);  // EEISBOUND
  CHECK_EQ(C->accept(fd, A->callback("r"), A->callback("w"), o.ob), -16);  // EENOTLISTN
  CHECK(C->address(fd, true) != "0.0.0.0 0");
  CHECK(port_of(C->address(fd, true)) > 0);
  CHECK_EQ(C->close(fd, other.ob), us::kEeSecurity);
  CHECK_EQ(C->close(fd, o.ob), us::kEeSuccess);
  CHECK_EQ(C->close(fd, o.ob), us::kEeBadF);
  CHECK_EQ(C->write(fd, FakeAdapter::view(&s), nullptr, o.ob), us::kEeBadF);
  CHECK_EQ(C->release(fd, other.ob, A->callback("x"), o.ob), us::kEeBadF);
  CHECK_EQ(C->acquire(9999, A->callback("r"), A->callback("w"), A->callback("c"), o.ob),
           us::kEeFdRange);
  // A long host name is refused at once, not looked up.
  fd = C->create(us::MODE_STREAM, A->callback("rcb"), A->callback("ccb"), o.ob);
  std::string longhost(2000, 'a');
  longhost += " 80";
  CHECK(C->connect(fd, longhost.c_str(), A->callback("r"), A->callback("w"), o.ob) < 0);
  CHECK(C->connect(fd, "127.0.0.1 notaport", A->callback("r"), A->callback("w"), o.ob) < 0);
  C->close(fd, o.ob);
  free_svalue(&s);
}

static void test_options() {
  Obj o("/obj/a");
  Obj other("/obj/b");
  int fd = C->create(us::MODE_STREAM_TLS, A->callback("rcb"), A->callback("ccb"), o.ob);
  CHECK(fd >= 0);
  std::string err;
  svalue_t host = make_str("example.org");
  CHECK(C->set_option(fd, UNISOCK_OPT_SO_TLS_SNI_HOSTNAME, FakeAdapter::view(&host), o.ob, &err));
  us::DValue* out = nullptr;
  CHECK(C->get_option(fd, UNISOCK_OPT_SO_TLS_SNI_HOSTNAME, o.ob, &out, &err));
  if (out) {
    svalue_t got = A->take(out);
    CHECK(svalue_equal(&got, &host));  // the value, not the socket number
    free_svalue(&got);
  }
  svalue_t one = make_int(1);
  CHECK(C->set_option(fd, UNISOCK_OPT_SO_TLS_VERIFY_PEER, FakeAdapter::view(&one), o.ob, &err));
  CHECK(C->get_option(fd, UNISOCK_OPT_SO_TLS_VERIFY_PEER, o.ob, &out, &err));
  if (out) {
    svalue_t got = A->take(out);
    CHECK(got.type == T_NUMBER && got.u.number == 1);
    free_svalue(&got);
  }
  // Failures carry unisock's text.
  svalue_t five = make_str("yes");
  err.clear();
  CHECK(!C->set_option(fd, UNISOCK_OPT_SO_TLS_VERIFY_PEER, FakeAdapter::view(&five), o.ob, &err));
  printf("    (error text example: %s)\n", err.c_str());
  CHECK(err.find("SO_TLS_VERIFY_PEER") != std::string::npos);
  err.clear();
  CHECK(!C->set_option(fd, 9999, FakeAdapter::view(&five), o.ob, &err));
  CHECK(!err.empty());
  err.clear();
  CHECK(!C->set_option(fd, UNISOCK_OPT_SO_TLS_VERIFY_PEER, FakeAdapter::view(&one), other.ob, &err));
  CHECK(err.find("another object") != std::string::npos);
  err.clear();
  CHECK(!C->set_option(4242, UNISOCK_OPT_SO_TLS_VERIFY_PEER, FakeAdapter::view(&one), o.ob, &err));
  CHECK(err.find("bad socket") != std::string::npos);
  Obj thing("/obj/thing");
  svalue_t obv = make_obj(thing.ob);
  err.clear();
  CHECK(!C->set_option(fd, UNISOCK_OPT_SO_TLS_SNI_HOSTNAME, FakeAdapter::view(&obv), o.ob, &err));
  CHECK(!err.empty());
  free_svalue(&obv);
  err.clear();
  CHECK(!C->get_option(fd, 9999, o.ob, &out, &err));
  CHECK(!err.empty() && out == nullptr);
  printf("    (error text example: %s)\n", err.c_str());
  C->close(fd, o.ob);
  free_svalue(&host);
  free_svalue(&one);
  free_svalue(&five);
}

// Server `srv` listening on 127.0.0.1; returns its port.
static int listen_local(Obj& srv, int64_t mode, int* lfd) {
  *lfd = C->create(mode, A->callback("srv_read"), A->callback("srv_close"), srv.ob);
  CHECK(*lfd >= 0);
  CHECK_EQ(C->bind(*lfd, 0, "127.0.0.1 0", srv.ob), us::kEeSuccess);
  CHECK_EQ(C->listen(*lfd, A->callback("srv_listen"), srv.ob), us::kEeSuccess);
  return port_of(C->address(*lfd, true));
}

static void test_stream_echo_and_callbacks() {
  Obj srv("/srv"), cli("/cli");
  int accepted = -1;
  srv.def("srv_listen", [&](svalue_t* a, int) {
    accepted = C->accept(static_cast<int>(a[0].u.number), A->callback("conn_read"),
                         A->callback("conn_write"), srv.ob);
  });
  srv.def("conn_read", [&](svalue_t* a, int) {  // echo, upper-cased marker
    svalue_t reply = make_str(std::string("echo:") + a[1].u.string);
    C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(&reply), nullptr, srv.ob);
    free_svalue(&reply);
  });
  srv.def("conn_write");
  srv.def("srv_close");
  int lfd = -1;
  int port = listen_local(srv, us::MODE_STREAM, &lfd);
  CHECK(port > 0);

  cli.def("cli_read");
  cli.def("cli_close");
  bool sent = false;
  int cfd = C->create(us::MODE_STREAM, A->callback("cli_read"), A->callback("cli_close"), cli.ob);
  // The write callback is a function pointer this time.
  funptr_t* wfp = make_funp(cli.ob, [&](svalue_t* a, int n) {
    CHECK_EQ(n, 1);
    if (!sent) {
      svalue_t msg = make_str("hello");
      CHECK_EQ(C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(&msg), nullptr, cli.ob),
               us::kEeSuccess);
      free_svalue(&msg);
      sent = true;
    }
  });
  svalue_t ignored = make_str("early");
  std::string addr = "127.0.0.1 " + std::to_string(port);
  CHECK_EQ(C->connect(cfd, addr.c_str(), A->callback("cli_read"), A->callback(wfp), cli.ob),
           us::kEeSuccess);
  free_funp(wfp);  // the entry holds its own reference
  CHECK(run_until([&] { return cli.count("cli_read") > 0; }));
  CHECK(accepted >= 0);
  const Call* r = cli.last("cli_read");
  CHECK(r && r->args.size() == 2 && r->args[1] == "\"echo:hello\"");
  CHECK(r && r->values[0].u.number == cfd);
  // Status in upstream's shape.
  us::DValue* st = C->status(accepted);
  svalue_t s = A->take(st);
  CHECK(s.type == T_ARRAY && s.u.arr->size == 6);
  CHECK(s.u.arr->item[0].type == T_NUMBER && s.u.arr->item[0].u.number >= 0);
  CHECK_EQ(describe(&s.u.arr->item[1]), std::string("\"DATA_XFER\""));
  CHECK_EQ(describe(&s.u.arr->item[2]), std::string("\"STREAM\""));
  CHECK_EQ(describe(&s.u.arr->item[3]), "\"127.0.0.1." + std::to_string(port) + "\"");
  CHECK_EQ(describe(&s.u.arr->item[5]), std::string("object(/srv)"));
  free_svalue(&s);
  s = A->take(C->status(lfd));
  CHECK_EQ(describe(&s.u.arr->item[1]), std::string("\"LISTEN\""));
  free_svalue(&s);
  s = A->take(C->status_all());
  CHECK(s.type == T_ARRAY && s.u.arr->size == C->size());
  free_svalue(&s);
  CHECK(C->status(C->size()) == nullptr);

  // Remote close: the server closes its end, the client's close callback runs once.
  CHECK_EQ(C->close(accepted, srv.ob), us::kEeSuccess);
  CHECK(run_until([&] { return cli.count("cli_close") > 0; }));
  CHECK_EQ(cli.count("cli_close"), 1);
  CHECK_EQ(srv.count("srv_close"), 0);  // socket_close by LPC: no callback
  CHECK(!C->live(cfd));
  CHECK_EQ(C->close(cfd, cli.ob), us::kEeBadF);
  CHECK_EQ(C->close(lfd, srv.ob), us::kEeSuccess);
  free_svalue(&ignored);
}

// The value of string key `k` in the mapping `m` (borrowed), or nullptr.
static const svalue_t* field(const svalue_t& m, const char* k) {
  if (m.type != T_MAPPING) return nullptr;
  for (auto* n : m.u.map->nodes) {
    if (n->values[0].type == T_STRING && std::string(n->values[0].u.string) == k)
      return &n->values[1];
  }
  return nullptr;
}

static std::string field_text(const svalue_t& m, const char* k) {
  const svalue_t* v = field(m, k);
  return v ? describe(v) : std::string("(missing)");
}

// Modes 10/11 through the core: read callbacks get (id, mapping, "ip port"),
// socket_status names the mode, a reply mapping goes out, and a
// "Connection: close" reply ends both ends with their close callbacks; a
// refused connect is an error mapping, then the close callback.
static void test_http_server_and_client() {
  Obj srv("/www"), cli("/browser");
  int accepted = -1;
  std::string accepted_mode, accepted_state;
  srv.def("srv_listen", [&](svalue_t* a, int) {
    accepted = C->accept(static_cast<int>(a[0].u.number), A->callback("req"),
                         A->callback("req_write"), srv.ob);
    if (accepted < 0) return;
    svalue_t st = A->take(C->status(accepted));
    accepted_state = describe(&st.u.arr->item[1]);
    accepted_mode = describe(&st.u.arr->item[2]);
    free_svalue(&st);
  });
  srv.def("req", [&](svalue_t* a, int) {
    svalue_t reply = make_map(
        {{make_str("status"), make_int(201)},
         {make_str("headers"), make_map({{make_str("Connection"), make_str("close")}})},
         {make_str("json"), make_arr({make_int(1), make_str("two")})}});
    CHECK_EQ(C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(&reply), nullptr, srv.ob),
             us::kEeSuccess);
    free_svalue(&reply);
  });
  srv.def("req_write");
  srv.def("srv_close");
  int lfd = -1;
  int port = listen_local(srv, UNISOCK_MODE_HTTP_SERVER, &lfd);
  CHECK(port > 0);
  svalue_t st = A->take(C->status(lfd));
  CHECK_EQ(describe(&st.u.arr->item[1]), std::string("\"LISTEN\""));
  CHECK_EQ(describe(&st.u.arr->item[2]), std::string("\"HTTP_SERVER\""));
  free_svalue(&st);

  cli.def("res");
  cli.def("cli_write");
  cli.def("cli_close");
  int cfd = C->create(UNISOCK_MODE_HTTP_CLIENT, A->callback("res"), A->callback("cli_close"), cli.ob);
  CHECK(cfd >= 0);
  std::string peer = "127.0.0.1 " + std::to_string(port);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/p%20q?x=1";
  CHECK_EQ(C->connect(cfd, url.c_str(), A->callback("res"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);
  st = A->take(C->status(cfd));
  CHECK_EQ(describe(&st.u.arr->item[2]), std::string("\"HTTP_CLIENT\""));
  free_svalue(&st);
  CHECK(run_until([&] { return cli.count("cli_close") > 0 && srv.count("srv_close") > 0; }));
  CHECK_EQ(accepted_mode, std::string("\"HTTP_SERVER\""));
  CHECK_EQ(accepted_state, std::string("\"DATA_XFER\""));

  const Call* q = srv.last("req");
  CHECK(q && q->args.size() == 3);
  if (q && q->args.size() == 3) {
    CHECK_EQ(q->values[0].u.number, (int64_t)accepted);
    const svalue_t& m = q->values[1];
    CHECK(m.type == T_MAPPING);
    CHECK_EQ(field_text(m, "method"), std::string("\"GET\""));
    CHECK_EQ(field_text(m, "path"), std::string("\"/p q\""));
    CHECK_EQ(field_text(m, "query"), std::string("\"x=1\""));
    CHECK_EQ(field_text(m, "request_id"), std::string("1"));
    CHECK_EQ(q->args[2], field_text(m, "addr"));  // the addr argument is the request's "addr"
  }
  const Call* r = cli.last("res");
  CHECK(r && r->args.size() == 3);
  if (r && r->args.size() == 3) {
    CHECK_EQ(r->values[0].u.number, (int64_t)cfd);
    const svalue_t& m = r->values[1];
    CHECK_EQ(field_text(m, "status"), std::string("201"));
    CHECK_EQ(field_text(m, "body"), std::string("\"[1,\\\"two\\\"]\""));
    CHECK_EQ(field_text(m, "redirects"), std::string("0"));
    CHECK_EQ(r->args[2], "\"" + peer + "\"");
  }
  // Both ends closed by the "Connection: close" reply: one close callback each, numbers free.
  CHECK_EQ(cli.count("res"), 1);
  CHECK_EQ(cli.count("cli_close"), 1);
  CHECK_EQ(srv.count("srv_close"), 1);
  CHECK(!C->live(cfd));
  CHECK(!C->live(accepted));

  // Nobody listens on the listener's port once it is closed: an error mapping, then close.
  CHECK_EQ(C->close(lfd, srv.ob), us::kEeSuccess);
  cli.clear();
  cfd = C->create(UNISOCK_MODE_HTTP_CLIENT, A->callback("res"), A->callback("cli_close"), cli.ob);
  CHECK_EQ(C->connect(cfd, url.c_str(), A->callback("res"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);
  CHECK(run_until([&] { return cli.count("cli_close") > 0; }));
  r = cli.last("res");
  CHECK(r != nullptr);
  if (r) {
    CHECK_EQ(field_text(r->values[1], "error_code"), std::string("-23"));  // EECONNREFUSED
    CHECK(field_text(r->values[1], "error").find("connect") != std::string::npos);
  }
  CHECK_EQ(cli.count("cli_close"), 1);
  CHECK(!C->live(cfd));
}

// Modes 29/30 through the core: an IPC_SERVER and an IPC_CLIENT on a unix
// bus; client_connected arrives as a read mapping, a unicast goes out with
// socket_write's target (the client id as a string), the client's message
// comes back with "client_id", and IPC_CLIENTS reads back as an array.
static void test_ipc_bus() {
  Obj srv("/bus"), cli("/helper");
  std::string err;
  std::string client_id;
  std::string name = "shim_ipc_" + std::to_string(getpid());
  srv.def("srv_read", [&](svalue_t* a, int) {
    const svalue_t* type = field(a[1], "type");
    if (type && describe(type) == "\"client_connected\"") {
      const svalue_t* id = field(a[1], "client_id");
      if (!id || id->type != T_STRING) return;
      client_id = id->u.string;
      svalue_t msg = make_map({{make_str("message_type"), make_str("control")},
                               {make_str("data"), make_map({{make_str("hello"), make_int(1)}})}});
      CHECK_EQ(C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(&msg),
                        client_id.c_str(), srv.ob),
               us::kEeSuccess);
      free_svalue(&msg);
    }
  });
  srv.def("srv_close");
  srv.def("srv_listen");
  int sfd = C->create(UNISOCK_MODE_IPC_SERVER, A->callback("srv_read"), A->callback("srv_close"),
                      srv.ob);
  CHECK(sfd >= 0);
  svalue_t v = make_str(name);
  CHECK(C->set_option(sfd, UNISOCK_OPT_IPC_EVENT_NAME, FakeAdapter::view(&v), srv.ob, &err));
  free_svalue(&v);
  v = make_str("/tmp");
  CHECK(C->set_option(sfd, UNISOCK_OPT_IPC_SOCKET_DIR, FakeAdapter::view(&v), srv.ob, &err));
  free_svalue(&v);
  CHECK_EQ(C->bind(sfd, 0, nullptr, srv.ob), us::kEeSuccess);
  CHECK_EQ(C->listen(sfd, A->callback("srv_listen"), srv.ob), us::kEeSuccess);

  cli.def("cli_read", [&](svalue_t* a, int) {
    const svalue_t* type = field(a[1], "message_type");
    if (type && describe(type) == "\"control\"") {
      svalue_t msg = make_map({{make_str("data"), make_map({{make_str("n"), make_int(7)}})}});
      CHECK_EQ(C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(&msg), nullptr, cli.ob),
               us::kEeSuccess);
      free_svalue(&msg);
    }
  });
  cli.def("cli_write");
  cli.def("cli_close");
  int cfd = C->create(UNISOCK_MODE_IPC_CLIENT, A->callback("cli_read"), A->callback("cli_close"),
                      cli.ob);
  CHECK(cfd >= 0);
  v = make_str(name);
  CHECK(C->set_option(cfd, UNISOCK_OPT_IPC_EVENT_NAME, FakeAdapter::view(&v), cli.ob, &err));
  free_svalue(&v);
  v = make_str("/tmp");
  CHECK(C->set_option(cfd, UNISOCK_OPT_IPC_SOCKET_DIR, FakeAdapter::view(&v), cli.ob, &err));
  free_svalue(&v);
  CHECK_EQ(C->connect(cfd, "", A->callback("cli_read"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);

  auto from_client = [&]() -> const Call* {
    for (auto& c : srv.calls)
      if (c.fn == "srv_read" && field(c.values[1], "client_id") && !field(c.values[1], "type"))
        return &c;
    return nullptr;
  };
  CHECK(run_until([&] { return from_client() != nullptr; }));
  const Call* m = from_client();
  if (m) {
    CHECK_EQ(field_text(m->values[1], "client_id"), "\"" + client_id + "\"");
    CHECK_EQ(field_text(m->values[1], "message_type"), std::string("\"data\""));
    CHECK_EQ(field_text(m->values[1], "event_name"), "\"" + name + "\"");
    CHECK_EQ(m->args[2], "\"/tmp/" + name + ".sock\"");
  }
  CHECK(cli.count("cli_write") >= 1);  // the write callback said "connected"
  us::DValue* out = nullptr;
  CHECK(C->get_option(sfd, UNISOCK_OPT_IPC_CLIENTS, srv.ob, &out, &err));
  if (out) {
    svalue_t clients = A->take(out);
    CHECK(clients.type == T_ARRAY && clients.u.arr->size == 1);
    free_svalue(&clients);
  }
  CHECK_EQ(C->close(cfd, cli.ob), us::kEeSuccess);
  CHECK_EQ(C->close(sfd, srv.ob), us::kEeSuccess);
  CHECK(access(("/tmp/" + name + ".sock").c_str(), F_OK) != 0);  // the socket file is gone
  CHECK_EQ(srv.count("srv_close"), 0);
  CHECK_EQ(cli.count("cli_close"), 0);
}

// What valid_socket sees for socket_connect's address: "ip port", or a URL's host and port.
static void test_connect_target() {
  struct Case {
    const char* address;
    const char* host;
    int64_t port;
  } cases[] = {
      {"127.0.0.1 4000", "127.0.0.1", 4000},
      {"example.org", "example.org", 0},
      {"http://127.0.0.1:8080/a?b", "127.0.0.1", 8080},
      {"http://Example.ORG/", "example.org", 80},
      {"https://example.org", "example.org", 443},
      {"HTTPS://example.org:8443?x", "example.org", 8443},
      {"http://[::1]:81/", "::1", 81},
      {"https://[::1]/", "::1", 443},
      {"http://user:pw@host.test:82/", "host.test", 82},
      {"http://good.test\\@evil.test/", "good.test", 80},
      {"ws://h.test#frag", "h.test", 80},
      {"wss://h.test", "h.test", 443},
      // WebSocket URLs: path and query are not part of the host (the library gets the
      // address unchanged; only valid_socket sees the host and port).
      {"ws://127.0.0.1:8080/chat?room=1", "127.0.0.1", 8080},
      {"WSS://[::1]/play", "::1", 443},
      {"ws://mud.test?x=1", "mud.test", 80},
      {"mqtt://broker.test", "broker.test", 1883},
      {"mqtts://broker.test:9999", "broker.test", 9999},
      {"http://h.test:notaport/", "h.test", 80},
      {"gopher://h.test/", "h.test", 0},
      // Tricks the URL parser undoes: tabs/newlines, outer spaces, escapes in the host.
      {"http://ev\til.te\nst:8\r1/", "evil.test", 81},
      {"  http://evil.test/ ", "evil.test", 80},
      {"http://%65vil.test/", "evil.test", 80},
  };
  for (const Case& c : cases) {
    std::string host = "unset";
    int64_t port = -1;
    us::connect_target(c.address, &host, &port);
    if (host != c.host || port != c.port) {
      printf("    %s -> %s %lld (wanted %s %lld)\n", c.address, host.c_str(), (long long)port, c.host,
             (long long)c.port);
      g_ok = false;
    }
  }
}

// Modes 16/17 through the core: the address "ws://..." reaches unisock unchanged
// (path and query arrive in "open"), a string goes out as a text message and
// comes back as a string, a buffer as a binary message and a buffer, a mapping
// as the message it names; a string that is not UTF-8 goes out as binary.
// socket_close on the client sends close 1000: the server gets it and its close
// callback, the client nothing.
static void test_websocket_values() {
  Obj srv("/ws_srv"), cli("/ws_cli");
  int accepted = -1;
  srv.def("srv_listen", [&](svalue_t* a, int) {
    accepted = C->accept(static_cast<int>(a[0].u.number), A->callback("conn_read"),
                         A->callback("conn_write"), srv.ob);
  });
  srv.def("conn_read", [&](svalue_t* a, int) {  // echo text and binary as they came
    const svalue_t* type = field(a[1], "type");
    const svalue_t* data = field(a[1], "data");
    if (type && data && type->type == T_STRING &&
        (std::string(type->u.string) == "text" || std::string(type->u.string) == "binary")) {
      int r = C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(data), nullptr, srv.ob);
      CHECK(r == us::kEeSuccess || r == -29);  // EECALLBACK: queued
    }
  });
  srv.def("conn_write");
  srv.def("srv_close");
  int lfd = -1;
  int port = listen_local(srv, UNISOCK_MODE_WEBSOCKET_SERVER, &lfd);
  CHECK(port > 0);

  int cfd = -1;
  cli.def("cli_write");
  cli.def("cli_close");
  cli.def("cli_read", [&](svalue_t* a, int) {
    if (field_text(a[1], "type") != "\"open\"") return;
    svalue_t text = make_str("h\xc3\xa9llo");
    svalue_t bin = make_buf(std::string("\0\x01\xff", 3));
    svalue_t not_utf8 = make_str("\xff\xfe");
    svalue_t mapped = make_map({{make_str("type"), make_str("text")}, {make_str("data"), make_str("m")}});
    for (svalue_t* v : {&text, &bin, &not_utf8, &mapped}) {
      CHECK_EQ(C->write(cfd, FakeAdapter::view(v), nullptr, cli.ob), us::kEeSuccess);
      free_svalue(v);
    }
  });
  cfd = C->create(UNISOCK_MODE_WEBSOCKET_CLIENT, A->callback("cli_read"), A->callback("cli_close"),
                  cli.ob);
  CHECK(cfd >= 0);
  std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/chat?x=1";
  CHECK_EQ(C->connect(cfd, url.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);
  CHECK(run_until([&] { return cli.count("cli_read") >= 5; }));
  std::vector<std::string> got;
  for (auto& c : cli.calls) {
    if (c.fn != "cli_read") continue;
    got.push_back(field_text(c.values[1], "type") + " " + field_text(c.values[1], "data"));
    CHECK_EQ(c.args[2], "\"127.0.0.1 " + std::to_string(port) + "\"");
  }
  std::vector<std::string> want = {
      "\"open\" (missing)", "\"text\" \"h\xc3\xa9llo\"", "\"binary\" buffer(" + std::string("\0\x01\xff", 3) + ")",
      "\"binary\" buffer(\xff\xfe)", "\"text\" \"m\""};
  CHECK(got == want);
  if (got != want) {
    for (auto& g : got) printf("    got %s\n", g.c_str());
  }
  const Call* open = nullptr;
  for (auto& c : srv.calls) {
    if (c.fn == "conn_read") {
      open = &c;
      break;
    }
  }
  CHECK(open != nullptr);
  if (open) {
    CHECK_EQ(field_text(open->values[1], "type"), std::string("\"open\""));
    CHECK_EQ(field_text(open->values[1], "path"), std::string("\"/chat?x=1\""));
  }
  // socket_close on the client: close 1000 to the server, no callback on the client.
  CHECK_EQ(C->close(cfd, cli.ob), us::kEeSuccess);
  CHECK(run_until([&] { return srv.count("srv_close") > 0; }));
  const Call* last = srv.last("conn_read");
  CHECK(last && field_text(last->values[1], "type") == "\"close\"");
  if (last) CHECK_EQ(field_text(last->values[1], "code"), std::string("1000"));
  CHECK_EQ(cli.count("cli_close"), 0);
  CHECK(!C->live(accepted));
  CHECK_EQ(C->close(lfd, srv.ob), us::kEeSuccess);
}

static void test_mud_exchange() {
  Obj srv("/srv"), cli("/cli");
  int accepted = -1;
  srv.def("srv_listen", [&](svalue_t* a, int) {
    accepted = C->accept(static_cast<int>(a[0].u.number), A->callback("conn_read"),
                         A->callback("conn_write"), srv.ob);
  });
  srv.def("conn_read", [&](svalue_t* a, int) {  // send the value back wrapped in an array
    svalue_t reply = make_arr({make_str("got")});
    svalue_t copy;
    assign_svalue_no_free(&copy, &a[1]);
    svalue_t wrapped = make_arr({reply, copy});
    C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(&wrapped), nullptr, srv.ob);
    free_svalue(&wrapped);
  });
  srv.def("conn_write");
  int lfd = -1;
  int port = listen_local(srv, us::MODE_MUD, &lfd);
  svalue_t value = nested_value();
  cli.def("cli_read");
  cli.def("cli_write", [&](svalue_t* a, int) {
    if (cli.count("cli_write") == 1) {
      CHECK_EQ(C->write(static_cast<int>(a[0].u.number), FakeAdapter::view(&value), nullptr, cli.ob),
               us::kEeSuccess);
    }
  });
  int cfd = C->create(us::MODE_MUD, A->callback("cli_read"), nullptr, cli.ob);
  std::string addr = "127.0.0.1 " + std::to_string(port);
  CHECK_EQ(C->connect(cfd, addr.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);
  CHECK(run_until([&] { return cli.count("cli_read") > 0; }));
  const Call* sr = srv.last("conn_read");
  CHECK(sr && svalue_equal(&sr->values[1], &value));
  const Call* r = cli.last("cli_read");
  if (r) {
    const svalue_t& got = r->values[1];
    CHECK(got.type == T_ARRAY && got.u.arr->size == 2);
    if (got.type == T_ARRAY && got.u.arr->size == 2) CHECK(svalue_equal(&got.u.arr->item[1], &value));
  }
  // An object cannot be sent in MUD mode.
  Obj thing("/thing");
  svalue_t obv = make_obj(thing.ob);
  CHECK_EQ(C->write(cfd, FakeAdapter::view(&obv), nullptr, cli.ob), us::kEeTypeNotSupp);
  free_svalue(&obv);
  C->close(cfd, cli.ob);
  C->close(accepted, srv.ob);
  C->close(lfd, srv.ob);
  free_svalue(&value);
}

static bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// The log lines that report a closed socket.
static std::vector<std::string> close_logs() {
  std::vector<std::string> out;
  for (auto& l : A->logs)
    if (l.find(") closed: ") != std::string::npos) out.push_back(l);
  return out;
}

// close_cb(id, reason): the reason is always there for a callback that takes
// it, and dropped for one that declares only the id; an abnormal end (here a
// refused connect and a failed TLS handshake) leaves one log line naming the
// socket, its mode, its owner and the reason, a plain peer close none.
static void test_close_reason_and_log() {
  Obj srv("/srv"), cli("/cli");
  std::vector<int> accepted;
  srv.def("srv_listen", [&](svalue_t* a, int) {
    accepted.push_back(C->accept(static_cast<int>(a[0].u.number), A->callback("conn_read"),
                                 A->callback("conn_write"), srv.ob));
  });
  // The server ends a connection as soon as anything arrives (a TLS client's hello).
  srv.def("conn_read", [&](svalue_t* a, int) { C->close(static_cast<int>(a[0].u.number), srv.ob); });
  srv.def("conn_write");
  srv.def("srv_close");
  int lfd = -1;
  int port = listen_local(srv, us::MODE_STREAM, &lfd);
  std::string addr = "127.0.0.1 " + std::to_string(port);
  A->logs.clear();

  // A plain peer close, three callback shapes: a named one that takes the
  // reason, a named one that declares only the id, a function pointer that
  // declares only the id, and one that takes any number.
  cli.def("cli_read");
  cli.def("cli_write");
  cli.def("on_close");
  cli.def("on_close_1");
  cli.params("on_close_1", 1);
  std::vector<int> fp_args;
  funptr_t* fp1 = make_funp(cli.ob, [&](svalue_t*, int n) { fp_args.push_back(n); });
  fp1->params = 1;
  funptr_t* fpn = make_funp(cli.ob, [&](svalue_t* a, int n) {
    fp_args.push_back(n);
    CHECK(n == 2 && a[1].type == T_STRING && std::string(a[1].u.string) == "closed by the peer");
  });
  us::CallbackRef shapes[] = {A->callback("on_close"), A->callback("on_close_1"), A->callback(fp1),
                              A->callback(fpn)};
  free_funp(fp1);
  free_funp(fpn);
  std::vector<int> ids;
  for (us::CallbackRef cb : shapes) {
    int id = C->create(us::MODE_STREAM, A->callback("cli_read"), cb, cli.ob);
    CHECK(id >= 0);
    CHECK_EQ(C->connect(id, addr.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob),
             us::kEeSuccess);
    ids.push_back(id);
  }
  CHECK(run_until([&] { return accepted.size() == 4 && cli.count("cli_write") == 4; }));
  for (int a : accepted) CHECK_EQ(C->close(a, srv.ob), us::kEeSuccess);
  CHECK(run_until([&] {
    return cli.count("on_close") + cli.count("on_close_1") + static_cast<int>(fp_args.size()) == 4;
  }));
  const Call* c = cli.last("on_close");
  CHECK(c && c->args.size() == 2);
  if (c && c->args.size() == 2) {
    CHECK_EQ(c->values[0].u.number, (int64_t)ids[0]);
    CHECK_EQ(c->args[1], std::string("\"closed by the peer\""));
  }
  c = cli.last("on_close_1");
  CHECK(c && c->args.size() == 1 && c->values[0].u.number == ids[1]);
  CHECK(fp_args.size() == 2 && fp_args[0] + fp_args[1] == 3);  // 1 and 2 arguments
  CHECK(close_logs().empty());  // a peer close is no news for the log
  for (int id : ids) CHECK(!C->live(id));

  // A refused connect: the reason names the address, and one log line.
  cli.clear();
  CHECK_EQ(C->close(lfd, srv.ob), us::kEeSuccess);
  int rid = C->create(us::MODE_STREAM, A->callback("cli_read"), A->callback("on_close"), cli.ob);
  CHECK_EQ(C->connect(rid, addr.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);
  CHECK(run_until([&] { return cli.count("on_close") > 0; }));
  c = cli.last("on_close");
  std::string reason = c && c->args.size() == 2 && c->values[1].type == T_STRING
                           ? std::string(c->values[1].u.string) : std::string();
  CHECK(reason.rfind("connect " + addr + ": ", 0) == 0);
  CHECK(reason.find("refused") != std::string::npos);
  std::vector<std::string> logs = close_logs();
  CHECK_EQ(logs.size(), (size_t)1);
  if (logs.size() == 1)
    CHECK_EQ(logs[0], "unisock: socket " + std::to_string(rid) + " (STREAM, /cli) closed: " + reason);

  // The same for a new mode: the log names it (HTTP_CLIENT), the reason is the error's text.
  A->logs.clear();
  cli.clear();
  int hid = C->create(UNISOCK_MODE_HTTP_CLIENT, A->callback("cli_read"), A->callback("on_close"),
                      cli.ob);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  CHECK_EQ(C->connect(hid, url.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);
  CHECK(run_until([&] { return cli.count("on_close") > 0; }));
  c = cli.last("on_close");
  reason = c && c->args.size() == 2 && c->values[1].type == T_STRING
               ? std::string(c->values[1].u.string) : std::string();
  CHECK(reason.find("refused") != std::string::npos);
  const Call* err = cli.last("cli_read");  // the error mapping said the same first
  CHECK(err && field_text(err->values[1], "error") == "\"" + reason + "\"");
  logs = close_logs();
  CHECK_EQ(logs.size(), (size_t)1);
  if (logs.size() == 1)
    CHECK_EQ(logs[0], "unisock: socket " + std::to_string(hid) + " (HTTP_CLIENT, /cli) closed: " +
                          reason);

  // A TLS handshake the server cuts short: a "tls: " reason, one more log line.
  accepted.clear();
  cli.clear();
  A->logs.clear();
  port = listen_local(srv, us::MODE_STREAM, &lfd);
  addr = "127.0.0.1 " + std::to_string(port);
  int tid = C->create(us::MODE_STREAM_TLS, A->callback("cli_read"), A->callback("on_close_1"), cli.ob);
  CHECK_EQ(C->connect(tid, addr.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob),
           us::kEeSuccess);
  CHECK(run_until([&] { return cli.count("on_close_1") > 0; }));
  c = cli.last("on_close_1");
  CHECK(c && c->args.size() == 1);  // declares the id only: called as before
  logs = close_logs();
  CHECK_EQ(logs.size(), (size_t)1);
  std::string head = "unisock: socket " + std::to_string(tid) + " (STREAM_TLS, /cli) closed: tls: ";
  if (logs.size() == 1) CHECK_EQ(logs[0].substr(0, head.size()), head);
  CHECK_EQ(C->close(lfd, srv.ob), us::kEeSuccess);
  CHECK_EQ(srv.count("srv_close"), 0);

  // A flood of failing peers cannot fill the log (test_log_limit has the
  // arithmetic): a budget of 2, then the rest counted; when the budget is back
  // (the stand-in's clock, 10 s on), pump() writes the count and the last.
  A->clock_ms = 1000000;
  C->set_log_limit(2, 10000);
  A->logs.clear();
  cli.clear();
  for (int i = 0; i < 4; i++) {
    int fid = C->create(us::MODE_STREAM, A->callback("cli_read"), A->callback("on_close_1"), cli.ob);
    CHECK_EQ(C->connect(fid, addr.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob),
             us::kEeSuccess);
  }
  CHECK(run_until([&] { return cli.count("on_close_1") == 4; }));
  CHECK_EQ(close_logs().size(), (size_t)2);
  CHECK_EQ(A->logs.size(), (size_t)2);
  A->clock_ms += 10000;
  C->pump();
  CHECK_EQ(A->logs.size(), (size_t)3);
  if (A->logs.size() == 3) {
    std::string want = "unisock: 2 more abnormal closes suppressed in the last 10 s, last: socket ";
    CHECK_EQ(A->logs[2].substr(0, want.size()), want);
    CHECK(contains(A->logs[2], "(STREAM, /cli) closed: connect " + addr + ": "));
  }
  C->pump();
  CHECK_EQ(A->logs.size(), (size_t)3);  // said once
  A->clock_ms = -1;
  C->set_log_limit(20, 10000);
}

// Mode names (socket_status, the close log line): unisock's catalog, which
// names upstream's modes 0-6 as upstream's socket_status does.
static void test_mode_names() {
  const char* upstream[] = {"MUD",        "STREAM",     "DATAGRAM",         "STREAM_BINARY",
                            "DATAGRAM_BINARY", "STREAM_TLS", "STREAM_TLS_BINARY"};
  for (int m = 0; m <= 6; m++) CHECK_EQ(us::Core::mode_name(m), std::string(upstream[m]));
  for (int64_t m = 0; m <= 40; m++) {
    const char* lib = unisock_mode_name(m);
    CHECK_EQ(us::Core::mode_name(m), lib ? std::string(lib) : "MODE_" + std::to_string(m));
  }
  CHECK_EQ(us::Core::mode_name(UNISOCK_MODE_EXTERNAL_PROCESS), std::string("EXTERNAL_PROCESS"));
  CHECK_EQ(us::Core::mode_name(-1), std::string("MODE_-1"));
}

static void test_release_acquire() {
  Obj a("/a"), b("/b"), c("/c");
  int fd = C->create(us::MODE_STREAM, A->callback("rcb"), A->callback("ccb"), a.ob);
  CHECK(fd >= 0);
  // b takes it in its release callback.
  b.def("take", [&](svalue_t* args, int n) {
    CHECK_EQ(n, 2);
    CHECK(args[1].type == T_OBJECT && args[1].u.ob == b.ob);
    // The running callback is listed (a debug memory check must see its reference).
    int listed = 0;
    C->for_each_callback([&](us::CallbackRef cb) { listed += FakeAdapter::callback_name(cb) == "take"; });
    CHECK_EQ(listed, 1);
    CHECK_EQ(C->acquire(static_cast<int>(args[0].u.number), A->callback("b_read"),
                        A->callback("b_write"), A->callback("b_close"), b.ob),
             us::kEeSuccess);
  });
  CHECK_EQ(C->release(fd, b.ob, A->callback("take"), c.ob), us::kEeSecurity);  // not c's
  CHECK_EQ(C->release(fd, b.ob, A->callback("take"), a.ob), us::kEeSuccess);
  CHECK_EQ(b.count("take"), 1);
  CHECK(C->owner_of(fd) == b.ob);
  CHECK_EQ(C->close(fd, a.ob), us::kEeSecurity);  // a gave it away
  // c does not cooperate: the socket stays b's.
  c.def("ignore");
  CHECK_EQ(C->release(fd, c.ob, A->callback("ignore"), b.ob), us::kEeSockNotRlsd);
  CHECK(C->owner_of(fd) == b.ob);
  CHECK_EQ(C->acquire(fd, A->callback("r"), A->callback("w"), A->callback("c"), c.ob),
           us::kEeSockNotRlsd);
  CHECK_EQ(C->close(fd, b.ob), us::kEeSuccess);
}

static void test_close_on_owner_destruct() {
  Obj a("/a"), b("/b");
  int f1 = C->create(us::MODE_STREAM, A->callback("rcb"), A->callback("ccb"), a.ob);
  int f2 = C->create(us::MODE_DATAGRAM, A->callback("rcb"), A->callback("ccb"), a.ob);
  int f3 = C->create(us::MODE_STREAM, A->callback("rcb"), A->callback("ccb"), b.ob);
  C->bind(f1, 0, "127.0.0.1 0", a.ob);
  C->listen(f1, A->callback("lcb"), a.ob);
  size_t open_before = 0;
  unisock_socket_count(&open_before, nullptr);
  C->close_owned_by(a.ob);
  CHECK(!C->live(f1) && !C->live(f2));
  CHECK(C->live(f3));
  size_t open_after = 0;
  unisock_socket_count(&open_after, nullptr);
  CHECK_EQ(open_after + 2, open_before);
  svalue_t s = A->take(C->status(f1));
  CHECK_EQ(describe(&s.u.arr->item[1]), std::string("\"CLOSED\""));
  CHECK(s.u.arr->item[5].type == T_NUMBER);  // no owner
  free_svalue(&s);
  C->close(f3, b.ob);
}

static void test_adopted_fd() {
  Obj o("/ext");
  o.def("ext_read");
  o.def("ext_close");
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  int id = C->find_new_socket();
  C->set_pending_fd(id, sv[0]);
  C->set_read_callback(id, A->callback("ext_read"));
  C->set_close_callback(id, A->callback("ext_close"));
  C->get(id)->owner = o.ob;
  C->get(id)->flags |= us::S_EXTERNAL;
  CHECK(C->find_new_socket() != id);  // reserved while pending
  if (C->get(C->size() - 1)->state == us::State::Closed && C->size() - 1 != id) {
    // find_new_socket appended a slot for the check above; it stays free
  }
  CHECK_EQ(C->adopt_pending(id), us::kEeSuccess);
  CHECK(write(sv[1], "from child\n", 11) == 11);
  CHECK(run_until([&] { return o.count("ext_read") > 0; }));
  const Call* r = o.last("ext_read");
  CHECK(r && r->args.size() == 2 && r->args[1] == "\"from child\r\"");  // save text: \n as \r
  if (r) printf("    (read %s)\n", r->args[1].c_str());
  // The child goes away: close callback; unisock closed the fd (exactly once: it is gone now).
  close(sv[1]);
  CHECK(run_until([&] { return o.count("ext_close") > 0; }));
  CHECK(!C->live(id));
  CHECK(fcntl(sv[0], F_GETFD) == -1 || true);  // the number may be reused by now; see below

  // A pending fd closed before adoption is closed by the shim.
  int sv2[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
  int id2 = C->find_new_socket();
  C->set_pending_fd(id2, sv2[0]);
  C->get(id2)->owner = o.ob;
  CHECK_EQ(C->close(id2, o.ob), us::kEeSuccess);
  CHECK_EQ(fcntl(sv2[0], F_GETFD), -1);
  char c;
  CHECK_EQ(read(sv2[1], &c, 1), 0);  // peer sees EOF
  close(sv2[1]);
}

static void test_dead_socket_number_reused_cleanly() {
  Obj srv("/srv"), cli("/cli");
  int accepted = -1;
  srv.def("srv_listen", [&](svalue_t* a, int) {
    accepted = C->accept(static_cast<int>(a[0].u.number), A->callback("conn_read"),
                         A->callback("conn_write"), srv.ob);
  });
  srv.def("conn_read");
  srv.def("conn_close");
  cli.def("cli_write");
  cli.def("cli_close");
  int lfd = -1;
  int port = listen_local(srv, us::MODE_STREAM, &lfd);
  int cfd = C->create(us::MODE_STREAM, A->callback("cli_read"), A->callback("cli_close"), cli.ob);
  std::string addr = "127.0.0.1 " + std::to_string(port);
  C->connect(cfd, addr.c_str(), A->callback("cli_read"), A->callback("cli_write"), cli.ob);
  CHECK(run_until([&] { return accepted >= 0 && cli.count("cli_write") > 0; }));
  // Server side closes; let unisock see it without draining its events.
  C->close(accepted, srv.ob);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  size_t queued = 0;
  while (queued == 0 && std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {reactor_fd(), POLLIN, 0};
    poll(&p, 1, 50);
    size_t q = 0;
    unisock_dispatch(&q);
    queued += q;
  }
  CHECK(queued > 0);
  // LPC closes the client before the CLOSE event reached it: no callback, and
  // the number is free at once; nothing of the old socket reaches its reuse.
  CHECK_EQ(C->close(cfd, cli.ob), us::kEeSuccess);
  int again = C->create(us::MODE_STREAM, A->callback("cli_read"), A->callback("cli_close"), cli.ob);
  CHECK_EQ(again, cfd);
  C->drain();
  CHECK_EQ(cli.count("cli_close"), 0);
  CHECK_EQ(cli.count("cli_read"), 0);
  C->close(again, cli.ob);
  C->close(lfd, srv.ob);
}

static void test_close_all() {
  Obj a("/a");
  int f1 = C->create(us::MODE_STREAM, A->callback("rcb"), A->callback("ccb"), a.ob);
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int id = C->find_new_socket();
  C->set_pending_fd(id, sv[0]);
  C->set_read_callback(id, A->callback("ext_read"));
  C->close_all();
  CHECK(!C->live(f1) && !C->live(id));
  CHECK_EQ(fcntl(sv[0], F_GETFD), -1);
  close(sv[1]);
  size_t open = 9;
  unisock_socket_count(&open, nullptr);
  CHECK_EQ(open, (size_t)0);
}

// Modes 22/23 through the external_* efun operations: the values in and out
// (string/buffer data, the pulled output, the stats and file-event values, a
// limits mapping), EE codes for socket problems, unisock's text for a refused
// argument; a cat round trip and a mode-23 command whose output is pulled.
static void test_external_efuns() {
  Obj o("/ext"), other("/other");
  std::string err;
  auto opt = [&](int id, int64_t option, svalue_t v) {
    std::string e;
    bool ok = C->set_option(id, option, FakeAdapter::view(&v), o.ob, &e);
    if (!ok) printf("    set_option %lld: %s\n", (long long)option, e.c_str());
    free_svalue(&v);
    return ok;
  };
  // The stdout the read callback got so far (a buffer piece as "<buffer N>").
  auto stdout_text = [&]() {
    std::string all;
    for (auto& c : o.calls) {
      if (c.fn != "ext_read" || field_text(c.values[1], "type") != "\"stdout\"") continue;
      const svalue_t* d = field(c.values[1], "data");
      if (d && d->type == T_STRING) all += d->u.string;
      if (d && d->type == T_BUFFER) all += "<buffer " + std::to_string(d->u.buf->size) + ">";
    }
    return all;
  };
  o.def("ext_read");
  o.def("ext_close");
  svalue_t ping = make_str("ping\n");
  us::DValue* out = nullptr;

  // Socket problems are EE codes, also for the efuns that return a value.
  CHECK_EQ(C->external_write(9999, FakeAdapter::view(&ping), o.ob), (int64_t)us::kEeFdRange);
  CHECK_EQ(C->external_stats(-1, o.ob, &out), us::kEeFdRange);
  CHECK(out == nullptr);
  int s = C->create(us::MODE_STREAM, A->callback("ext_read"), A->callback("ext_close"), o.ob);
  CHECK(s >= 0);
  CHECK_EQ(C->external_write(s, FakeAdapter::view(&ping), o.ob), (int64_t)us::kEeModeNotSupp);
  CHECK_EQ(C->external_read(s, 0, o.ob, &out), us::kEeModeNotSupp);
  CHECK_EQ(C->external_file_events(s, o.ob, &out), us::kEeModeNotSupp);
  CHECK_EQ(C->external_stats(s, o.ob, &out), us::kEeModeNotSupp);
  CHECK(out == nullptr);
  CHECK_EQ(C->external_spawn(s, o.ob), us::kEeModeNotSupp);
  CHECK_EQ(C->external_monitor_path(s, "/tmp", 0, o.ob, &err), (int64_t)us::kEeModeNotSupp);
  CHECK_EQ(C->external_stop_monitoring(s, "/tmp", o.ob, &err), us::kEeModeNotSupp);
  svalue_t prio = make_map({{make_str("priority"), make_int(5)}});
  CHECK_EQ(C->external_set_limits(s, FakeAdapter::view(&prio), o.ob, &err), us::kEeModeNotSupp);
  CHECK_EQ(err, std::string());  // socket problems raise nothing
  CHECK_EQ(C->close(s, o.ob), us::kEeSuccess);
  CHECK_EQ(C->external_write(s, FakeAdapter::view(&ping), o.ob), (int64_t)us::kEeBadF);
  CHECK_EQ(C->external_spawn(s, o.ob), us::kEeBadF);

  // A cat: started by external_spawn, fed by external_write.
  int id = C->create(UNISOCK_MODE_EXTERNAL_PROCESS, A->callback("ext_read"), A->callback("ext_close"),
                     o.ob);
  CHECK(id >= 0);
  CHECK(opt(id, UNISOCK_OPT_EXTERNAL_COMMAND, make_str("/bin/cat")));
  CHECK_EQ(C->external_write(id, FakeAdapter::view(&ping), o.ob), (int64_t)-25);  // EENOTCONN: not started
  CHECK_EQ(C->external_spawn(id, other.ob), us::kEeSecurity);
  CHECK_EQ(C->external_spawn(id, o.ob), us::kEeSuccess);
  CHECK(C->get(id)->state == us::State::Bound);
  CHECK_EQ(C->external_spawn(id, o.ob), -8);  // EEISBOUND
  CHECK_EQ(C->external_write(id, FakeAdapter::view(&ping), other.ob), (int64_t)us::kEeSecurity);
  CHECK_EQ(C->external_write(id, FakeAdapter::view(&ping), o.ob), (int64_t)5);
  CHECK(run_until([&] { return stdout_text() == "ping\n"; }));
  svalue_t bin = make_buf(std::string("\xff\xfe\x00", 3));
  CHECK_EQ(C->external_write(id, FakeAdapter::view(&bin), o.ob), (int64_t)3);
  CHECK(run_until([&] { return stdout_text() == "ping\n<buffer 3>"; }));
  free_svalue(&bin);
  // EXTERNAL_ASYNC 1: the output went to the read callback, nothing to pull.
  CHECK_EQ(C->external_read(id, 0, o.ob, &out), us::kEeSuccess);
  if (out) {
    svalue_t got = A->take(out);
    CHECK_EQ(describe(&got), std::string("0"));
    free_svalue(&got);
  }
  CHECK_EQ(C->external_read(id, 0, other.ob, &out), us::kEeSecurity);
  CHECK_EQ(C->external_file_events(id, o.ob, &out), us::kEeSuccess);
  if (out) {
    svalue_t got = A->take(out);
    CHECK(got.type == T_ARRAY && got.u.arr->size == 0);
    free_svalue(&got);
  }
  // Limits: applied to the running process (setpriority, prlimit), shown in
  // the stats. (Not EXTERNAL_FILE_LIMIT before the start: valgrind, which the
  // leak run uses, refuses RLIMIT_NOFILE in the child it runs.)
  CHECK_EQ(C->external_set_limits(id, FakeAdapter::view(&prio), other.ob, &err), us::kEeSecurity);
  svalue_t limits = make_map({{make_str("priority"), make_int(5)}, {make_str("files"), make_int(64)}});
  CHECK_EQ(C->external_set_limits(id, FakeAdapter::view(&limits), o.ob, &err), us::kEeSuccess);
  CHECK_EQ(err, std::string());
  free_svalue(&limits);
  // Stats: anyone may read them (valid_socket is the driver layer's check).
  CHECK_EQ(C->external_stats(id, other.ob, &out), us::kEeSuccess);
  if (out) {
    svalue_t st = A->take(out);
    const svalue_t* pid = field(st, "pid");
    CHECK(pid && pid->type == T_NUMBER && pid->u.number > 0);
    CHECK_EQ(field_text(st, "running"), std::string("1"));
    CHECK_EQ(field_text(st, "restarts"), std::string("0"));
    for (const char* k : {"uptime_ms", "cpu_ms", "rss_kb", "max_rss_kb"}) {
      const svalue_t* v = field(st, k);
      CHECK(v && v->type == T_NUMBER && v->u.number >= 0);
    }
    const svalue_t* limits = field(st, "limits");
    CHECK(limits && limits->type == T_MAPPING);
    if (limits) {
      const svalue_t* files = field(*limits, "files");
      CHECK(files && field_text(*files, "max") == "64" &&
            field_text(*files, "mechanism") == "\"rlimit_nofile\"");
      const svalue_t* pr = field(*limits, "priority");
      CHECK(pr && field_text(*pr, "nice") == "5");
    }
    const svalue_t* sandbox = field(st, "sandbox");
    CHECK(sandbox && sandbox->type == T_MAPPING);
    free_svalue(&st);
  }
  // Refused arguments: unisock's text to raise (and an EE code below zero).
  err.clear();
  svalue_t badkey = make_map({{make_str("speed"), make_int(5)}});
  CHECK(C->external_set_limits(id, FakeAdapter::view(&badkey), o.ob, &err) < 0);
  CHECK(err.find("external_set_resource_limits") != std::string::npos &&
        err.find("speed") != std::string::npos);
  printf("    (error text example: %s)\n", err.c_str());
  free_svalue(&badkey);
  err.clear();
  Obj thing("/thing");
  svalue_t obval = make_map({{make_str("files"), make_obj(thing.ob)}});
  CHECK(C->external_set_limits(id, FakeAdapter::view(&obval), o.ob, &err) < 0);
  CHECK(err.find("external_set_resource_limits") != std::string::npos);
  free_svalue(&obval);
  err.clear();
  CHECK(C->external_monitor_path(id, "/tmp", 0x100, o.ob, &err) < 0);
  CHECK(err.find("events") != std::string::npos);
  err.clear();
  CHECK(C->external_monitor_path(id, "/no/such/dir/unisock", 0, o.ob, &err) < 0);
  CHECK(!err.empty());
  err.clear();
  CHECK(C->external_monitor_path(id, std::string("/tmp\0x", 6), 0, o.ob, &err) < 0);
  CHECK(err.find("NUL") != std::string::npos);
  err.clear();
  CHECK(C->external_stop_monitoring(id, "/not/watched", o.ob, &err) < 0);
  CHECK(!err.empty());
  err.clear();
  // End of input: cat exits; the exit mapping, then the close callback.
  svalue_t eof = make_map({{make_str("eof"), make_int(1)}});
  CHECK_EQ(C->write(id, FakeAdapter::view(&eof), nullptr, o.ob), us::kEeSuccess);
  free_svalue(&eof);
  CHECK(run_until([&] { return o.count("ext_close") > 0; }));
  const Call* last = o.last("ext_read");
  CHECK(last && field_text(last->values[1], "type") == "\"exit\"");
  CHECK_EQ(C->external_stats(id, o.ob, &out), us::kEeBadF);
  if (out) A->free_value(out);
  out = nullptr;
  o.clear();

  // Mode 23: stdout is pulled while the command runs, and what was pulled is
  // not in the result mapping.
  int cmd = C->create(UNISOCK_MODE_EXTERNAL_COMMAND_MODE, A->callback("ext_read"),
                      A->callback("ext_close"), o.ob);
  CHECK(cmd >= 0);
  CHECK(opt(cmd, UNISOCK_OPT_EXTERNAL_COMMAND, make_str("/bin/sh")));
  CHECK(opt(cmd, UNISOCK_OPT_EXTERNAL_ARGS,
            make_arr({make_str("-c"), make_str("echo first; read x; echo second $x")})));
  CHECK_EQ(C->external_spawn(cmd, o.ob), us::kEeSuccess);
  std::string pulled;
  CHECK(run_until([&] {
    us::DValue* v = nullptr;
    if (C->external_read(cmd, 3, o.ob, &v) != us::kEeSuccess || !v) return true;
    svalue_t got = A->take(v);
    bool text = got.type == T_STRING;
    if (text) pulled += pulled.empty() ? std::string(got.u.string) + "|" : got.u.string;
    free_svalue(&got);
    return pulled.size() >= 7;
  }));
  CHECK_EQ(pulled, std::string("fir|st\n"));  // at most 3 bytes a pull
  svalue_t go = make_str("go\n");
  CHECK_EQ(C->external_write(cmd, FakeAdapter::view(&go), o.ob), (int64_t)3);
  free_svalue(&go);
  CHECK(run_until([&] { return o.count("ext_close") > 0; }));
  const Call* res = o.last("ext_read");
  CHECK(res && field_text(res->values[1], "type") == "\"result\"");
  if (res) {
    const svalue_t* so = field(res->values[1], "stdout");
    CHECK(so && so->type == T_STRING && std::string(so->u.string) == "second go\n");
    CHECK_EQ(field_text(res->values[1], "exit_code"), std::string("0"));
  }
  free_svalue(&prio);
  free_svalue(&ping);
}

// ---- the admin's policy from the driver's config file (shim_policy.h) -----------------------------

// The policy's general tests run with: everything allowed (they start
// processes, watch paths and make socket files of their own).
static const char kOpen[] = "{\"open\":1}";

// The JSON of one key of the policy in force.
static std::string policy_key(const char* key) {
  unisock_value* v = nullptr;
  if (unisock_get_policy(&v) != UNISOCK_RESULT_OK) return "(no policy)";
  us::UValue hold(v);
  size_t n = 0;
  unisock_value_len(v, &n);
  for (size_t i = 0; i < n; i++) {
    const unisock_value* k = nullptr;
    const unisock_value* val = nullptr;
    unisock_value_mapping_get(v, i, &k, &val);
    const uint8_t* p = nullptr;
    size_t len = 0;
    unisock_value_bytes(k, &p, &len);
    if (std::string(reinterpret_cast<const char*>(p), len) != key) continue;
    char* j = nullptr;
    unisock_value_to_json(val, &j);
    std::string out = j ? j : "?";
    unisock_string_free(j);
    return out;
  }
  return "(missing)";
}

static std::string real(const std::string& p) {
  char* r = realpath(p.c_str(), nullptr);
  std::string out = r ? r : p;
  free(r);
  return out;
}

// A scratch directory for files the policy names (removed by the caller's rm_tree).
static std::string scratch_dir() {
  char tmpl[] = "/tmp/unisock-shim-policy-XXXXXX";
  char* d = mkdtemp(tmpl);
  return d ? real(d) : std::string("/tmp");
}

static void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

static void rm_tree(const std::string& dir) {
  if (dir.compare(0, 25, "/tmp/unisock-shim-policy-") != 0) return;
  std::string cmd = "rm -rf '" + dir + "'";
  if (system(cmd.c_str()) != 0) printf("    (could not remove %s)\n", dir.c_str());
}

static us::DriverConfig config_with(const std::string& lines, const std::string& mudlib) {
  us::DriverConfig c;
  c.path = mudlib + "/etc/config.test";
  c.text = "name : Test\n# a comment\nmudlib directory : " + mudlib + " # the lib\n" + lines;
  c.mudlib_dir = mudlib;
  c.mudlib_host = mudlib;
  c.external_cmds.resize(100);
  return c;
}

// The driver's reading of its config: comments, blanks, the 119-character
// line limit, its sscanf("key : %[^\n]") and the config file on its command line.
static void test_config_reading() {
  int stopped = -1;
  std::string text = "a : 1\n\n   # only a comment\n  b : two # and a comment\r\n";
  text += std::string(119, 'x') + "\n";  // the longest line the driver reads
  text += "c:3\n" + std::string(120, 'y') + "\nd : 4\n";
  std::vector<us::ConfigLine> lines = us::config_lines(text, &stopped);
  CHECK_EQ(lines.size(), (size_t)4);
  if (lines.size() == 4) {
    CHECK_EQ(lines[0].number, 1);
    CHECK_EQ(lines[0].text, std::string("a : 1"));
    CHECK_EQ(lines[1].number, 4);
    CHECK_EQ(lines[1].text, std::string("b : two"));
    CHECK_EQ(lines[2].text.size(), (size_t)119);
    CHECK_EQ(lines[3].text, std::string("c:3"));
  }
  CHECK_EQ(stopped, 7);  // the 120-character line: nothing after it is read
  std::string v;
  CHECK(us::scan_config_value("mudlib directory : /mud/lib", "mudlib directory", &v));
  CHECK_EQ(v, std::string("/mud/lib"));
  CHECK(us::scan_config_value("mudlib   directory:./", "mudlib directory", &v));
  CHECK_EQ(v, std::string("./"));
  CHECK(us::scan_config_value("mudlibdirectory :x y", "mudlib directory", &v));  // as sscanf
  CHECK_EQ(v, std::string("x y"));
  CHECK(!us::scan_config_value("mudlib directory :", "mudlib directory", &v));
  CHECK(!us::scan_config_value("mudlib dir : x", "mudlib directory", &v));

  using namespace std::string_literals;
  CHECK_EQ(us::config_path_from_cmdline("driver\0etc/config.test\0-ftest\0"s, "/srv/mud"),
           std::string("/srv/mud/etc/config.test"));
  CHECK_EQ(us::config_path_from_cmdline("/bin/driver\0-d\0/etc/mud.cfg\0"s, "/x/"),
           std::string("/etc/mud.cfg"));
  CHECK_EQ(us::config_path_from_cmdline("driver\0-ftest\0"s, "/x"), std::string());
  CHECK_EQ(us::config_path_from_cmdline("driver\0\0cfg\0"s, "/x"), std::string());  // as the driver
  // The file is read as a regular file only (never a FIFO, which would block).
  std::string t, err;
  CHECK(!us::read_small_file("/dev/null", 100, &t, &err));
  CHECK_EQ(err, std::string("not a regular file"));
  CHECK(!us::read_small_file("/no/such/file", 100, &t, &err));
  // This process's own command line names no config: an error, not a guess.
  us::DriverConfig self = us::capture_driver_config();
  CHECK(self.path.empty() || !self.read_error.empty() || !self.text.empty());
}

// Config lines -> the policy read back through unisock_get_policy.
static void test_config_policy() {
  std::string dir = scratch_dir();
  std::string lib = dir + "/lib";
  mkdir(lib.c_str(), 0755);
  mkdir((dir + "/incoming").c_str(), 0755);
  std::string sh = real("/bin/sh");

  // No unisock line: the default (HTTP, TLS files in the mudlib) and the
  // external_cmd_N commands, a relative one taken from the mudlib, one with
  // ".." that does not exist left out with a note.
  us::DriverConfig c = config_with("external_cmd_1 : /bin/sh\n", lib);
  c.external_cmds[0] = "/bin/sh";
  c.external_cmds[1] = "c:\\Windows\\curl.exe";
  c.external_cmds[4] = "../nowhere/../x";
  std::vector<std::string> log = us::apply_config_policy(c);
  CHECK_EQ(log.size(), (size_t)2);
  if (log.size() == 2) {
    CHECK(contains(log[0], "external_cmd_5") && contains(log[0], "not added"));
    CHECK(contains(log[1], "unisock: policy in force (the default: no unisock line in " + lib +
                               "/etc/config.test): {"));
  }
  CHECK_EQ(policy_key("modes"), std::string("[10,11,12,13,16,17,18,19]"));
  CHECK_EQ(policy_key("tls_dirs"), "[\"" + lib + "\"]");
  CHECK_EQ(policy_key("commands"), "[\"" + sh + "\",\"" + lib + "/c:\\\\Windows\\\\curl.exe\"]");
  CHECK_EQ(policy_key("shell"), std::string("0"));

  // Lines: each names a key (one key on several lines collects them); a key no
  // line names keeps its default (tls_dirs); numbers and names for modes and users.
  c = config_with(
      "unisock modes : 10 11 22 EXTERNAL_COMMAND_MODE\n"
      "Unisock commands : /usr/bin/env   # the helpers\n"
      "unisock   commands:" + dir + "/\n"
      "unisock shell : 1\n"
      "unisock users : 0 root\n"
      "unisock watch_dirs : " + dir + "/incoming /tmp\n"
      "unisock socket_dirs :\n",
      lib);
  c.external_cmds[0] = "/bin/sh";
  log = us::apply_config_policy(c);
  CHECK_EQ(log.size(), (size_t)1);
  if (!log.empty()) CHECK(contains(log.back(), "(from 7 unisock line(s) of " + lib + "/etc/config.test)"));
  CHECK_EQ(policy_key("modes"), std::string("[10,11,22,23]"));
  CHECK_EQ(policy_key("commands"),
           "[\"" + real("/usr/bin/env") + "\",\"" + sh + "\",\"" + dir + "/\"]");
  CHECK_EQ(policy_key("shell"), std::string("1"));
  // "0" went as the number 0 (a string would name a user "0": refused above);
  // unisock reads numeric ids back as numbers (or as their text, before issue 13's enforcement).
  CHECK(policy_key("users") == "[0,\"root\"]" || policy_key("users") == "[\"0\",\"root\"]");
  CHECK_EQ(policy_key("watch_dirs"), "[\"" + dir + "/incoming\",\"/tmp\"]");
  CHECK_EQ(policy_key("socket_dirs"), std::string("[]"));
  CHECK_EQ(policy_key("tls_dirs"), "[\"" + lib + "\"]");
  CHECK_EQ(policy_key("open"), std::string("0"));

  // A policy_file is the whole policy (a key it leaves out allows nothing);
  // lines replace its keys; external_cmd_N still added.
  std::string file = dir + "/policy.json";
  write_file(file, "{\"modes\": [22], \"commands\": [\"/bin/sh\"], \"watch_dirs\": [\"/tmp\"]}");
  c = config_with("unisock policy_file : " + file + "\nunisock watch_dirs : " + dir + "\n", lib);
  c.external_cmds[2] = "/usr/bin/env";
  log = us::apply_config_policy(c);
  CHECK_EQ(log.size(), (size_t)1);
  if (!log.empty()) CHECK(contains(log.back(), "(from " + file + " and 2 unisock line(s) of "));
  CHECK_EQ(policy_key("modes"), std::string("[22]"));
  CHECK_EQ(policy_key("commands"), "[\"" + sh + "\",\"" + real("/usr/bin/env") + "\"]");
  CHECK_EQ(policy_key("watch_dirs"), "[\"" + dir + "\"]");
  CHECK_EQ(policy_key("tls_dirs"), std::string("[]"));

  // Every problem: logged, naming the line, and the default in force.
  struct Bad {
    std::string lines;
    std::vector<std::string> said;  // what the first log line must contain
  };
  std::vector<Bad> bad = {
      {"unisock_modes : 22\n", {"line 4 \"unisock_modes : 22\"", "not a policy line"}},
      {"unisock modes 22\n", {"line 4", "not a policy line"}},
      {"unisock shell : 2\n", {"line 4", "\"shell\" wants 0 or 1"}},
      {"unisock shell : 1\nunisock shell : 1\n", {"line 5", "given twice"}},
      {"unisock modes : 22\nunisock colour : blue\n", {"is refused: policy: unknown key", "colour", "(line 5)"}},
      {"unisock watch_dirs : /tmp\nunisock watch_dirs : incoming\n",
       {"is refused: policy: \"watch_dirs\"", "incoming", "(lines 4, 5)"}},
      {"unisock modes : 99\n", {"\"modes\"", "(line 4)"}},
      {"unisock users : no-such-user-here\n", {"\"users\"", "no-such-user-here", "(line 4)"}},
      {"unisock policy_file : relative.json\n", {"line 4", "absolute path"}},
      {"unisock policy_file : " + dir + "/missing.json\n", {"policy_file " + dir + "/missing.json", "line 4", "cannot be read"}},
      {"unisock policy_file : " + lib + "\n", {"not a regular file"}},
      {"unisock policy_file : " + dir + "/bad.json\n", {"is not JSON"}},
      {"unisock policy_file : " + dir + "/list.json\n", {"not a JSON object"}},
      {"# " + std::string(130, '-') + "\nunisock shell : 1\n", {"line 4 is longer than 119 characters", "not read"}},
      // The over-long line is itself a policy line: the driver's reading (and
      // ours) stops at it, so it is lost too, and said so.
      {"unisock watch_dirs : /" + std::string(110, 'd') + "\n", {"line 4 is longer than 119 characters", "not read"}},
      {"unisock shell : 1" + std::string(103, ' ') + "\n", {"line 4 is longer than 119 characters"}},
  };
  write_file(dir + "/bad.json", "{\"modes\": [22,");
  write_file(dir + "/list.json", "[22]");
  for (const Bad& b : bad) {
    us::apply_config_policy(config_with("unisock open : 1\n", lib));  // something else first
    c = config_with(b.lines, lib);
    log = us::apply_config_policy(c);
    CHECK(log.size() >= 2);
    if (log.size() < 2) continue;
    bool all = true;
    for (const auto& want : b.said) all = all && contains(log[0], want);
    if (!all) printf("    for %s got: %s\n", b.lines.c_str(), log[0].c_str());
    CHECK(all);
    CHECK(contains(log.back(), "policy in force (the default, because of the problem above"));
    CHECK_EQ(policy_key("modes"), std::string("[10,11,12,13,16,17,18,19]"));
    CHECK_EQ(policy_key("open"), std::string("0"));
    CHECK_EQ(policy_key("tls_dirs"), "[\"" + lib + "\"]");
  }
  // Not the file the driver read (its mudlib directory differs), or none at all.
  c = config_with("unisock open : 1\n", lib);
  c.mudlib_dir = "/elsewhere";
  log = us::apply_config_policy(c);
  CHECK(!log.empty() && contains(log[0], "is not the config file the driver read"));
  CHECK_EQ(policy_key("open"), std::string("0"));
  c = config_with("unisock open : 1\n", lib);
  c.read_error = "cannot read it: Permission denied";
  log = us::apply_config_policy(c);
  CHECK(!log.empty() && contains(log[0], "cannot be read (cannot read it: Permission denied)"));
  CHECK_EQ(policy_key("open"), std::string("0"));

  rm_tree(dir);
  CHECK_EQ(unisock_set_policy(kOpen, sizeof kOpen - 1), UNISOCK_RESULT_OK);
}

// valid_socket's info: upstream's four elements, the mode, what is asked.
static void test_valid_socket_info() {
  Obj o("/obj/asker");
  std::string dir = scratch_dir();
  mkdir((dir + "/d").c_str(), 0755);
  if (symlink("/bin/sh", (dir + "/d/link").c_str()) != 0) printf("    (no symlink)\n");
  std::string sh = real("/bin/sh");

  auto text = [&](us::DValue* v) {
    svalue_t sv = A->take(v);
    std::string t = describe(&sv);
    free_svalue(&sv);
    return t;
  };
  // create: ({ -1, caller, "N/A", -1, mode, ([]) })
  CHECK_EQ(text(C->socket_info(-1, o.ob, "N/A", -1, UNISOCK_MODE_EXTERNAL_PROCESS, nullptr)),
           std::string("({-1,0,\"N/A\",-1,22,([]),})"));  // the fake saves objects as 0
  us::DValue* info = C->socket_info(3, o.ob, "127.0.0.1", 80, 1, nullptr);
  svalue_t iv = A->take(info);
  CHECK(iv.type == T_ARRAY && iv.u.arr->size == 6);
  if (iv.type == T_ARRAY && iv.u.arr->size == 6) {
    CHECK(iv.u.arr->item[1].type == T_OBJECT && iv.u.arr->item[1].u.ob == o.ob);
    CHECK(iv.u.arr->item[5].type == T_MAPPING);
  }
  free_svalue(&iv);
  CHECK_EQ(C->mode_of(12345), (int64_t)-1);

  // set_option: the option, and the host paths for options that name them.
  auto asked = [&](int64_t option, svalue_t v) {
    std::string t = text(C->asked_option(option, FakeAdapter::view(&v)));
    free_svalue(&v);
    return t;
  };
  CHECK_EQ(asked(UNISOCK_OPT_SO_TLS_VERIFY_PEER, make_int(1)), std::string("([\"option\":1,])"));
  CHECK_EQ(asked(UNISOCK_OPT_SO_TLS_CERT, make_str(dir + "/d/../d/link")),
           "([\"option\":3,\"paths\":({\"" + sh + "\",}),])");
  CHECK_EQ(asked(UNISOCK_OPT_EXTERNAL_COMMAND, make_str(dir + "/d/link")),
           "([\"option\":140,\"command\":\"" + sh + "\",])");
  CHECK_EQ(asked(UNISOCK_OPT_EXTERNAL_COMMAND, make_str("echo $1")),
           std::string("([\"option\":140,\"command\":\"echo $1\",])"));  // a shell's line
  CHECK_EQ(asked(UNISOCK_OPT_EXTERNAL_COMMAND, make_int(1)), std::string("([\"option\":140,])"));
  CHECK_EQ(asked(UNISOCK_OPT_EXTERNAL_WATCH_PATH,
                 make_arr({make_str(dir + "/d"), make_int(5), make_str(dir + "/./d/link")})),
           "([\"option\":143,\"paths\":({\"" + dir + "/d\",\"" + sh + "\",}),])");
  CHECK_EQ(asked(UNISOCK_OPT_EXTERNAL_STDOUT_MODE, make_str("file:" + dir + "/d/../new.log")),
           "([\"option\":151,\"paths\":({\"" + dir + "/new.log\",}),])");  // made later
  CHECK_EQ(asked(UNISOCK_OPT_EXTERNAL_STDERR_MODE, make_str("pipe")),
           std::string("([\"option\":152,\"paths\":({}),])"));
  CHECK_EQ(asked(UNISOCK_OPT_IPC_SOCKET_DIR, make_int(3)),
           std::string("([\"option\":442,\"paths\":({}),])"));  // a wrong value: unisock refuses it
  char* wd = getcwd(nullptr, 0);
  std::string cwd = wd ? real(wd) : "";
  free(wd);
  CHECK_EQ(asked(UNISOCK_OPT_SO_TLS_KEY, make_str("no-such-key.pem")),
           "([\"option\":4,\"paths\":({\"" + cwd + "/no-such-key.pem\",}),])");  // from the cwd

  // A process start: the command (its host path), args, shell.
  int ext = C->create(UNISOCK_MODE_EXTERNAL_PROCESS, A->callback("r"), A->callback("c"), o.ob);
  CHECK(ext >= 0);
  CHECK_EQ(C->mode_of(ext), (int64_t)UNISOCK_MODE_EXTERNAL_PROCESS);
  CHECK_EQ(text(C->asked_start(ext, nullptr)),
           std::string("([\"command\":0,\"args\":({}),\"shell\":0,])"));
  std::string err;
  svalue_t cmd = make_str(dir + "/d/link"), args = make_arr({make_str("-c"), make_str("true")});
  CHECK(C->set_option(ext, UNISOCK_OPT_EXTERNAL_COMMAND, FakeAdapter::view(&cmd), o.ob, &err));
  CHECK(C->set_option(ext, UNISOCK_OPT_EXTERNAL_ARGS, FakeAdapter::view(&args), o.ob, &err));
  CHECK_EQ(text(C->asked_start(ext, "external_spawn_process")),
           "([\"efun\":\"external_spawn_process\",\"command\":\"" + sh +
               "\",\"args\":({\"-c\",\"true\",}),\"shell\":0,])");
  svalue_t one = make_int(1);
  CHECK(C->set_option(ext, UNISOCK_OPT_EXTERNAL_SHELL, FakeAdapter::view(&one), o.ob, &err));
  CHECK_EQ(text(C->asked_start(ext, nullptr)),  // with a shell: the command as given
           "([\"command\":\"" + dir + "/d/link\",\"args\":({\"-c\",\"true\",}),\"shell\":1,])");
  free_svalue(&cmd);
  free_svalue(&args);
  free_svalue(&one);
  C->close(ext, o.ob);
  int st = C->create(us::MODE_STREAM, A->callback("r"), A->callback("c"), o.ob);
  CHECK_EQ(text(C->asked_start(st, nullptr)), std::string("([])"));  // no process
  CHECK_EQ(text(C->asked_connect(st, "/tmp/bus.sock")), std::string("([])"));
  C->close(st, o.ob);
  int ipc = C->create(UNISOCK_MODE_IPC_CLIENT, A->callback("r"), A->callback("c"), o.ob);
  CHECK(ipc >= 0);
  CHECK_EQ(text(C->asked_connect(ipc, dir + "/d/../bus.sock")),
           "([\"paths\":({\"" + dir + "/bus.sock\",}),])");
  C->close(ipc, o.ob);

  // The external_* efuns, and external_start of the driver's packages/external.
  std::string p = dir + "/d/";
  CHECK_EQ(text(C->asked_external("external_monitor_path", &p)),
           "([\"efun\":\"external_monitor_path\",\"paths\":({\"" + dir + "/d\",}),])");
  CHECK_EQ(text(C->asked_external("external_read_process", nullptr)),
           std::string("([\"efun\":\"external_read_process\",])"));
  svalue_t words = make_str("-sS  http://x ");
  CHECK_EQ(text(C->asked_external_start(dir + "/d/link", FakeAdapter::view(&words))),
           "([\"efun\":\"external_start\",\"command\":\"" + sh +
               "\",\"args\":({\"-sS\",\"\",\"http://x\",}),])");
  free_svalue(&words);
  rm_tree(dir);
}

// The host paths valid_socket is shown are the library's own judgement of
// them (unisock_resolve_path), so the master sees the path the policy checks:
// a link out is its target (the "(it is ...)" of the library's refusal); a
// file still to be made is in its directory as resolved; a path that does
// not resolve yet is where the policy places it (`..` taken lexically), not
// as given -- given, "tls/x/../../out/key.pem" would pass a master that
// refuses out/, and once tls/x is made the library reads out/key.pem.
static void test_paths_as_the_library_judges() {
  Obj o("/obj/tls");
  std::string dir = scratch_dir();
  mkdir((dir + "/tls").c_str(), 0755);
  mkdir((dir + "/out").c_str(), 0755);
  write_file(dir + "/out/key.pem", "not a key");
  if (symlink((dir + "/out/key.pem").c_str(), (dir + "/tls/link.pem").c_str()) != 0)
    printf("    (no symlink)\n");
  auto shown = [&](int64_t option, const std::string& path) {
    svalue_t v = make_str(path);
    svalue_t a = A->take(C->asked_option(option, FakeAdapter::view(&v)));
    free_svalue(&v);
    std::string t = describe(&a);
    free_svalue(&a);
    return t;
  };
  auto paths = [](int64_t option, const std::string& p) {
    return "([\"option\":" + std::to_string(option) + ",\"paths\":({\"" + p + "\",}),])";
  };
  const std::string pol = "{\"tls_dirs\":[\"" + dir + "/tls\"]}";
  CHECK_EQ(unisock_set_policy(pol.data(), pol.size()), UNISOCK_RESULT_OK);
  int fd = C->create(us::MODE_STREAM_TLS, A->callback("r"), A->callback("c"), o.ob);
  CHECK(fd >= 0);
  std::string err;
  svalue_t link = make_str(dir + "/tls/link.pem");
  CHECK(!C->set_option(fd, UNISOCK_OPT_SO_TLS_KEY, FakeAdapter::view(&link), o.ob, &err));
  CHECK(contains(err, "(it is " + dir + "/out/key.pem)"));
  free_svalue(&link);
  CHECK_EQ(shown(UNISOCK_OPT_SO_TLS_KEY, dir + "/tls/link.pem"), paths(4, dir + "/out/key.pem"));
  CHECK_EQ(shown(UNISOCK_OPT_SO_TLS_CERT, dir + "/tls/../out/new.pem"), paths(3, dir + "/out/new.pem"));
  CHECK_EQ(shown(UNISOCK_OPT_SO_TLS_CA, dir + "/tls/x/../../out/key.pem"),
           paths(10, dir + "/out/key.pem"));
  mkdir((dir + "/tls/x").c_str(), 0755);
  CHECK_EQ(shown(UNISOCK_OPT_SO_TLS_CA, dir + "/tls/x/../../out/key.pem"),
           paths(10, dir + "/out/key.pem"));
  // A path that is none is shown as given (unisock refuses it by name).
  CHECK_EQ(shown(UNISOCK_OPT_SO_TLS_CA, ""), paths(10, ""));
  if (fd >= 0) C->close(fd, o.ob);
  rm_tree(dir);
  CHECK_EQ(unisock_set_policy(kOpen, sizeof kOpen - 1), UNISOCK_RESULT_OK);
}

// The log limit's arithmetic, on the stand-in's clock (no sleeps). Policy
// refusals are the cheap lines to make (each socket_create of a mode the
// policy leaves off is one); abnormal closes share the code, counted apart
// (test_close_reason_and_log). A burst: the first 20 verbatim. A sustained
// flood (10 a second for 10 minutes): one count line per 10 s, with the
// last line, and every line counted once. Quiet: the count that is left is
// written from pump(), and the next burst is verbatim again.
static void test_log_limit() {
  Obj o("/obj/flood");
  const std::string pol = "{\"modes\":[10]}";
  CHECK_EQ(unisock_set_policy(pol.data(), pol.size()), UNISOCK_RESULT_OK);
  A->clock_ms = 5000000;
  C->set_log_limit(20, 10000);
  A->logs.clear();
  int64_t made = 0;
  auto refuse = [&]() {
    made++;
    int fd = C->create(UNISOCK_MODE_EXTERNAL_PROCESS, A->callback("r"), A->callback("c"), o.ob);
    CHECK_EQ(fd, us::kEeSecurity);
    if (fd >= 0) C->close(fd, o.ob);
  };
  const std::string line = "unisock: refused for /obj/flood: ";
  for (int i = 0; i < 50; i++) refuse();
  CHECK_EQ(A->logs.size(), (size_t)20);
  for (const auto& l : A->logs) CHECK(l.compare(0, line.size(), line) == 0 && contains(l, "\"modes\""));
  for (int i = 0; i < 6000; i++) {
    A->clock_ms += 100;
    refuse();
  }
  CHECK_EQ(A->logs.size(), (size_t)(20 + 60));
  const std::string head = "unisock: 129 more policy refusals suppressed in the last 10 s, last: " +
                           line.substr(9);
  if (A->logs.size() > 20) {
    CHECK_EQ(A->logs[20].substr(0, head.size()), head);
    CHECK(contains(A->logs[20], "\"modes\""));
  }
  int64_t counted = 0;
  for (size_t i = 20; i < A->logs.size(); i++) {
    long long n = 0;
    int secs = 0;
    CHECK(sscanf(A->logs[i].c_str(), "unisock: %lld more policy refusals suppressed in the last %d s",
                 &n, &secs) == 2);
    CHECK_EQ(secs, 10);
    counted += n;
  }
  CHECK_EQ(counted + 1, made - 20);  // the last one waits for its count
  // Quiet for 5 minutes: pump() writes what is left; a new burst is verbatim.
  A->clock_ms += 300000;
  C->pump();
  CHECK_EQ(A->logs.size(), (size_t)81);
  if (A->logs.size() == 81)
    CHECK(contains(A->logs[80], "unisock: 1 more policy refusals suppressed in the last 300 s, last: "));
  A->logs.clear();
  for (int i = 0; i < 25; i++) refuse();
  CHECK_EQ(A->logs.size(), (size_t)19);  // the budget, less the count line
  for (const auto& l : A->logs) CHECK(l.compare(0, line.size(), line) == 0);
  C->flush_log(true);  // as close_all() at shutdown: every count, budget or not
  CHECK_EQ(A->logs.size(), (size_t)20);
  if (A->logs.size() == 20)
    CHECK(contains(A->logs[19], "unisock: 6 more policy refusals suppressed in the last 1 s"));
  A->logs.clear();
  A->clock_ms = -1;
  C->set_log_limit(20, 10000);
  CHECK_EQ(unisock_set_policy(kOpen, sizeof kOpen - 1), UNISOCK_RESULT_OK);
}

// What the unisock policy refuses: upstream's refusal for the caller
// (EESECURITY, or an error naming the key for socket_set_option) and one
// line in the driver's log with unisock's message. (Needs unisock's
// enforcement of the policy: src/policy checked by the families.)
static void test_policy_refusals() {
  Obj o("/obj/wizard");
  const std::string pol = "{\"modes\":[10,11,12,13,22],\"commands\":[\"" + real("/bin/cat") + "\"]}";
  CHECK_EQ(unisock_set_policy(pol.data(), pol.size()), UNISOCK_RESULT_OK);
  A->logs.clear();
  int refused = C->create(UNISOCK_MODE_EXTERNAL_COMMAND_MODE, A->callback("r"), A->callback("c"), o.ob);
  CHECK_EQ(refused, us::kEeSecurity);
  if (refused >= 0) C->close(refused, o.ob);
  CHECK_EQ(A->logs.size(), (size_t)1);
  if (!A->logs.empty()) {
    CHECK(contains(A->logs[0], "unisock: refused for /obj/wizard: "));
    CHECK(contains(A->logs[0], "\"modes\""));
  }
  int ext = C->create(UNISOCK_MODE_EXTERNAL_PROCESS, A->callback("r"), A->callback("c"), o.ob);
  CHECK(ext >= 0);
  std::string err;
  svalue_t sh = make_str("/bin/sh"), cat = make_str("/bin/cat");
  A->logs.clear();
  CHECK(!C->set_option(ext, UNISOCK_OPT_EXTERNAL_COMMAND, FakeAdapter::view(&sh), o.ob, &err));
  CHECK(contains(err, "\"commands\""));
  CHECK_EQ(A->logs.size(), (size_t)1);
  if (!A->logs.empty()) CHECK_EQ(A->logs[0], "unisock: refused for /obj/wizard: " + err);
  err.clear();
  CHECK(C->set_option(ext, UNISOCK_OPT_EXTERNAL_COMMAND, FakeAdapter::view(&cat), o.ob, &err));
  A->logs.clear();
  CHECK_EQ(C->external_monitor_path(ext, "/tmp", 0, o.ob, &err), (int64_t)us::kEeSecurity);
  CHECK(A->logs.size() == 1 && contains(A->logs[0], "\"watch_dirs\""));
  free_svalue(&sh);
  free_svalue(&cat);
  if (ext >= 0) C->close(ext, o.ob);
  A->logs.clear();
  CHECK_EQ(unisock_set_policy(kOpen, sizeof kOpen - 1), UNISOCK_RESULT_OK);
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  printf("unisock %s, shim core tests\n", unisock_version());
  FakeAdapter adapter;
  us::Core core(adapter);
  A = &adapter;
  C = &core;
  // The project's tests say which policy they run with: these start
  // processes, watch paths and make socket files of their own.
  if (unisock_set_policy(kOpen, sizeof kOpen - 1) != UNISOCK_RESULT_OK) {
    printf("FAIL unisock_set_policy(%s): %s\n", kOpen, us::last_error_text().c_str());
    return 1;
  }
  run("conversion round trip of nested values", test_conversion_round_trip);
  run("conversion refuses objects and cycles", test_conversion_refuses_objects_and_cycles);
  run("error mapping (EE codes)", test_error_mapping);
  run("options: set/get round trip and error texts", test_options);
  run("STREAM echo, callbacks, status, remote close", test_stream_echo_and_callbacks);
  run("MUD mode exchanges a nested mapping", test_mud_exchange);
  run("HTTP server and client: mappings, addr, status names, close callbacks",
      test_http_server_and_client);
  run("IPC bus: client_connected, unicast by client id, client_id on messages", test_ipc_bus);
  run("WebSocket server and client: ws:// URL unchanged, string/buffer/mapping messages, close 1000",
      test_websocket_values);
  run("valid_socket's host and port for a connect address or URL", test_connect_target);
  run("close_cb(id, reason): optional reason, abnormal closes logged", test_close_reason_and_log);
  run("mode names: unisock's catalog (upstream's for 0-6)", test_mode_names);
  run("release and acquire", test_release_acquire);
  run("close on owner destruct", test_close_on_owner_destruct);
  run("adopted fd (external_start)", test_adopted_fd);
  run("a number unisock dropped is reused with no stale event", test_dead_socket_number_reused_cleanly);
  run("external_* efuns: values in and out, EE codes, refused arguments", test_external_efuns);
  run("the driver's config lines as the driver reads them", test_config_reading);
  run("config lines and policy_file -> the policy in force; problems logged, default kept",
      test_config_policy);
  run("valid_socket info: mode and what is asked (host paths, command, args)",
      test_valid_socket_info);
  run("valid_socket's host paths: the library's judgement of them (unisock_resolve_path)",
      test_paths_as_the_library_judges);
  run("policy refusals: EESECURITY or an error naming the key, one log line",
      test_policy_refusals);
  run("the log limit: a burst verbatim, then one count line per 10 s and kind", test_log_limit);
  run("close_all at shutdown", test_close_all);
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
