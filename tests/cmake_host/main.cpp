// cmake_host: a minimal C++17 host of the unisock C ABI, built by scripts/cmake-check three ways
// (add_subdirectory, find_package, pkg-config). It runs one TCP round trip through unisock:
//   listener (STREAM, 127.0.0.1 port 0) <- client (STREAM) connect, LISTEN event, accept,
//   WRITE event on the client, write a string, READ event(s) on the accepted socket,
// plus socket_set_option/socket_get_option on SO_NODELAY (12) and a rejected (string) value.
// The reactor fd is watched with poll(2) the way a driver's event loop would.
// Exit 0 on success; otherwise prints what failed and exits 1. Everything is bounded by 5 s.

#include <unisock.h>

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kListener = 1;
constexpr int32_t kClient = 2;
constexpr int32_t kAccepted = 3;
constexpr int64_t kSoNodelay = 12;  // UNISOCK_OPT_SO_NODELAY
static_assert(kSoNodelay == UNISOCK_OPT_SO_NODELAY, "option number from unisock_options.h");

struct ValueFree {
  void operator()(unisock_value* v) const { unisock_value_free(v); }
};
using Value = std::unique_ptr<unisock_value, ValueFree>;

struct EventFree {
  void operator()(unisock_event* e) const { unisock_event_free(e); }
};
using Event = std::unique_ptr<unisock_event, EventFree>;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string last_error() {
  char buf[1024];
  size_t n = 0;
  buf[0] = '\0';
  unisock_last_error(buf, sizeof buf, &n);
  return buf;
}

std::string result_text(unisock_result r) {
  char buf[256];
  buf[0] = '\0';
  unisock_result_text(r, buf, sizeof buf, nullptr);
  return buf;
}

void expect_ok(unisock_result r, const std::string& what) {
  if (r != UNISOCK_RESULT_OK) {
    throw Failure(what + " returned " + std::to_string(r) + " (" + result_text(r) + "): " + last_error());
  }
}

void expect(bool ok, const std::string& what) {
  if (!ok) throw Failure(what);
}

std::string bytes_of(const unisock_value* v) {
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (!v || unisock_value_bytes(v, &p, &n) != UNISOCK_RESULT_OK) return {};
  return std::string(reinterpret_cast<const char*>(p), n);
}

Value make_int(int64_t i) {
  unisock_value* v = nullptr;
  expect_ok(unisock_value_new_int(i, &v), "unisock_value_new_int");
  return Value(v);
}

Value make_string(const std::string& s) {
  unisock_value* v = nullptr;
  expect_ok(unisock_value_new_string(s.data(), s.size(), &v), "unisock_value_new_string");
  return Value(v);
}

struct Seen {
  uint32_t kind;
  int32_t socket;
  std::string data;
};

class Loop {
 public:
  explicit Loop(Clock::time_point deadline) : deadline_(deadline) {
    expect_ok(unisock_reactor_fd(&fd_), "unisock_reactor_fd");
    expect(fd_ >= 0, "unisock_reactor_fd gave a negative fd");
  }

  // Waits for an event of `kind` on `socket`, keeping the others for later calls.
  Seen wait_for(uint32_t kind, int32_t socket) {
    const std::string want = std::string(unisock_event_kind_name(kind)) + " on socket " + std::to_string(socket);
    collect();  // events may already be queued from an earlier dispatch
    for (;;) {
      for (auto it = seen_.begin(); it != seen_.end(); ++it) {
        if (it->kind == kind && it->socket == socket) {
          Seen s = *it;
          seen_.erase(it);
          return s;
        }
        if (it->kind == UNISOCK_EVENT_KIND_CLOSE && it->socket == socket) {
          throw Failure("waiting for " + want + ": got close instead (" + it->data + ")");
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) throw Failure("timed out waiting for " + want);
      pollfd p{};
      p.fd = fd_;
      p.events = POLLIN;
      const int n = poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno != EINTR) throw Failure(std::string("poll: ") + std::strerror(errno));
      if (n > 0) {
        ++wakeups_;
        drain();
      }
    }
  }

  int wakeups() const { return wakeups_; }

 private:
  // Only when poll(2) says the reactor fd is readable: dispatch, then take the events.
  void drain() {
    size_t queued = 0;
    expect_ok(unisock_dispatch(&queued), "unisock_dispatch");
    collect();
  }

  void collect() {
    for (;;) {
      unisock_event* raw = nullptr;
      expect_ok(unisock_next_event(&raw), "unisock_next_event");
      if (!raw) break;
      Event ev(raw);
      seen_.push_back(Seen{unisock_event_get_kind(ev.get()), unisock_event_socket(ev.get()),
                           bytes_of(unisock_event_data(ev.get()))});
    }
  }

  Clock::time_point deadline_;
  int32_t fd_ = -1;
  int wakeups_ = 0;
  std::deque<Seen> seen_;
};

void check_options() {
  // SO_NODELAY: an int 0/1, settable any time.
  for (int64_t want : {0, 1}) {
    Value v = make_int(want);
    expect_ok(socket_set_option(kClient, kSoNodelay, v.get()), "socket_set_option(SO_NODELAY, " + std::to_string(want) + ")");
    unisock_value* got_raw = nullptr;
    expect_ok(socket_get_option(kClient, kSoNodelay, &got_raw), "socket_get_option(SO_NODELAY)");
    Value got(got_raw);
    int64_t i = -1;
    expect_ok(unisock_value_int(got.get(), &i), "unisock_value_int(SO_NODELAY value)");
    expect(i == want, "SO_NODELAY read back " + std::to_string(i) + ", set " + std::to_string(want));
  }
  // Booleans take any int (non-zero is stored as 1, docs/OPTIONS.md).
  {
    Value five = make_int(5);
    expect_ok(socket_set_option(kClient, kSoNodelay, five.get()), "socket_set_option(SO_NODELAY, 5)");
  }
  // A value of the wrong kind must be refused with a message.
  Value bad = make_string("yes");
  const unisock_result r = socket_set_option(kClient, kSoNodelay, bad.get());
  expect(r != UNISOCK_RESULT_OK, "socket_set_option(SO_NODELAY, \"yes\") was accepted");
  const std::string msg = last_error();
  expect(!msg.empty(), "socket_set_option(SO_NODELAY, \"yes\") failed (" + std::to_string(r) + ") without a message");
  expect(unisock_result_ee(r) < 0, "unisock_result_ee of a failure is not negative");
  std::printf("cmake_host: SO_NODELAY=\"yes\" refused (%u): %s\n", static_cast<unsigned>(r), msg.c_str());
  // ...and must not have changed the stored value (1, from the 5 above).
  unisock_value* got_raw = nullptr;
  expect_ok(socket_get_option(kClient, kSoNodelay, &got_raw), "socket_get_option(SO_NODELAY)");
  Value got(got_raw);
  int64_t i = -1;
  expect_ok(unisock_value_int(got.get(), &i), "unisock_value_int(SO_NODELAY value)");
  expect(i == 1, "SO_NODELAY changed by a refused value");
}

void run() {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  std::printf("cmake_host: unisock %s\n", unisock_version());
  uint32_t abi = 0;
  expect_ok(unisock_abi_version(&abi), "unisock_abi_version");

  Loop loop(deadline);

  // Listener on 127.0.0.1, port chosen by the kernel.
  expect_ok(unisock_create(kListener, UNISOCK_MODE_STREAM), "unisock_create(listener)");
  expect_ok(unisock_bind(kListener, 0, "127.0.0.1 0"), "unisock_bind(listener, \"127.0.0.1 0\")");
  expect_ok(unisock_listen(kListener), "unisock_listen");
  unisock_value* addr_raw = nullptr;
  expect_ok(unisock_address(kListener, 1, &addr_raw), "unisock_address(listener, local)");
  Value addr_v(addr_raw);
  expect(unisock_value_get_kind(addr_v.get()) == UNISOCK_VALUE_KIND_STRING, "unisock_address did not give a string");
  const std::string addr = bytes_of(addr_v.get());
  expect(addr.rfind("127.0.0.1 ", 0) == 0 && addr != "127.0.0.1 0",
         "unexpected listener address \"" + addr + "\"");
  std::printf("cmake_host: listening on %s\n", addr.c_str());

  // Client.
  expect_ok(unisock_create(kClient, UNISOCK_MODE_STREAM), "unisock_create(client)");
  expect_ok(unisock_connect(kClient, addr.c_str()), "unisock_connect(" + addr + ")");
  loop.wait_for(UNISOCK_EVENT_KIND_LISTEN, kListener);
  expect_ok(unisock_accept(kListener, kAccepted), "unisock_accept");
  loop.wait_for(UNISOCK_EVENT_KIND_WRITE, kClient);

  check_options();

  // Client -> accepted socket.
  const std::string message = "hello from cmake_host\n";
  Value data = make_string(message);
  const unisock_result w = unisock_write(kClient, data.get(), nullptr);
  expect(w == UNISOCK_RESULT_OK || w == UNISOCK_RESULT_EE_CALLBACK,
         "unisock_write returned " + std::to_string(w) + " (" + result_text(w) + "): " + last_error());
  std::string got;
  while (got.size() < message.size()) {
    got += loop.wait_for(UNISOCK_EVENT_KIND_READ, kAccepted).data;
  }
  expect(got == message, "accepted socket read \"" + got + "\", expected \"" + message + "\"");

  size_t open = 0;
  expect_ok(unisock_socket_count(&open, nullptr), "unisock_socket_count");
  expect(open == 3, "unisock_socket_count: " + std::to_string(open) + " open, expected 3");

  expect_ok(unisock_close(kAccepted), "unisock_close(accepted)");
  expect_ok(unisock_close(kClient), "unisock_close(client)");
  expect_ok(unisock_close(kListener), "unisock_close(listener)");
  expect_ok(unisock_socket_count(&open, nullptr), "unisock_socket_count");
  expect(open == 0, "unisock_socket_count: " + std::to_string(open) + " open after closing all");
  expect_ok(unisock_close_all(), "unisock_close_all");
  expect(loop.wakeups() > 0, "the reactor fd never became readable");
  std::printf("cmake_host: round trip ok (%zu bytes, %d reactor wakeups)\n", got.size(), loop.wakeups());
}

}  // namespace

int main() {
  try {
    run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cmake_host: FAILED: %s\n", e.what());
    unisock_close_all();
    return 1;
  }
  std::printf("cmake_host: OK\n");
  return 0;
}
