// shim_core.cc: the socket table, the efun operations and event routing.

#include "shim_core.h"

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "shim_policy.h"

namespace unisock_shim {

namespace {

// The value of `key` in a unisock mapping (borrowed), or null.
const unisock_value* map_get(const unisock_value* map, const char* key) {
  size_t n = 0;
  if (unisock_value_len(map, &n) != UNISOCK_RESULT_OK) return nullptr;
  size_t klen = strlen(key);
  for (size_t i = 0; i < n; i++) {
    const unisock_value* k = nullptr;
    const unisock_value* v = nullptr;
    if (unisock_value_mapping_get(map, i, &k, &v) != UNISOCK_RESULT_OK) continue;
    const uint8_t* p = nullptr;
    size_t len = 0;
    if (unisock_value_get_kind(k) == UNISOCK_VALUE_KIND_STRING &&
        unisock_value_bytes(k, &p, &len) == UNISOCK_RESULT_OK && len == klen &&
        memcmp(p, key, len) == 0) {
      return v;
    }
  }
  return nullptr;
}

std::string str_of(const unisock_value* v) {
  const uint8_t* p = nullptr;
  size_t len = 0;
  if (!v || unisock_value_bytes(v, &p, &len) != UNISOCK_RESULT_OK) return std::string();
  return std::string(reinterpret_cast<const char*>(p), len);
}

int64_t int_of(const unisock_value* v, int64_t dflt) {
  int64_t n = dflt;
  if (v) unisock_value_int(v, &n);
  return n;
}

// unisock's "ip port" (or "*") -> upstream's socket_status form "ip.port",
// "*" for a wildcard host or port 0, "" when there is no address.
std::string status_addr(const std::string& a) {
  size_t sp = a.rfind(' ');
  if (a.empty() || sp == std::string::npos) return std::string();
  std::string host = a.substr(0, sp), port = a.substr(sp + 1);
  if (host == "::" || host == "0.0.0.0") host = "*";
  if (port == "0") port = "*";
  return host + "." + port;
}

// unisock's state names -> upstream's socket_states[] names.
const char* upstream_state(const std::string& s) {
  if (s == "UNBOUND") return "UNBOUND";
  if (s == "BOUND") return "BOUND";
  if (s == "LISTEN") return "LISTEN";
  if (s == "HANDSHAKE") return "HANDSHAKE";
  if (s == "CONNECTING" || s == "DATA_XFER") return "DATA_XFER";  // upstream: DATA_XFER at once
  if (s == "FLUSHING") return "CLOSING";
  return "CLOSED";
}

bool is_tls(int64_t mode) { return mode == MODE_STREAM_TLS || mode == MODE_STREAM_TLS_BINARY; }

}  // namespace

void connect_target(const std::string& a, std::string* host, int64_t* port) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    return s;
  };
  if (a.find("://") == std::string::npos) {
    size_t sp = a.find(' ');
    *host = sp == std::string::npos ? a : a.substr(0, sp);
    *port = sp == std::string::npos ? 0 : atoi(a.c_str() + sp + 1);
    return;
  }
  // Read as the URL parser unisock uses (WHATWG) reads it: controls and spaces
  // at either end dropped, tabs and newlines removed anywhere, the authority
  // ended by / ? # or \, user info dropped, the host percent-decoded.
  std::string url;
  for (char c : a) {
    if (c != '\t' && c != '\n' && c != '\r') url += c;
  }
  auto c0_or_space = [](char c) { return static_cast<unsigned char>(c) <= 0x20; };
  size_t first = 0, last = url.size();
  while (first < last && c0_or_space(url[first])) first++;
  while (last > first && c0_or_space(url[last - 1])) last--;
  url = url.substr(first, last - first);
  size_t sep = url.find("://");
  if (sep == std::string::npos) sep = url.size();
  std::string scheme = lower(url.substr(0, sep));
  std::string rest = sep + 3 <= url.size() ? url.substr(sep + 3) : std::string();
  std::string h = rest.substr(0, rest.find_first_of("/?#\\"));
  size_t at = h.rfind('@');
  if (at != std::string::npos) h = h.substr(at + 1);
  std::string digits;
  if (!h.empty() && h[0] == '[') {
    size_t rb = h.find(']');
    if (rb != std::string::npos) {
      if (rb + 1 < h.size() && h[rb + 1] == ':') digits = h.substr(rb + 2);
      h = h.substr(1, rb - 1);
    }
  } else {
    size_t colon = h.rfind(':');
    if (colon != std::string::npos) {
      digits = h.substr(colon + 1);
      h = h.substr(0, colon);
    }
  }
  std::string decoded;
  for (size_t i = 0; i < h.size(); i++) {
    if (h[i] == '%' && i + 2 < h.size() && isxdigit(static_cast<unsigned char>(h[i + 1])) &&
        isxdigit(static_cast<unsigned char>(h[i + 2]))) {
      decoded += static_cast<char>(strtol(h.substr(i + 1, 2).c_str(), nullptr, 16));
      i += 2;
    } else {
      decoded += h[i];
    }
  }
  *host = lower(decoded);
  if (!digits.empty() && digits.size() <= 5 &&
      digits.find_first_not_of("0123456789") == std::string::npos) {
    *port = atoi(digits.c_str());
  } else if (scheme == "http" || scheme == "ws") {
    *port = 80;
  } else if (scheme == "https" || scheme == "wss") {
    *port = 443;
  } else if (scheme == "mqtt") {
    *port = 1883;
  } else if (scheme == "mqtts") {
    *port = 8883;
  } else {
    *port = 0;
  }
}

Core::~Core() {
  // Driver values and callbacks belong to the driver; close_all() is the
  // driver's to call at shutdown. Here only the callbacks are let go.
  for (int i = 0; i < size(); i++) {
    Entry& e = table_[i];
    if (e.read_cb) d_.callback_free(e.read_cb);
    if (e.write_cb) d_.callback_free(e.write_cb);
    if (e.close_cb) d_.callback_free(e.close_cb);
    e.read_cb = e.write_cb = e.close_cb = nullptr;
    if (e.pending_fd >= 0) ::close(e.pending_fd);
    e.pending_fd = -1;
  }
}

// ---- table ---------------------------------------------------------------------------------------

int Core::find_new_socket() {
  for (int i = 0; i < size(); i++) {
    const Entry& e = table_[i];
    if (e.state == State::Closed && e.pending_fd < 0) return i;
  }
  table_.emplace_back();
  return size() - 1;
}

Entry* Core::get(int id) { return id >= 0 && id < size() ? &table_[id] : nullptr; }
const Entry* Core::get(int id) const { return id >= 0 && id < size() ? &table_[id] : nullptr; }

bool Core::live(int id) const {
  const Entry* e = get(id);
  return e && e->state != State::Closed && e->state != State::Flushing;
}

ObjectRef Core::owner_of(int id) const { return live(id) ? table_[id].owner : nullptr; }

int Core::check_live(int id) const {
  const Entry* e = get(id);
  if (!e) return kEeFdRange;
  if (e->state == State::Closed || e->state == State::Flushing) return kEeBadF;
  return kEeSuccess;
}

void Core::set_read_callback(int id, CallbackRef cb) {
  Entry* e = get(id);
  if (!e) {
    if (cb) d_.callback_free(cb);
    return;
  }
  CallbackRef old = e->read_cb;
  e->read_cb = cb;
  if (old) d_.callback_free(old);
}

void Core::set_write_callback(int id, CallbackRef cb) {
  Entry* e = get(id);
  if (!e) {
    if (cb) d_.callback_free(cb);
    return;
  }
  CallbackRef old = e->write_cb;
  e->write_cb = cb;
  if (old) d_.callback_free(old);
}

void Core::set_close_callback(int id, CallbackRef cb) {
  Entry* e = get(id);
  if (!e) {
    if (cb) d_.callback_free(cb);
    return;
  }
  CallbackRef old = e->close_cb;
  e->close_cb = cb;
  if (old) d_.callback_free(old);
}

void Core::clear(int id) {
  Entry* e = get(id);
  if (!e) return;
  CallbackRef cbs[3] = {e->read_cb, e->write_cb, e->close_cb};
  int fd = e->pending_fd;
  *e = Entry();
  if (fd >= 0) ::close(fd);
  for (CallbackRef cb : cbs) {
    if (cb) d_.callback_free(cb);
  }
  changed(id);
}

// ---- adopted fds -----------------------------------------------------------------------------------

void Core::set_pending_fd(int id, int fd) {
  Entry* e = get(id);
  if (!e) return;
  e->pending_fd = fd;
  e->state = State::DataXfer;
  e->mode = MODE_STREAM;
  e->in_unisock = false;
  changed(id);
}

int Core::adopt_pending(int id) {
  Entry* e = get(id);
  if (!e || e->pending_fd < 0) return kEeSuccess;
  int fd = e->pending_fd;
  e->pending_fd = -1;  // unisock owns it from here on, in every case
  int64_t mode = e->mode == MODE_MUD ? MODE_MUD
                                     : ((e->flags & S_BINARY) ? MODE_STREAM_BINARY : MODE_STREAM);
  unisock_result r = unisock_adopt_fd(id, fd, mode);
  if (r != UNISOCK_RESULT_OK) {
    d_.log("unisock: adopting fd " + std::to_string(fd) + " as socket " + std::to_string(id) +
           " failed: " + last_error_text());
    clear(id);
    return ee_of(r);
  }
  e = get(id);
  e->in_unisock = true;
  e->mode = mode;
  if (e->state == State::Closed) e->state = State::DataXfer;
  changed(id);
  return kEeSuccess;
}

void Core::adopt_all_pending() {
  for (int i = 0; i < size(); i++) {
    if (table_[i].pending_fd >= 0) adopt_pending(i);
  }
}

// ---- efuns ---------------------------------------------------------------------------------------

int Core::create(int64_t mode, CallbackRef read_cb, CallbackRef close_cb, ObjectRef caller) {
  int id = find_new_socket();
  bool appended = id == size() - 1 && table_[id].state == State::Closed;
  unisock_result r = unisock_create(id, mode);
  if (r != UNISOCK_RESULT_OK) {
    note_refusal(r, caller);
    if (read_cb) d_.callback_free(read_cb);
    if (close_cb) d_.callback_free(close_cb);
    if (appended && id == size() - 1) table_.pop_back();
    return ee_of(r);
  }
  Entry& e = table_[id];
  e = Entry();
  e.state = State::Unbound;
  e.mode = mode;
  e.flags = S_HEADER;
  if (mode == MODE_STREAM_BINARY || mode == MODE_DATAGRAM_BINARY || mode == MODE_STREAM_TLS_BINARY)
    e.flags |= S_BINARY;
  if (is_tls(mode)) e.flags |= S_TLS_SUPPORT;
  e.owner = caller;
  e.in_unisock = true;
  e.read_cb = read_cb;
  if (mode == MODE_DATAGRAM || mode == MODE_DATAGRAM_BINARY) {
    // Upstream never calls a datagram socket's close callback.
    if (close_cb) d_.callback_free(close_cb);
  } else {
    e.close_cb = close_cb;
  }
  changed(id);
  return id;
}

int Core::bind(int id, int64_t port, const char* addr, ObjectRef caller) {
  adopt_pending(id);
  int rc = check_live(id);
  if (rc != kEeSuccess) return rc;
  if (table_[id].owner != caller) return kEeSecurity;
  unisock_result r = unisock_bind(id, port, addr);
  if (r != UNISOCK_RESULT_OK) {
    note_refusal(r, caller);
    return ee_of(r);
  }
  table_[id].state = State::Bound;
  changed(id);
  return kEeSuccess;
}

int Core::listen(int id, CallbackRef listen_cb, ObjectRef caller) {
  adopt_pending(id);
  int rc = check_live(id);
  if (rc == kEeSuccess && table_[id].owner != caller) rc = kEeSecurity;
  if (rc == kEeSuccess) {
    unisock_result r = unisock_listen(id);
    if (r != UNISOCK_RESULT_OK) {
      note_refusal(r, caller);
      rc = ee_of(r);
    }
  }
  if (rc != kEeSuccess) {
    if (listen_cb) d_.callback_free(listen_cb);
    return rc;
  }
  table_[id].state = State::Listen;
  if (table_[id].mode == UNISOCK_MODE_IPC_SERVER) {
    // An IPC server accepts its clients itself: their messages (and the
    // client_connected / client_disconnected notices) go to the read
    // callback given to socket_create, and nothing calls a listen callback.
    if (listen_cb) d_.callback_free(listen_cb);
  } else {
    set_read_callback(id, listen_cb);  // upstream: the listen callback takes the read slot
  }
  changed(id);
  return kEeSuccess;
}

int Core::accept(int id, CallbackRef read_cb, CallbackRef write_cb, ObjectRef caller) {
  adopt_pending(id);
  int rc = check_live(id);
  if (rc == kEeSuccess && table_[id].owner != caller) rc = kEeSecurity;
  int nid = -1;
  bool appended = false;
  if (rc == kEeSuccess) {
    nid = find_new_socket();
    appended = nid == size() - 1 && table_[nid].state == State::Closed;
    unisock_result r = unisock_accept(id, nid);
    if (r != UNISOCK_RESULT_OK) {
      rc = ee_of(r);
      if (appended && nid == size() - 1) table_.pop_back();
    }
  }
  if (rc != kEeSuccess) {
    if (read_cb) d_.callback_free(read_cb);
    if (write_cb) d_.callback_free(write_cb);
    return rc;
  }
  Entry& l = table_[id];
  l.flags &= ~S_WACCEPT;
  Entry& e = table_[nid];
  e = Entry();
  e.mode = l.mode;
  e.flags = S_HEADER | (l.flags & (S_BINARY | S_TLS_SUPPORT));
  if (is_tls(l.mode)) {
    e.flags |= S_TLS_IS_SERVER;
    e.state = State::Handshake;
  } else {
    e.state = State::DataXfer;
  }
  e.owner = caller;
  e.in_unisock = true;
  e.read_cb = read_cb;
  e.write_cb = write_cb;
  e.close_cb = l.close_cb ? d_.callback_copy(l.close_cb) : nullptr;
  changed(id);
  changed(nid);
  return nid;
}

int Core::connect(int id, const char* addr, CallbackRef read_cb, CallbackRef write_cb,
                  ObjectRef caller) {
  adopt_pending(id);
  int rc = check_live(id);
  if (rc == kEeSuccess && table_[id].owner != caller) rc = kEeSecurity;
  if (rc == kEeSuccess) {
    unisock_result r = unisock_connect(id, addr ? addr : "");
    if (r != UNISOCK_RESULT_OK) {
      note_refusal(r, caller);
      rc = ee_of(r);
    }
  }
  if (rc != kEeSuccess) {
    if (read_cb) d_.callback_free(read_cb);
    if (write_cb) d_.callback_free(write_cb);
    return rc;
  }
  set_read_callback(id, read_cb);
  set_write_callback(id, write_cb);
  Entry& e = table_[id];
  e.state = is_tls(e.mode) ? State::Handshake : State::DataXfer;
  e.flags |= S_BLOCKED;  // until the write callback says the connection is ready
  changed(id);
  return kEeSuccess;
}

int Core::write(int id, const DValue* data, const char* target, ObjectRef caller) {
  adopt_pending(id);
  int rc = check_live(id);
  if (rc != kEeSuccess) return rc;
  if (table_[id].owner != caller) return kEeSecurity;
  UValue v;
  if (table_[id].mode == MODE_MUD) {
    std::string text;
    rc = d_.save_text(data, &text);
    if (rc != kEeSuccess) return rc;
    unisock_value* out = nullptr;
    unisock_result r = unisock_value_new_string(text.data(), text.size(), &out);
    if (r == UNISOCK_RESULT_INVALID_UTF8) {
      r = unisock_value_new_buffer(reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                                   &out);
    }
    if (r != UNISOCK_RESULT_OK) return ee_of(r);
    v.reset(out);
  } else {
    v = to_unisock(d_, data, &rc);
    if (!v) return rc;
  }
  unisock_result r = unisock_write(id, v.get(), target);
  if (r == UNISOCK_RESULT_EE_CALLBACK) {
    table_[id].flags |= S_BLOCKED;
    changed(id);
  }
  return ee_of(r);
}

int Core::close(int id, ObjectRef caller, bool force) {
  Entry* e = get(id);
  if (!e) return kEeFdRange;
  if (e->state == State::Closed || e->state == State::Flushing) return kEeBadF;
  if (!force && e->owner != caller) return kEeSecurity;
  if (e->pending_fd < 0 && e->in_unisock) {
    // EE_BADF here means unisock already dropped it (the peer closed); either
    // way unisock purges the id's queued events, so the number is free now.
    (void)unisock_close(id);
  }
  clear(id);  // closes a pending fd
  return kEeSuccess;
}

int Core::release(int id, ObjectRef ob, CallbackRef cb, ObjectRef caller) {
  adopt_pending(id);
  int rc = check_live(id);
  if (rc == kEeSuccess && table_[id].owner != caller) rc = kEeSecurity;
  if (rc == kEeSuccess && (table_[id].flags & S_RELEASE)) rc = kEeSockRlsd;
  if (rc != kEeSuccess) {
    if (cb) d_.callback_free(cb);
    return rc;
  }
  table_[id].flags |= S_RELEASE;
  table_[id].release_ob = ob;
  unisock_release(id);
  changed(id);

  std::vector<DValue*> args;
  args.push_back(d_.dv_int(id));
  args.push_back(d_.dv_object(ob));
  invoke(cb, ob, &args);
  if (cb) d_.callback_free(cb);

  Entry* e = get(id);
  if (!e || !(e->flags & S_RELEASE)) return kEeSuccess;  // acquired meanwhile
  e->flags &= ~S_RELEASE;
  e->release_ob = nullptr;
  if (e->in_unisock) unisock_acquire(id);
  changed(id);
  return kEeSockNotRlsd;
}

int Core::acquire(int id, CallbackRef read_cb, CallbackRef write_cb, CallbackRef close_cb,
                  ObjectRef caller) {
  int rc = check_live(id);
  if (rc == kEeSuccess && !(table_[id].flags & S_RELEASE)) rc = kEeSockNotRlsd;
  if (rc == kEeSuccess && table_[id].release_ob != caller) rc = kEeSecurity;
  if (rc != kEeSuccess) {
    for (CallbackRef cb : {read_cb, write_cb, close_cb}) {
      if (cb) d_.callback_free(cb);
    }
    return rc;
  }
  Entry& e = table_[id];
  e.flags &= ~S_RELEASE;
  e.owner = caller;
  e.release_ob = nullptr;
  if (e.in_unisock) unisock_acquire(id);
  set_read_callback(id, read_cb);
  set_write_callback(id, write_cb);
  set_close_callback(id, close_cb);
  changed(id);
  return kEeSuccess;
}

bool Core::set_option(int id, int64_t option, const DValue* value, ObjectRef caller,
                      std::string* err) {
  adopt_pending(id);
  if (!live(id)) {
    *err = "socket_set_option: bad socket descriptor " + std::to_string(id);
    return false;
  }
  if (table_[id].owner != caller) {
    *err = "socket_set_option: socket " + std::to_string(id) + " belongs to another object";
    return false;
  }
  int ee = kEeSuccess;
  std::string why;
  UValue v = to_unisock(d_, value, &ee, &why);
  if (!v) {
    *err = "socket_set_option: " + why;
    return false;
  }
  unisock_result r = socket_set_option(id, option, v.get());
  if (r != UNISOCK_RESULT_OK) {
    note_refusal(r, caller);
    *err = last_error_text();
    if (err->empty()) *err = "socket_set_option: " + result_text(r);
    return false;
  }
  return true;
}

bool Core::get_option(int id, int64_t option, ObjectRef caller, DValue** out, std::string* err) {
  (void)caller;  // reading needs no ownership (valid_socket is the driver layer's check)
  adopt_pending(id);
  *out = nullptr;
  if (!live(id)) {
    *err = "socket_get_option: bad socket descriptor " + std::to_string(id);
    return false;
  }
  unisock_value* v = nullptr;
  unisock_result r = socket_get_option(id, option, &v);
  if (r != UNISOCK_RESULT_OK) {
    *err = last_error_text();
    if (err->empty()) *err = "socket_get_option: " + result_text(r);
    return false;
  }
  UValue hold(v);
  *out = from_unisock(d_, v);
  return true;
}

std::string Core::address(int id, bool local) {
  adopt_pending(id);
  if (!live(id) || !table_[id].in_unisock) return "0.0.0.0 0";
  unisock_value* v = nullptr;
  if (unisock_address(id, local ? 1 : 0, &v) != UNISOCK_RESULT_OK) return "0.0.0.0 0";
  UValue hold(v);
  if (unisock_value_get_kind(v) != UNISOCK_VALUE_KIND_STRING) return "0.0.0.0 0";
  return str_of(v);
}

const char* Core::state_name(State s) {
  static const char* const names[] = {"CLOSED", "CLOSING",   "UNBOUND",  "BOUND",
                                      "LISTEN", "HANDSHAKE", "DATA_XFER"};
  return names[static_cast<int>(s)];
}

std::string Core::mode_name(int64_t mode) {
  // unisock's catalog names every mode, upstream's 0-6 as upstream does.
  if (const char* name = unisock_mode_name(mode)) return name;
  return "MODE_" + std::to_string(mode);
}

DValue* Core::status(int id) {
  Entry* e = get(id);
  if (!e) return nullptr;
  int64_t fd = -1;
  std::string state = state_name(e->state), mode = mode_name(e->mode), local, remote;
  if (e->state == State::Closed) mode = "MUD";  // a cleared slot, as upstream shows it
  if (e->pending_fd >= 0) {
    fd = e->pending_fd;
  } else if (e->in_unisock) {
    unisock_value* v = nullptr;
    if (unisock_status(id, &v) == UNISOCK_RESULT_OK) {
      UValue hold(v);
      fd = int_of(map_get(v, "fd"), -1);
      state = upstream_state(str_of(map_get(v, "state")));
      std::string mname = str_of(map_get(v, "mode_name"));
      if (e->mode > 6 && !mname.empty()) mode = mname;
      local = status_addr(str_of(map_get(v, "local")));
      remote = status_addr(str_of(map_get(v, "remote")));
    }
  }
  ObjectRef owner = e->state == State::Closed ? nullptr : e->owner;
  DHold arr(d_, d_.dv_array(6));
  d_.array_put(arr.get(), 0, d_.dv_int(fd));
  d_.array_put(arr.get(), 1, d_.dv_string(state.data(), state.size()));
  d_.array_put(arr.get(), 2, d_.dv_string(mode.data(), mode.size()));
  d_.array_put(arr.get(), 3, d_.dv_string(local.data(), local.size()));
  d_.array_put(arr.get(), 4, d_.dv_string(remote.data(), remote.size()));
  d_.array_put(arr.get(), 5, d_.dv_object(owner));
  return arr.release();
}

DValue* Core::status_all() {
  adopt_all_pending();
  int n = size();
  DHold arr(d_, d_.dv_array(n));
  for (int i = 0; i < n && i < size(); i++) d_.array_put(arr.get(), i, status(i));
  return arr.release();
}

// ---- external_* efuns ------------------------------------------------------------------------------

int Core::check_external(int id, ObjectRef caller, bool owned) {
  adopt_pending(id);
  int rc = check_live(id);
  if (rc == kEeSuccess && owned && table_[id].owner != caller) rc = kEeSecurity;
  return rc;
}

int Core::refused(unisock_result r, const char* efun, std::string* err) {
  int ee = ee_of(r);
  if (r == UNISOCK_RESULT_EE_FDRANGE || r == UNISOCK_RESULT_EE_BADF ||
      r == UNISOCK_RESULT_EE_SECURITY || r == UNISOCK_RESULT_EE_MODENOTSUPP) {
    return ee;
  }
  *err = last_error_text();
  if (err->empty()) *err = std::string(efun) + ": " + result_text(r);
  return ee;
}

int64_t Core::external_write(int id, const DValue* data, ObjectRef caller) {
  int rc = check_external(id, caller, true);
  if (rc != kEeSuccess) return rc;
  UValue v = to_unisock(d_, data, &rc);
  if (!v) return rc;
  int64_t accepted = 0;
  unisock_result r = unisock_external_write(id, v.get(), &accepted);
  return r == UNISOCK_RESULT_OK ? accepted : ee_of(r);
}

int Core::external_read(int id, int64_t max_bytes, ObjectRef caller, DValue** out) {
  *out = nullptr;
  int rc = check_external(id, caller, true);
  if (rc != kEeSuccess) return rc;
  unisock_value* v = nullptr;
  unisock_result r = unisock_external_read(id, max_bytes, &v);
  UValue hold(v);
  if (r != UNISOCK_RESULT_OK) return ee_of(r);
  *out = from_unisock(d_, v);
  return kEeSuccess;
}

int64_t Core::external_monitor_path(int id, const std::string& path, int64_t events,
                                    ObjectRef caller, std::string* err) {
  int rc = check_external(id, caller, true);
  if (rc != kEeSuccess) return rc;
  if (path.find('\0') != std::string::npos) {
    *err = "external_monitor_path: the path contains a NUL byte";
    return kEeBadData;
  }
  int64_t watch = 0;
  unisock_result r = unisock_external_monitor_path(id, path.c_str(), events, &watch);
  if (r != UNISOCK_RESULT_OK) {
    note_refusal(r, caller);
    return refused(r, "external_monitor_path", err);
  }
  return watch;
}

int Core::external_stop_monitoring(int id, const std::string& path, ObjectRef caller,
                                   std::string* err) {
  int rc = check_external(id, caller, true);
  if (rc != kEeSuccess) return rc;
  if (path.find('\0') != std::string::npos) {
    *err = "external_stop_monitoring: the path contains a NUL byte";
    return kEeBadData;
  }
  unisock_result r = unisock_external_stop_monitoring(id, path.c_str());
  if (r != UNISOCK_RESULT_OK) return refused(r, "external_stop_monitoring", err);
  return kEeSuccess;
}

int Core::external_file_events(int id, ObjectRef caller, DValue** out) {
  *out = nullptr;
  int rc = check_external(id, caller, true);
  if (rc != kEeSuccess) return rc;
  unisock_value* v = nullptr;
  unisock_result r = unisock_external_get_file_events(id, &v);
  UValue hold(v);
  if (r != UNISOCK_RESULT_OK) return ee_of(r);
  *out = from_unisock(d_, v);
  return kEeSuccess;
}

int Core::external_set_limits(int id, const DValue* limits, ObjectRef caller, std::string* err) {
  int rc = check_external(id, caller, true);
  if (rc != kEeSuccess) return rc;
  std::string why;
  UValue v = to_unisock(d_, limits, &rc, &why);
  if (!v) {
    *err = "external_set_resource_limits: " + why;
    return rc;
  }
  unisock_result r = unisock_external_set_resource_limits(id, v.get());
  if (r != UNISOCK_RESULT_OK) return refused(r, "external_set_resource_limits", err);
  return kEeSuccess;
}

int Core::external_stats(int id, ObjectRef caller, DValue** out) {
  *out = nullptr;
  int rc = check_external(id, caller, false);
  if (rc != kEeSuccess) return rc;
  unisock_value* v = nullptr;
  unisock_result r = unisock_external_get_process_stats(id, &v);
  UValue hold(v);
  if (r != UNISOCK_RESULT_OK) return ee_of(r);
  *out = from_unisock(d_, v);
  return kEeSuccess;
}

int Core::external_spawn(int id, ObjectRef caller) {
  int rc = check_external(id, caller, true);
  if (rc != kEeSuccess) return rc;
  unisock_result r = unisock_external_spawn_process(id);
  if (r != UNISOCK_RESULT_OK) {
    note_refusal(r, caller);
    return ee_of(r);
  }
  table_[id].state = State::Bound;  // as socket_bind leaves it
  changed(id);
  return kEeSuccess;
}

// ---- what valid_socket is told ------------------------------------------------------------------

namespace {

// key -> value (taken) into a driver mapping.
void put(Driver& d, DValue* map, const char* key, DValue* val) {
  d.mapping_put(map, d.dv_string(key, strlen(key)), val);
}

DValue* string_array(Driver& d, const std::vector<std::string>& items) {
  DValue* arr = d.dv_array(items.size());
  for (size_t i = 0; i < items.size(); i++)
    d.array_put(arr, i, d.dv_string(items[i].data(), items[i].size()));
  return arr;
}

}  // namespace

DValue* Core::socket_info(int id, ObjectRef owner, const std::string& addr, int64_t port,
                          int64_t mode, DValue* asked) {
  DHold hold(d_, asked ? asked : d_.dv_mapping(0));
  DHold info(d_, d_.dv_array(6));
  d_.array_put(info.get(), 0, d_.dv_int(id));
  d_.array_put(info.get(), 1, d_.dv_object(owner));
  d_.array_put(info.get(), 2, d_.dv_string(addr.data(), addr.size()));
  d_.array_put(info.get(), 3, d_.dv_int(port));
  d_.array_put(info.get(), 4, d_.dv_int(mode));
  d_.array_put(info.get(), 5, hold.release());
  return info.release();
}

int64_t Core::mode_of(int id) const { return live(id) ? table_[id].mode : -1; }

DValue* Core::asked_option(int64_t option, const DValue* value) {
  DHold asked(d_, d_.dv_mapping(2));
  put(d_, asked.get(), "option", d_.dv_int(option));
  std::vector<std::string> paths;
  bool names_paths = true;
  auto text = [&](const DValue* v, std::string* out) {
    if (d_.kind(v) != Kind::String) return false;
    std::string_view b = d_.bytes_of(v);
    *out = std::string(b.data(), b.size());
    return true;
  };
  std::string t;
  switch (option) {
    case UNISOCK_OPT_SO_TLS_CERT:
    case UNISOCK_OPT_SO_TLS_KEY:
    case UNISOCK_OPT_SO_TLS_CA:
    case UNISOCK_OPT_IPC_SOCKET_DIR:
    case UNISOCK_OPT_SO_APACHE_FASTCGI_SOCKET:
    case UNISOCK_OPT_EXTERNAL_WORKING_DIR:
      if (text(value, &t)) paths.push_back(policy_path(t, true));
      break;
    case UNISOCK_OPT_EXTERNAL_COMMAND:
      // A command, judged as the one a start runs ("command", not "paths");
      // a relative one is a shell's command line (or refused): as given.
      names_paths = false;
      if (text(value, &t)) {
        if (!t.empty() && t[0] == '/') t = policy_path(t, false);
        put(d_, asked.get(), "command", d_.dv_string(t.data(), t.size()));
      }
      break;
    case UNISOCK_OPT_EXTERNAL_WATCH_PATH:
      if (text(value, &t)) {
        paths.push_back(policy_path(t, true));
      } else if (d_.kind(value) == Kind::Array) {
        size_t n = d_.array_size(value);
        for (size_t i = 0; i < n && i < 1024; i++) {
          if (text(d_.array_item(value, i), &t)) paths.push_back(policy_path(t, true));
        }
      }
      break;
    case UNISOCK_OPT_EXTERNAL_STDIN_MODE:
    case UNISOCK_OPT_EXTERNAL_STDOUT_MODE:
    case UNISOCK_OPT_EXTERNAL_STDERR_MODE:
      if (text(value, &t) && t.compare(0, 5, "file:") == 0)
        paths.push_back(policy_path(t.substr(5), true));
      break;
    default:
      names_paths = false;
  }
  if (names_paths) put(d_, asked.get(), "paths", string_array(d_, paths));
  return asked.release();
}

DValue* Core::asked_start(int id, const char* efun) {
  DHold asked(d_, d_.dv_mapping(4));
  if (efun) put(d_, asked.get(), "efun", d_.dv_string(efun, strlen(efun)));
  int64_t mode = mode_of(id);
  if ((mode != UNISOCK_MODE_EXTERNAL_PROCESS && mode != UNISOCK_MODE_EXTERNAL_COMMAND_MODE) ||
      !table_[id].in_unisock)
    return asked.release();
  auto get = [&](int64_t option) {
    unisock_value* v = nullptr;
    if (socket_get_option(id, option, &v) != UNISOCK_RESULT_OK) v = nullptr;
    return UValue(v);
  };
  UValue command = get(UNISOCK_OPT_EXTERNAL_COMMAND);
  UValue args = get(UNISOCK_OPT_EXTERNAL_ARGS);
  UValue shell = get(UNISOCK_OPT_EXTERNAL_SHELL);
  int64_t shell_on = 0;
  if (unisock_value_get_kind(shell.get()) == UNISOCK_VALUE_KIND_INT) {
    unisock_value_int(shell.get(), &shell_on);
  } else if (unisock_value_get_kind(shell.get()) == UNISOCK_VALUE_KIND_STRING) {
    shell_on = 1;
  }
  std::string cmd = str_of(command.get());
  if (unisock_value_get_kind(command.get()) == UNISOCK_VALUE_KIND_STRING && !shell_on &&
      !cmd.empty() && cmd[0] == '/') {
    cmd = policy_path(cmd, false);
    put(d_, asked.get(), "command", d_.dv_string(cmd.data(), cmd.size()));
  } else {
    put(d_, asked.get(), "command", from_unisock(d_, command.get()));
  }
  put(d_, asked.get(), "args", from_unisock(d_, args.get()));
  put(d_, asked.get(), "shell", from_unisock(d_, shell.get()));
  return asked.release();
}

DValue* Core::asked_external(const char* efun, const std::string* path) {
  DHold asked(d_, d_.dv_mapping(2));
  put(d_, asked.get(), "efun", d_.dv_string(efun, strlen(efun)));
  if (path) put(d_, asked.get(), "paths", string_array(d_, {policy_path(*path, true)}));
  return asked.release();
}

DValue* Core::asked_connect(int id, const std::string& address) {
  DHold asked(d_, d_.dv_mapping(1));
  if (mode_of(id) == UNISOCK_MODE_IPC_CLIENT && !address.empty() && address[0] == '/')
    put(d_, asked.get(), "paths", string_array(d_, {policy_path(address, true)}));
  return asked.release();
}

DValue* Core::asked_external_start(const std::string& command, const DValue* args) {
  DHold asked(d_, d_.dv_mapping(3));
  static const char kEfun[] = "external_start";
  put(d_, asked.get(), "efun", d_.dv_string(kEfun, sizeof kEfun - 1));
  // A relative one from the mudlib, as the driver starts it.
  std::string cmd = policy_path(command, false);
  put(d_, asked.get(), "command", d_.dv_string(cmd.data(), cmd.size()));
  std::vector<std::string> list;
  if (d_.kind(args) == Kind::String) {
    // As the driver splits it: at every blank, an empty word between two
    // blanks kept, none after a last one.
    std::string_view b = d_.bytes_of(args);
    std::string s(b.data(), b.size());
    size_t i = 0;
    while (i < s.size()) {
      size_t j = s.find(' ', i);
      if (j == std::string::npos) j = s.size();
      list.push_back(s.substr(i, j - i));
      i = j + 1;
    }
  } else if (d_.kind(args) == Kind::Array) {
    size_t n = d_.array_size(args);
    for (size_t i = 0; i < n; i++) {
      const DValue* item = d_.array_item(args, i);
      if (d_.kind(item) != Kind::String) continue;
      std::string_view b = d_.bytes_of(item);
      list.emplace_back(b.data(), b.size());
    }
  }
  put(d_, asked.get(), "args", string_array(d_, list));
  return asked.release();
}

// ---- lifecycle -----------------------------------------------------------------------------------

void Core::close_owned_by(ObjectRef ob) {
  if (!ob) return;
  for (int i = 0; i < size(); i++) {
    if (live(i) && table_[i].owner == ob) close(i, ob, true);
  }
}

void Core::close_all() {
  flush_log(true);
  unisock_close_all();
  for (int i = 0; i < size(); i++) {
    if (table_[i].state != State::Closed || table_[i].pending_fd >= 0 || table_[i].read_cb ||
        table_[i].write_cb || table_[i].close_cb)
      clear(i);
  }
}

// ---- events --------------------------------------------------------------------------------------

size_t Core::pump() {
  unisock_dispatch(nullptr);
  size_t n = drain();
  flush_log();
  return n;
}

size_t Core::drain() {
  size_t n = 0;
  for (;;) {
    unisock_event* ev = nullptr;
    if (unisock_next_event(&ev) != UNISOCK_RESULT_OK || !ev) break;
    UEvent hold(ev);
    route(ev);
    n++;
  }
  return n;
}

void Core::route(unisock_event* ev) {
  int id = unisock_event_socket(ev);
  uint32_t kind = unisock_event_get_kind(ev);
  Entry* e = get(id);
  if (!e) return;
  if (e->state == State::Closed || !e->in_unisock) return;

  std::vector<DValue*> args;
  size_t required = SIZE_MAX;  // every argument is required
  CallbackRef cb = nullptr;
  ObjectRef owner = e->owner;
  switch (kind) {
    case UNISOCK_EVENT_KIND_READ: {
      const unisock_value* data = unisock_event_data(ev);
      DValue* v = nullptr;
      if (e->mode == MODE_MUD) {
        v = d_.restore_text(str_of(data));
        if (!v) v = d_.dv_undefined();
      } else {
        v = from_unisock(d_, data);
      }
      if (e->state == State::Handshake) e->state = State::DataXfer;
      args.push_back(d_.dv_int(id));
      args.push_back(v);
      if (const char* addr = unisock_event_addr(ev)) args.push_back(d_.dv_string(addr, strlen(addr)));
      cb = e->read_cb ? d_.callback_copy(e->read_cb) : nullptr;
      break;
    }
    case UNISOCK_EVENT_KIND_LISTEN:
      e->flags |= S_WACCEPT;
      args.push_back(d_.dv_int(id));
      cb = e->read_cb ? d_.callback_copy(e->read_cb) : nullptr;
      break;
    case UNISOCK_EVENT_KIND_WRITE:
      if (e->state == State::Handshake) e->state = State::DataXfer;
      e->flags &= ~S_BLOCKED;
      args.push_back(d_.dv_int(id));
      cb = e->write_cb ? d_.callback_copy(e->write_cb) : nullptr;
      break;
    case UNISOCK_EVENT_KIND_CLOSE: {
      // close_cb(id, reason): the reason is an optional argument (a callback
      // that declares one parameter is called with the id alone). An
      // abnormal end also leaves one line in the driver's log.
      std::string reason = str_of(unisock_event_data(ev));
      if (reason.empty()) reason = kClosedByPeer;
      if (unisock_event_abnormal(ev)) {
        std::string who = d_.object_name(owner);
        log_close("unisock: socket " + std::to_string(id) + " (" + mode_name(e->mode) +
                  (who.empty() ? "" : ", " + who) + ") closed: " + reason);
      }
      // unisock has forgotten the socket: free the number first (the close
      // callback may create a socket that reuses it), then call back.
      cb = e->close_cb;
      e->close_cb = nullptr;
      clear(id);
      args.push_back(d_.dv_int(id));
      args.push_back(d_.dv_string(reason.data(), reason.size()));
      required = 1;
      break;
    }
    default:
      return;
  }
  changed(id);
  invoke(cb, owner, &args, required);  // takes args, also when cb is null
  if (cb) d_.callback_free(cb);
}

void Core::refill(LogLimit& w, int64_t now) {
  if (w.tokens < 0) {
    w.tokens = log_burst_;
    w.refilled_ms = now;
    return;
  }
  if (now - w.refilled_ms < log_interval_ms_) return;
  int64_t grown = (now - w.refilled_ms) / log_interval_ms_;
  w.tokens += grown;
  w.refilled_ms += grown * log_interval_ms_;
  if (w.tokens >= log_burst_) {
    w.tokens = log_burst_;
    w.refilled_ms = now;  // a full budget banks no time
  }
}

void Core::log_suppressed(LogLimit& w, int64_t now) {
  int64_t secs = (now - w.since_ms + 999) / 1000;
  d_.log("unisock: " + std::to_string(w.suppressed) + " more " + w.what +
         " suppressed in the last " + std::to_string(secs > 0 ? secs : 1) + " s, last: " + w.last);
  w.suppressed = 0;
  w.last.clear();
}

void Core::log_limited(LogLimit& w, const std::string& line) {
  int64_t now = d_.monotonic_ms();
  refill(w, now);
  if (w.suppressed > 0 && w.tokens > 0) {
    log_suppressed(w, now);
    w.tokens--;
  }
  if (w.suppressed == 0 && w.tokens > 0) {
    d_.log(line);
    w.tokens--;
    return;
  }
  if (w.suppressed++ == 0) w.since_ms = now;
  // The last line, bounded (a reason may quote a long URL).
  static const std::string kPrefix = "unisock: ";
  size_t from = line.compare(0, kPrefix.size(), kPrefix) == 0 ? kPrefix.size() : 0;
  w.last = line.substr(from, 1000);
}

void Core::flush_log(bool force) {
  // Called from every pump(): nothing to do, not even a clock read, unless
  // lines were suppressed.
  if (close_log_.suppressed == 0 && refusal_log_.suppressed == 0) return;
  int64_t now = d_.monotonic_ms();
  for (LogLimit* w : {&close_log_, &refusal_log_}) {
    if (w->suppressed == 0) continue;
    refill(*w, now);
    if (w->tokens > 0) {
      w->tokens--;
    } else if (!force) {
      continue;
    }
    log_suppressed(*w, now);
  }
}

void Core::note_refusal(unisock_result r, ObjectRef who) {
  if (r != UNISOCK_RESULT_EE_SECURITY) return;
  std::string why = last_error_text();
  if (why.empty()) why = result_text(r);
  std::string name = d_.object_name(who);
  log_limited(refusal_log_, "unisock: refused" + (name.empty() ? std::string() : " for " + name) +
                                ": " + why);
}

void Core::invoke(CallbackRef cb, ObjectRef target, std::vector<DValue*>* args,
                  size_t required) {
  if (cb) inflight_.push_back(cb);
  d_.call(cb, target, args, required);  // must not throw
  if (cb) {
    for (size_t i = inflight_.size(); i-- > 0;) {
      if (inflight_[i] == cb) {
        inflight_.erase(inflight_.begin() + static_cast<long>(i));
        break;
      }
    }
  }
}

}  // namespace unisock_shim
