// shim_driver.h: what the driver-independent core of the sockets package needs
// from a driver, as one small abstract class.
//
// The real implementation (cpp_shim/fluffos/) maps these calls onto FluffOS's
// svalue_t, arrays, mappings, buffers, save_svalue/restore_svalue and
// safe_apply/safe_call_function_pointer; tests/shim/ implements them with a
// counted fake. The core never sees a driver type: values are `DValue*`
// (opaque), objects are `ObjectRef`, stored callbacks are `CallbackRef`.
//
// Ownership, everywhere in this file:
//   - `const DValue*` arguments are borrowed (the driver keeps them alive).
//   - `DValue*` results of dv_* are owned by the caller until handed back:
//     to free_value(), to array_put()/mapping_put() (which take them), or to
//     call() (which takes every argument).
//   - a CallbackRef stored in a table entry is owned by the entry; the core
//     releases it with callback_free() exactly once.
//   - ObjectRef is never owned; the driver closes an object's sockets
//     (close_owned_by) before the object goes away.

#ifndef UNISOCK_SHIM_DRIVER_H
#define UNISOCK_SHIM_DRIVER_H

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unisock_shim {

struct DValue;  // a driver value; defined (or reinterpreted) by each driver
using ObjectRef = void*;
using CallbackRef = void*;

enum class Kind { Undefined, Int, Real, String, Buffer, Array, Mapping, Object, Function, Other };

// LPC EE codes (the driver's include/socket_err.h).
enum : int {
  kEeSuccess = 1,
  kEeSocket = -1,
  kEeFdRange = -5,
  kEeBadF = -6,
  kEeSecurity = -7,
  kEeModeNotSupp = -12,
  kEeTypeNotSupp = -26,
  kEeSockRlsd = -30,
  kEeSockNotRlsd = -31,
  kEeBadData = -32,
};

// Deepest nesting the shim converts or saves (the driver's MAX_SAVE_SVALUE_DEPTH).
constexpr int kMaxDepth = 100;

class Driver {
 public:
  virtual ~Driver() = default;

  // ---- reading driver values (all borrowed) ----
  virtual Kind kind(const DValue* v) = 0;
  virtual int64_t int_of(const DValue* v) = 0;
  virtual double real_of(const DValue* v) = 0;
  // Bytes of a String or Buffer (valid while v is).
  virtual std::string_view bytes_of(const DValue* v) = 0;
  // Elements of an Array.
  virtual size_t array_size(const DValue* v) = 0;
  virtual const DValue* array_item(const DValue* v, size_t i) = 0;
  // Key/value pairs of a Mapping.
  virtual void mapping_pairs(const DValue* v,
                             std::vector<std::pair<const DValue*, const DValue*>>* out) = 0;

  // ---- making driver values (owned by the caller) ----
  virtual DValue* dv_undefined() = 0;
  virtual DValue* dv_int(int64_t n) = 0;
  virtual DValue* dv_real(double d) = 0;
  virtual DValue* dv_string(const char* p, size_t n) = 0;
  virtual DValue* dv_buffer(const uint8_t* p, size_t n) = 0;
  virtual DValue* dv_array(size_t n) = 0;  // n undefined elements
  virtual void array_put(DValue* arr, size_t i, DValue* item) = 0;  // takes item
  virtual DValue* dv_mapping(size_t n) = 0;
  virtual void mapping_put(DValue* map, DValue* key, DValue* val) = 0;  // takes key and val
  virtual DValue* dv_object(ObjectRef ob) = 0;  // undefined when ob is null or gone
  virtual void free_value(DValue* v) = 0;

  // ---- MUD mode: the driver's own value text (save_svalue / restore_svalue) ----
  // Text of v into *out: kEeSuccess, kEeTypeNotSupp (an object) or kEeBadData (too deep).
  virtual int save_text(const DValue* v, std::string* out) = 0;
  // The value of a text (owned), or nullptr when it does not parse.
  virtual DValue* restore_text(const std::string& text) = 0;

  // ---- callbacks ----
  virtual CallbackRef callback_copy(CallbackRef cb) = 0;  // a new reference to the same callback
  virtual void callback_free(CallbackRef cb) = 0;
  // Calls cb with args (takes every one of them, also when cb is null or the call fails).
  // A callback given by name is applied to `target`. Must not throw.
  // Arguments past the first `required` are optional (close_cb's reason):
  // the driver drops them when the function called does not declare them,
  // so that a callback written for fewer arguments runs exactly as before
  // (SIZE_MAX: every argument is required).
  virtual void call(CallbackRef cb, ObjectRef target, std::vector<DValue*>* args,
                    size_t required) = 0;

  // ---- notifications ----
  // Entry `id` changed (state, owner, flags, or it was cleared): the driver layer mirrors it.
  virtual void entry_changed(int id) { (void)id; }
  // One line for the driver's log (debug_message).
  virtual void log(const std::string& line) { (void)line; }
  // A monotonic clock in milliseconds (the log limit's; a test sets its own).
  virtual int64_t monotonic_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  // The object's name for a log line ("/obj/foo"), "" when unknown.
  virtual std::string object_name(ObjectRef ob) {
    (void)ob;
    return std::string();
  }
};

}  // namespace unisock_shim

#endif  // UNISOCK_SHIM_DRIVER_H
