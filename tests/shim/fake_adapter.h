// fake_adapter.h: the shim core's Driver implemented over the fake driver API,
// the way cpp_shim/fluffos/ implements it over the real one.

#ifndef UNISOCK_TESTS_FAKE_ADAPTER_H
#define UNISOCK_TESTS_FAKE_ADAPTER_H

#include <string>
#include <vector>

#include "fake_driver.h"
#include "shim_driver.h"

namespace unisock_shim {
// The fake's driver value: an svalue_t (owned ones are heap holders).
struct DValue {
  fake::svalue_t sv;
};
}  // namespace unisock_shim

class FakeAdapter : public unisock_shim::Driver {
 public:
  using DValue = unisock_shim::DValue;
  using Kind = unisock_shim::Kind;

  // Views of svalues the test owns (borrowed).
  static const DValue* view(const fake::svalue_t* sv) { return reinterpret_cast<const DValue*>(sv); }
  // Takes an owned DValue's svalue out (the holder is freed, the svalue is the caller's).
  fake::svalue_t take(DValue* v);
  // A stored callback from an svalue (string or function; copied with a reference).
  unisock_shim::CallbackRef callback(const fake::svalue_t& sv);
  unisock_shim::CallbackRef callback(const std::string& name);
  unisock_shim::CallbackRef callback(fake::funptr_t* fp);

  // The function name of a stored callback ("" for a function pointer).
  static std::string callback_name(unisock_shim::CallbackRef cb);
  long live_holders() const { return holders_; }
  long live_callbacks() const { return callbacks_; }
  std::vector<std::string> logs;
  int changes = 0;

  Kind kind(const DValue* v) override;
  int64_t int_of(const DValue* v) override;
  double real_of(const DValue* v) override;
  std::string_view bytes_of(const DValue* v) override;
  size_t array_size(const DValue* v) override;
  const DValue* array_item(const DValue* v, size_t i) override;
  void mapping_pairs(const DValue* v,
                     std::vector<std::pair<const DValue*, const DValue*>>* out) override;
  DValue* dv_undefined() override;
  DValue* dv_int(int64_t n) override;
  DValue* dv_real(double d) override;
  DValue* dv_string(const char* p, size_t n) override;
  DValue* dv_buffer(const uint8_t* p, size_t n) override;
  DValue* dv_array(size_t n) override;
  void array_put(DValue* arr, size_t i, DValue* item) override;
  DValue* dv_mapping(size_t n) override;
  void mapping_put(DValue* map, DValue* key, DValue* val) override;
  DValue* dv_object(unisock_shim::ObjectRef ob) override;
  void free_value(DValue* v) override;
  int save_text(const DValue* v, std::string* out) override;
  DValue* restore_text(const std::string& text) override;
  unisock_shim::CallbackRef callback_copy(unisock_shim::CallbackRef cb) override;
  void callback_free(unisock_shim::CallbackRef cb) override;
  // Optional arguments the callee does not declare are dropped, as the
  // FluffOS adapter does (fake::object_t::params, fake::funptr_t::params).
  void call(unisock_shim::CallbackRef cb, unisock_shim::ObjectRef target,
            std::vector<DValue*>* args, size_t required) override;
  void entry_changed(int) override { changes++; }
  void log(const std::string& line) override { logs.push_back(line); }
  // The clock the core reads (ms): the real one while clock_ms < 0.
  int64_t clock_ms = -1;
  int64_t monotonic_ms() override {
    return clock_ms >= 0 ? clock_ms : unisock_shim::Driver::monotonic_ms();
  }
  std::string object_name(unisock_shim::ObjectRef ob) override {
    return ob ? static_cast<fake::object_t*>(ob)->name : std::string();
  }

 private:
  DValue* hold(fake::svalue_t sv);
  long holders_ = 0;
  long callbacks_ = 0;
};

#endif  // UNISOCK_TESTS_FAKE_ADAPTER_H
