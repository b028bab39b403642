// shim_core.h: the driver-independent core of unisock's FluffOS sockets package.
//
// - the socket table: LPC socket number -> Entry (mode, flags, state mirror,
//   owner, release target, callbacks as opaque handles, an fd waiting to be
//   adopted); numbers are picked here (CLOSED slots are reused, as upstream)
//   and given to unisock as the socket id;
// - the efun operations with upstream's checks that belong to the driver side
//   (kEeFdRange, kEeBadF, owner -> kEeSecurity, release/acquire), everything else
//   delegated to unisock; results mapped to EE codes, option failures to text;
// - the external_* efuns of modes 22/23: the same checks, values converted
//   both ways, unisock's EE codes, or its text for a refused argument;
// - event routing: unisock_dispatch, then every unisock_next_event turned into
//   read(id, data[, addr]) / write(id) / close(id, reason) / listen(id) through
//   Driver::call (the close reason is an optional argument; an abnormal close
//   is also logged through Driver::log); MUD-mode text through
//   Driver::save_text/restore_text;
// - what the master's valid_socket is told (socket_info: upstream's info plus
//   the mode and what is asked), and one log line for each operation the
//   unisock policy refuses (shim_policy.h has the policy itself).
//
// Every method is called on the driver thread. No method keeps an Entry
// reference across a Driver::call (callbacks may create, close or reuse sockets).

#ifndef UNISOCK_SHIM_CORE_H
#define UNISOCK_SHIM_CORE_H

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "shim_driver.h"
#include "shim_values.h"

namespace unisock_shim {

// The close reason when unisock gives none (it always does; a safety net).
constexpr const char* kClosedByPeer = "closed by the peer";

// Entry states: the driver's socket_state numbering (STATE_CLOSED .. STATE_DATA_XFER).
enum class State : int { Closed = 0, Flushing, Unbound, Bound, Listen, Handshake, DataXfer };

// Entry flags: the driver's S_* numbering.
enum : uint32_t {
  S_RELEASE = 0x001,
  S_BLOCKED = 0x002,
  S_HEADER = 0x004,
  S_WACCEPT = 0x008,
  S_BINARY = 0x010,
  S_READ_FP = 0x020,
  S_WRITE_FP = 0x040,
  S_CLOSE_FP = 0x080,
  S_EXTERNAL = 0x100,
  S_LINKDEAD = 0x200,
  S_TLS_SUPPORT = 0x400,
  S_TLS_IS_SERVER = 0x800,
};

// Legacy modes (the driver's enum socket_mode).
enum : int64_t {
  MODE_MUD = 0,
  MODE_STREAM = 1,
  MODE_DATAGRAM = 2,
  MODE_STREAM_BINARY = 3,
  MODE_DATAGRAM_BINARY = 4,
  MODE_STREAM_TLS = 5,
  MODE_STREAM_TLS_BINARY = 6,
};

struct Entry {
  State state = State::Closed;
  int64_t mode = MODE_MUD;  // the mode as created (STREAM_BINARY stays 3)
  uint32_t flags = 0;
  ObjectRef owner = nullptr;
  ObjectRef release_ob = nullptr;
  CallbackRef read_cb = nullptr;  // also the listen callback, as upstream
  CallbackRef write_cb = nullptr;
  CallbackRef close_cb = nullptr;
  int pending_fd = -1;  // an fd handed over by the driver (external_start), not yet adopted
  bool in_unisock = false;  // unisock knows this number
};

// The host and port the master's valid_socket sees for socket_connect's
// address: "host port" split as upstream (the port 0 when missing), or a URL's
// host (lower-case, IPv6 without brackets, user info dropped) and its port --
// the one it names, else the scheme's default (http/ws 80, https/wss 443,
// mqtt 1883, mqtts 8883; 0 for other schemes).
void connect_target(const std::string& address, std::string* host, int64_t* port);

class Core {
 public:
  explicit Core(Driver& d) : d_(d) {}
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;
  ~Core();

  Driver& driver() { return d_; }

  // ---- the table ----
  // A free number (a CLOSED slot, else a new one at the end).
  int find_new_socket();
  int size() const { return static_cast<int>(table_.size()); }
  // nullptr when out of range. The reference is valid until the table grows.
  Entry* get(int id);
  const Entry* get(int id) const;
  bool live(int id) const;  // in range and not CLOSED
  ObjectRef owner_of(int id) const;  // nullptr when not live
  // Callback setters: take cb (nullptr clears); the old one is freed.
  void set_read_callback(int id, CallbackRef cb);
  void set_write_callback(int id, CallbackRef cb);
  void set_close_callback(int id, CallbackRef cb);

  // ---- sockets handed over by the driver (external_start) ----
  // Records `fd` for entry `id` (found by find_new_socket); it is adopted by
  // adopt_pending() (the driver calls it from its event callback, and every
  // efun calls it first), or closed if the entry is closed first.
  void set_pending_fd(int id, int fd);
  // Gives a pending fd to unisock as STREAM (STREAM_BINARY with S_BINARY, or
  // the entry's mode when it is MUD). Returns kEeSuccess or an EE code (the
  // entry is then cleared and the fd closed by unisock).
  int adopt_pending(int id);
  // adopt_pending for every entry that has one.
  void adopt_all_pending();

  // ---- efuns (caller = the current object; callbacks are always taken) ----
  int create(int64_t mode, CallbackRef read_cb, CallbackRef close_cb, ObjectRef caller);
  int bind(int id, int64_t port, const char* addr, ObjectRef caller);
  int listen(int id, CallbackRef listen_cb, ObjectRef caller);
  int accept(int id, CallbackRef read_cb, CallbackRef write_cb, ObjectRef caller);
  int connect(int id, const char* addr, CallbackRef read_cb, CallbackRef write_cb,
              ObjectRef caller);
  int write(int id, const DValue* data, const char* target, ObjectRef caller);
  // force: skip the owner check (destruct, driver-internal closes).
  int close(int id, ObjectRef caller, bool force = false);
  // Calls `cb` (taken) with (id, ob) on `ob`; kEeSuccess when ob acquired the socket meanwhile.
  int release(int id, ObjectRef ob, CallbackRef cb, ObjectRef caller);
  int acquire(int id, CallbackRef read_cb, CallbackRef write_cb, CallbackRef close_cb,
              ObjectRef caller);
  // Option access: false on failure with the LPC error text in *err.
  bool set_option(int id, int64_t option, const DValue* value, ObjectRef caller,
                  std::string* err);
  bool get_option(int id, int64_t option, ObjectRef caller, DValue** out, std::string* err);
  // "ip port" of the peer (local=false) or the local end; "0.0.0.0 0" when
  // there is none, as upstream printed an unset address.
  std::string address(int id, bool local);
  // socket_status(id) in upstream's shape ({ fd, state, mode, local, remote,
  // owner }), or nullptr when id is out of range.
  DValue* status(int id);
  // socket_status(): an array with one such entry per table slot.
  DValue* status_all();

  // ---- the external_* efuns (modes 22/23, callbacks.md "External process") ----
  // Socket problems are EE codes (< 0), whatever the efun returns otherwise:
  // kEeFdRange / kEeBadF for an id that is not a live socket, kEeSecurity for
  // another object's socket (external_get_process_stats excepted: reading needs
  // no ownership, as socket_get_option), kEeModeNotSupp for a socket that is no
  // external process (unisock's check). What unisock answers beyond that:
  //   - write, read, file_events, stats, spawn: its EE code, as socket_write and
  //     socket_bind return theirs;
  //   - monitor_path, stop_monitoring, set_limits: an argument it refused (a
  //     path, event bits, a limit -- the spec's "error naming why"): its text
  //     in *err (never empty then), for the driver to raise as an LPC error.
  // Values out (*out) are owned by the caller; nullptr unless kEeSuccess.
  // Bytes accepted for stdin (>= 0), or an EE code.
  int64_t external_write(int id, const DValue* data, ObjectRef caller);
  // Output held for pulling, at most max_bytes (<= 0: all): a string, a buffer
  // (output that is not UTF-8) or int 0 when there is none.
  int external_read(int id, int64_t max_bytes, ObjectRef caller, DValue** out);
  // The watch id (> 0), or an EE code.
  int64_t external_monitor_path(int id, const std::string& path, int64_t events, ObjectRef caller,
                                std::string* err);
  int external_stop_monitoring(int id, const std::string& path, ObjectRef caller, std::string* err);
  // An array of the file-event mappings held for pulling (empty when none).
  int external_file_events(int id, ObjectRef caller, DValue** out);
  // `limits`: a mapping of "cpu", "memory", "files", "priority".
  int external_set_limits(int id, const DValue* limits, ObjectRef caller, std::string* err);
  // The stats mapping (pid, running, uptime_ms, cpu_ms, rss_kb, max_rss_kb,
  // restarts, limits, sandbox).
  int external_stats(int id, ObjectRef caller, DValue** out);
  // Starts the configured process: socket_bind(id, 0).
  int external_spawn(int id, ObjectRef caller);

  // ---- what the master's valid_socket is told ----
  // info = ({ fd, owner, addr, port, mode, asked }): upstream's four
  // elements, then the socket's mode (the mode asked for on "create"; -1 for a
  // number that is no socket) and a mapping of what the operation asks
  // (`asked`, taken; null: an empty mapping). docs/INTEGRATION.md lists the shapes.
  DValue* socket_info(int id, ObjectRef owner, const std::string& addr, int64_t port,
                      int64_t mode, DValue* asked);
  // The mode of a live socket, -1 otherwise.
  int64_t mode_of(int id) const;
  // Host paths and commands below are unisock's judgement of them
  // (policy_path, shim_policy.h: the library's own resolution, what its
  // policy checks): paths with a file still to be made allowed (where it will
  // be), commands as they must exist (else where the policy places them).
  // socket_set_option: ([ "option": option ]), plus "paths": the host paths
  // the value names, for an option that names any: SO_TLS_CERT,
  // SO_TLS_KEY, SO_TLS_CA, IPC_SOCKET_DIR, SO_APACHE_FASTCGI_SOCKET,
  // EXTERNAL_WORKING_DIR, EXTERNAL_WATCH_PATH (a string or each string of an
  // array) and EXTERNAL_STD*_MODE "file:<path>"; for EXTERNAL_COMMAND
  // "command": the command (its host path when absolute), as a start shows it.
  DValue* asked_option(int64_t option, const DValue* value);
  // A process start (socket_bind or external_spawn_process of a mode 22/23
  // socket): ([ "command": EXTERNAL_COMMAND (its host path when it is an
  // absolute path run without a shell), "args": EXTERNAL_ARGS, "shell":
  // EXTERNAL_SHELL ]); an empty mapping for a socket of another mode. With
  // `efun`, also "efun": efun.
  DValue* asked_start(int id, const char* efun);
  // An external_* efun: ([ "efun": efun ]), plus "paths": ({ host path of
  // *path }) when it names one (external_monitor_path, external_stop_monitoring).
  DValue* asked_external(const char* efun, const std::string* path);
  // socket_connect: "paths": ({ host path }) for an IPC_CLIENT's Unix
  // socket path (an address starting with "/"), else an empty mapping.
  DValue* asked_connect(int id, const std::string& address);
  // external_start (the driver's packages/external): ([ "efun":
  // "external_start", "command": the host path of the external_cmd_N it
  // runs, "args": its arguments as it passes them (a string is split at
  // each blank, as the driver splits it) ]).
  DValue* asked_external_start(const std::string& command, const DValue* args);

  // ---- lifecycle ----
  void close_owned_by(ObjectRef ob);  // force-closes every live socket owned by ob
  void close_all();                   // shutdown: everything, no callbacks, no flushing

  // ---- events ----
  // unisock_dispatch, then drains and routes every event. Returns the number routed.
  size_t pump();
  // Routes the events already queued (no dispatch).
  size_t drain();

  // Calls f(CallbackRef) for every callback the core holds: those of the table
  // and the references held while a callback runs (a debug memory check marks them).
  template <class F>
  void for_each_callback(F&& f) const {
    for (const Entry& e : table_) {
      if (e.read_cb) f(e.read_cb);
      if (e.write_cb) f(e.write_cb);
      if (e.close_cb) f(e.close_cb);
    }
    for (CallbackRef cb : inflight_) f(cb);
  }

  // Calls `cb` (borrowed, may be null) with args (taken) on `target`, keeping
  // it listed as in flight meanwhile. Arguments past the first `required`
  // are optional (Driver::call).
  void invoke(CallbackRef cb, ObjectRef target, std::vector<DValue*>* args,
              size_t required = SIZE_MAX);

  // The debug log's lines about abnormal closes, and apart from them those
  // about what the unisock policy refused, are limited so that a flood costs
  // little: a remote peer can make a close line at will (a bad request, an
  // idle or too slow connection), forever. Each kind has a budget of `burst`
  // lines (default 20) written verbatim, which refills by one line every
  // `interval_ms` (default 10 s). Past the budget a line is counted, not
  // written; when a line of budget is back, one line says how many were left
  // out and shows the last of them:
  //   unisock: 1234 more abnormal closes suppressed in the last 60 s, last: socket 7 ...
  // So a sustained flood writes one line per interval and kind (8 640 a day
  // at 10 s), and a burst after a quiet spell is written verbatim again. The
  // count is written at the next line of its kind, from pump() once due,
  // and by close_all(). Setting the limit starts both kinds afresh.
  void set_log_limit(int burst, int64_t interval_ms) {
    log_burst_ = burst > 0 ? burst : 1;
    log_interval_ms_ = interval_ms > 0 ? interval_ms : 1;
    close_log_ = LogLimit{"abnormal closes"};
    refusal_log_ = LogLimit{"policy refusals"};
  }
  // Writes the count of suppressed lines of each kind whose budget allows a
  // line now (every one with `force`).
  void flush_log(bool force = false);

  // Upstream's state names ("CLOSED", "CLOSING", ...). The mode names are
  // unisock's catalog's (unisock_mode_name: upstream's for 0-6), "MODE_<n>"
  // for a number that is no mode.
  static const char* state_name(State s);
  static std::string mode_name(int64_t mode);

 private:
  int check_live(int id) const;  // kEeSuccess, kEeFdRange or kEeBadF
  // The external_* efuns' first step: adopt, check_live, and the owner unless !owned.
  int check_external(int id, ObjectRef caller, bool owned);
  // The EE code of a failed external_* call; unless it is a socket problem
  // (kEeFdRange, kEeBadF, kEeSecurity, kEeModeNotSupp), unisock's text in *err.
  static int refused(unisock_result r, const char* efun, std::string* err);
  void clear(int id);            // frees callbacks, resets the entry, tells the driver
  void changed(int id) { d_.entry_changed(id); }
  void route(unisock_event* ev);

  // The budget of one kind of line (set_log_limit).
  struct LogLimit {
    const char* what;            // "abnormal closes"
    int64_t tokens = -1;         // lines that may be written now (-1: not started)
    int64_t refilled_ms = 0;     // the clock when the budget last grew
    int64_t suppressed = 0;      // lines counted, not written, since the last count
    int64_t since_ms = 0;        // the clock at the first of them
    std::string last;            // the last of them (without "unisock: ")
  };
  void refill(LogLimit& w, int64_t now);
  // The count line of w's suppressed lines; tokens not checked.
  void log_suppressed(LogLimit& w, int64_t now);
  void log_limited(LogLimit& w, const std::string& line);  // Driver::log within the budget
  void log_close(const std::string& line) { log_limited(close_log_, line); }
  // After a unisock call failed with r: when the policy refused it
  // (EE_SECURITY), one line with unisock's message, which names the key to
  // change, and the object that asked.
  void note_refusal(unisock_result r, ObjectRef who);

  Driver& d_;
  std::deque<Entry> table_;
  std::vector<CallbackRef> inflight_;
  int log_burst_ = 20;
  int64_t log_interval_ms_ = 10000;
  LogLimit close_log_{"abnormal closes"};
  LogLimit refusal_log_{"policy refusals"};
};

}  // namespace unisock_shim

#endif  // UNISOCK_SHIM_CORE_H
