// shim_values.h: unisock_value <-> driver value conversion (over shim_driver.h).

#ifndef UNISOCK_SHIM_VALUES_H
#define UNISOCK_SHIM_VALUES_H

#include <memory>
#include <string>

#include "shim_driver.h"
#include "unisock.h"

namespace unisock_shim {

struct UValueFree {
  void operator()(unisock_value* v) const { unisock_value_free(v); }
};
// An owned unisock value.
using UValue = std::unique_ptr<unisock_value, UValueFree>;

struct UEventFree {
  void operator()(unisock_event* e) const { unisock_event_free(e); }
};
using UEvent = std::unique_ptr<unisock_event, UEventFree>;

// An owned driver value, freed through its Driver unless released.
class DHold {
 public:
  DHold(Driver& d, DValue* v) : d_(&d), v_(v) {}
  DHold(const DHold&) = delete;
  DHold& operator=(const DHold&) = delete;
  DHold(DHold&& o) noexcept : d_(o.d_), v_(o.v_) { o.v_ = nullptr; }
  ~DHold() {
    if (v_) d_->free_value(v_);
  }
  DValue* get() const { return v_; }
  DValue* release() {
    DValue* v = v_;
    v_ = nullptr;
    return v;
  }

 private:
  Driver* d_;
  DValue* v_;
};

// Driver value -> new unisock value. On failure returns null and sets *ee to
// kEeTypeNotSupp (an object, function or other kind anywhere inside) or
// kEeBadData (nested deeper than kMaxDepth, which also stops cycles), and *why
// (if given) to a short reason. Strings that are not valid UTF-8 become buffers.
UValue to_unisock(Driver& d, const DValue* v, int* ee, std::string* why = nullptr);

// unisock value (borrowed, may be null = undefined) -> new driver value (owned).
DValue* from_unisock(Driver& d, const unisock_value* v);

// Text of the last failed unisock call ("" when there is none).
std::string last_error_text();

// Fixed description of a result code.
std::string result_text(unisock_result r);

// LPC EE code of a result (kEeSuccess for OK).
inline int ee_of(unisock_result r) { return unisock_result_ee(r); }

}  // namespace unisock_shim

#endif  // UNISOCK_SHIM_VALUES_H
