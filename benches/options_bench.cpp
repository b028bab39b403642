// options_bench: socket_set_option + socket_get_option pairs through unisock's
// C ABI against the C++ option manager of the design notes
// (/work/shared/seeds/001_4160d62f31ec2164.txt, "1.2 Socket Option Storage
// System"), measured in the same process, same run, same values.
//
// Build (scripts/bench-options does this):
//   g++ -std=c++17 -O2 -Iinclude benches/options_bench.cpp -Ltarget/release
//       -Wl,-rpath,$PWD/target/release -lunisock -o target/bench/options_bench
// Run: options_bench [PAIRS_PER_REP] [REPS]
// Prints one JSON object per line: one per case with the median ns per pair
// of each side and the ratio unisock / C++.
//
// What one "pair" is, on both sides:
//   set(socket, option, pre-built value) ; v = get(socket, option) ;
//   read the int / the string bytes out of v ; free v.
// The two pre-built values of each case alternate so every set changes the
// stored value. unisock is called exactly as a driver calls it (the LPC
// socket number, the option number, a value handle); the C++ manager is the
// seed's design: a per-socket unordered_map of per-option unordered_maps of a
// variant, a validator looked up in an unordered_map<int, std::function>, a
// notifier lookup, the value copied in on set and copied out on get.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "unisock.h"

// ---- the C++ manager, as the seed designs it ---------------------------------

struct OptionValue;
using OptionArray = std::vector<OptionValue>;
struct OptionValue {
  // The seed's std::variant<int, double, std::string, mapping_t*, array_t*>,
  // with an owned array instead of driver pointers (no driver here) and int64
  // like LPC ints.
  std::variant<int64_t, double, std::string, OptionArray> v;
  OptionValue() : v(int64_t{0}) {}
  OptionValue(int64_t i) : v(i) {}
  OptionValue(std::string s) : v(std::move(s)) {}
};

// The seed's debug(sockets, ...) macro: a level check before any formatting.
static volatile int g_debug_sockets = 0;
#define debug_sockets(...) \
  do { if (g_debug_sockets) std::fprintf(stderr, __VA_ARGS__); } while (0)

class SocketOptionManager {
 public:
  using Validator = std::function<bool(const OptionValue &)>;
  using Notifier = std::function<void(int, int, const OptionValue &)>;

  SocketOptionManager() { initialize_validators(); }

  bool set_option(int socket_fd, int option, const OptionValue &value) {
    auto validator_it = validators_.find(option);
    if (validator_it != validators_.end() && !validator_it->second(value)) {
      debug_sockets("Invalid option value for option %d on socket %d\n", option, socket_fd);
      return false;
    }
    socket_options_[socket_fd][option] = value;  // copy in
    auto notifier_it = notifiers_.find(option);
    if (notifier_it != notifiers_.end()) notifier_it->second(socket_fd, option, value);
    debug_sockets("Set option %d on socket %d\n", option, socket_fd);
    return true;
  }

  OptionValue get_option(int socket_fd, int option) const {
    auto socket_it = socket_options_.find(socket_fd);
    if (socket_it != socket_options_.end()) {
      auto option_it = socket_it->second.find(option);
      if (option_it != socket_it->second.end()) return option_it->second;  // copy out
    }
    switch (option) {  // defaults, as the seed's switch does
      case 12: return OptionValue(int64_t{1});
      case 17: return OptionValue(int64_t{4194304});
      case 11: return OptionValue(int64_t{0});
      default: return OptionValue(std::string(""));
    }
  }

  void register_validator(int option, Validator v) { validators_[option] = std::move(v); }

 private:
  std::unordered_map<int, std::unordered_map<int, OptionValue>> socket_options_;
  std::unordered_map<int, Validator> validators_;
  std::unordered_map<int, Notifier> notifiers_;

  // The same checks unisock's catalog makes for these options (docs/OPTIONS.md).
  void initialize_validators() {
    auto is_bool = [](const OptionValue &v) { return std::holds_alternative<int64_t>(v.v); };
    auto int_range = [](int64_t lo, int64_t hi) {
      return [lo, hi](const OptionValue &v) {
        if (!std::holds_alternative<int64_t>(v.v)) return false;
        int64_t i = std::get<int64_t>(v.v);
        return i >= lo && i <= hi;
      };
    };
    register_validator(11, is_bool);                              // SO_KEEPALIVE 0/1
    register_validator(12, is_bool);                              // SO_NODELAY 0/1
    register_validator(13, int_range(1024, 16777216));            // SO_RCVBUF
    register_validator(14, int_range(1024, 16777216));            // SO_SNDBUF
    register_validator(17, int_range(4096, 1073741824));          // SO_MAX_BUFFERED
    register_validator(2, [](const OptionValue &v) {              // SO_TLS_SNI_HOSTNAME
      if (!std::holds_alternative<std::string>(v.v)) return false;
      size_t n = std::get<std::string>(v.v).size();
      return n >= 1 && n <= 253;
    });
  }
};

// ---- cases --------------------------------------------------------------------

struct Case {
  const char *name;
  int socket;      // LPC socket number (unisock) / fd key (C++)
  int option;
  bool is_string;
  int64_t ints[2];
  const char *strs[2];
};

static const Case kCases[] = {
    {"SO_KEEPALIVE (11) int", 1, 11, false, {1, 0}, {nullptr, nullptr}},
    {"SO_NODELAY (12) int", 1, 12, false, {0, 1}, {nullptr, nullptr}},
    {"SO_RCVBUF (13) int", 1, 13, false, {65536, 131072}, {nullptr, nullptr}},
    {"SO_SNDBUF (14) int", 1, 14, false, {65536, 131072}, {nullptr, nullptr}},
    {"SO_MAX_BUFFERED (17) int", 1, 17, false, {1 << 20, 1 << 22}, {nullptr, nullptr}},
    // 15 bytes: fits libstdc++'s small-string buffer (no heap copy in C++).
    {"SO_TLS_SNI_HOSTNAME (2) 15-byte string", 2, 2, true, {0, 0},
     {"mud.example.org", "irc.example.net"}},
    // 27 bytes: both sides copy through the heap.
    {"SO_TLS_SNI_HOSTNAME (2) 27-byte string", 2, 2, true, {0, 0},
     {"telnet.mud.example.org.test", "secure.irc.example.net.test"}},
};
static const size_t kNumCases = sizeof kCases / sizeof kCases[0];

static double now_ns() {
  return (double)std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

static void die(const char *what, uint32_t r) {
  char msg[512];
  unisock_last_error(msg, sizeof msg, nullptr);
  std::fprintf(stderr, "options_bench: %s failed: %u %s\n", what, (unsigned)r, msg);
  std::exit(2);
}

static volatile uint64_t g_sink;  // keeps the reads from being optimised away

// ns per pair for unisock on case c, `pairs` pairs. Int options use the typed
// calls (socket_set_option_int / socket_get_option_int) a C host or the shim
// uses for LPC ints; strings go through unisock_value trees.
static double run_unisock(const Case &c, unisock_value *const vals[2], long pairs) {
  uint64_t sink = 0;
  double t0 = now_ns();
  if (!c.is_string) {
    for (long i = 0; i < pairs; i++) {
      unisock_result r = socket_set_option_int(c.socket, c.option, c.ints[i & 1]);
      if (r != UNISOCK_RESULT_OK) die("socket_set_option_int", r);
      int64_t v;
      r = socket_get_option_int(c.socket, c.option, &v);
      if (r != UNISOCK_RESULT_OK) die("socket_get_option_int", r);
      sink += (uint64_t)v;
    }
  } else {
    for (long i = 0; i < pairs; i++) {
      unisock_result r = socket_set_option(c.socket, c.option, vals[i & 1]);
      if (r != UNISOCK_RESULT_OK) die("socket_set_option", r);
      unisock_value *out = nullptr;
      r = socket_get_option(c.socket, c.option, &out);
      if (r != UNISOCK_RESULT_OK) die("socket_get_option", r);
      const uint8_t *p; size_t n;
      if (unisock_value_bytes(out, &p, &n) != UNISOCK_RESULT_OK) die("unisock_value_bytes", 0);
      sink += n + p[0];
      unisock_value_free(out);
    }
  }
  double t1 = now_ns();
  g_sink = sink;
  return (t1 - t0) / (double)pairs;
}

static double run_cpp(SocketOptionManager &m, const Case &c, const OptionValue vals[2], long pairs) {
  uint64_t sink = 0;
  double t0 = now_ns();
  for (long i = 0; i < pairs; i++) {
    if (!m.set_option(c.socket, c.option, vals[i & 1])) die("SocketOptionManager::set_option", 0);
    OptionValue out = m.get_option(c.socket, c.option);
    if (c.is_string) {
      const std::string &s = std::get<std::string>(out.v);
      sink += s.size() + (uint8_t)s[0];
    } else {
      sink += (uint64_t)std::get<int64_t>(out.v);
    }
  }  // `out` destroyed each iteration: the C++ "free"
  double t1 = now_ns();
  g_sink = sink;
  return (t1 - t0) / (double)pairs;
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Where unisock's time goes, on SO_RCVBUF (13) of socket 1: each half of a
// pair alone, and two floors every get through this ABI pays (allocating and
// freeing the returned value; one trivial call through the boundary).
template <class F>
static double time_loop(long n, F f) {
  double t0 = now_ns();
  for (long i = 0; i < n; i++) f(i);
  return (now_ns() - t0) / (double)n;
}

static void breakdown(SocketOptionManager &mgr, long pairs, int reps) {
  unisock_value *uv[2];
  unisock_value_new_int(65536, &uv[0]);
  unisock_value_new_int(131072, &uv[1]);
  const OptionValue cv[2] = {OptionValue(int64_t{65536}), OptionValue(int64_t{131072})};
  struct Part { const char *name; std::vector<double> t; };
  Part parts[] = {{"unisock set only", {}}, {"C++ set only", {}},
                  {"unisock get+read+free only", {}}, {"C++ get+read only", {}},
                  {"unisock floor: value_new_int+value_free", {}},
                  {"unisock floor: value_int (one trivial ABI call)", {}}};
  uint64_t sink = 0;
  for (int rep = 0; rep < reps; rep++) {
    parts[0].t.push_back(time_loop(pairs, [&](long i) { sink += socket_set_option(1, 13, uv[i & 1]); }));
    parts[1].t.push_back(time_loop(pairs, [&](long i) { sink += mgr.set_option(1, 13, cv[i & 1]); }));
    parts[2].t.push_back(time_loop(pairs, [&](long) {
      unisock_value *out = nullptr; int64_t v = 0;
      socket_get_option(1, 13, &out); unisock_value_int(out, &v); sink += (uint64_t)v;
      unisock_value_free(out);
    }));
    parts[3].t.push_back(time_loop(pairs, [&](long) {
      OptionValue out = mgr.get_option(1, 13); sink += (uint64_t)std::get<int64_t>(out.v);
    }));
    parts[4].t.push_back(time_loop(pairs, [&](long i) {
      unisock_value *out = nullptr; unisock_value_new_int(i, &out); sink += (uintptr_t)out;
      unisock_value_free(out);
    }));
    parts[5].t.push_back(time_loop(pairs, [&](long) {
      int64_t v = 0; unisock_value_int(uv[0], &v); sink += (uint64_t)v;
    }));
  }
  g_sink = sink;
  for (auto &p : parts)
    std::printf("{\"part\":\"%s\",\"ns\":%.1f,\"option\":13,\"reps\":%d}\n", p.name, median(p.t), reps);
  unisock_value_free(uv[0]);
  unisock_value_free(uv[1]);
}

int main(int argc, char **argv) {
  long pairs = argc > 1 ? std::atol(argv[1]) : 1000000;
  int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  if (pairs < 1 || reps < 1) { std::fprintf(stderr, "usage: options_bench [PAIRS] [REPS]\n"); return 2; }

  unisock_result r;
  if ((r = unisock_create(1, UNISOCK_MODE_STREAM)) != UNISOCK_RESULT_OK) die("unisock_create STREAM", r);
  if ((r = unisock_create(2, UNISOCK_MODE_STREAM_TLS)) != UNISOCK_RESULT_OK) die("unisock_create STREAM_TLS", r);
  SocketOptionManager mgr;

  // Correctness first: both sides accept the values, reject the same bad
  // ones and read back what was set.
  {
    unisock_value *bad = nullptr;
    unisock_value_new_int(512, &bad);  // below SO_RCVBUF's 1024
    if (socket_set_option(1, 13, bad) != UNISOCK_RESULT_BAD_OPTION_VALUE) die("unisock rejects 512", 0);
    if (mgr.set_option(1, 13, OptionValue(int64_t{512}))) die("C++ rejects 512", 0);
    unisock_value_free(bad);
  }

  std::vector<double> all_u, all_c;  // per rep: mean over the cases (one "mixed" pair)
  std::vector<std::vector<double>> per_u(kNumCases), per_c(kNumCases);
  std::vector<unisock_value *> uvals(2 * kNumCases);
  std::vector<OptionValue> cvals(2 * kNumCases);
  for (size_t k = 0; k < kNumCases; k++) {
    const Case &c = kCases[k];
    for (int j = 0; j < 2; j++) {
      if (c.is_string) {
        unisock_value_new_string(c.strs[j], std::strlen(c.strs[j]), &uvals[2 * k + j]);
        cvals[2 * k + j] = OptionValue(std::string(c.strs[j]));
      } else {
        unisock_value_new_int(c.ints[j], &uvals[2 * k + j]);
        cvals[2 * k + j] = OptionValue(c.ints[j]);
      }
    }
  }
  // Warm-up (page faults, first allocations, branch predictors) on both.
  for (size_t k = 0; k < kNumCases; k++) {
    run_unisock(kCases[k], &uvals[2 * k], pairs / 10 + 1);
    run_cpp(mgr, kCases[k], &cvals[2 * k], pairs / 10 + 1);
  }
  for (int rep = 0; rep < reps; rep++) {
    double su = 0, sc = 0;
    for (size_t k = 0; k < kNumCases; k++) {
      // Alternate which side goes first so drift does not favour one.
      double u, c;
      if ((rep + (int)k) & 1) {
        c = run_cpp(mgr, kCases[k], &cvals[2 * k], pairs);
        u = run_unisock(kCases[k], &uvals[2 * k], pairs);
      } else {
        u = run_unisock(kCases[k], &uvals[2 * k], pairs);
        c = run_cpp(mgr, kCases[k], &cvals[2 * k], pairs);
      }
      per_u[k].push_back(u);
      per_c[k].push_back(c);
      su += u;
      sc += c;
    }
    all_u.push_back(su / kNumCases);
    all_c.push_back(sc / kNumCases);
  }
  for (size_t k = 0; k < kNumCases; k++) {
    double u = median(per_u[k]), c = median(per_c[k]);
    std::printf("{\"case\":\"%s\",\"unisock_ns\":%.1f,\"cpp_ns\":%.1f,\"ratio\":%.3f,\"pairs\":%ld,\"reps\":%d}\n",
                kCases[k].name, u, c, u / c, pairs, reps);
  }
  double u = median(all_u), c = median(all_c);
  std::printf("{\"case\":\"all (mean of the cases)\",\"unisock_ns\":%.1f,\"cpp_ns\":%.1f,\"ratio\":%.3f,\"pairs\":%ld,\"reps\":%d}\n",
              u, c, u / c, pairs, reps);
  breakdown(mgr, pairs, reps);
  for (auto *v : uvals) unisock_value_free(v);
  unisock_close_all();
  return 0;
}
