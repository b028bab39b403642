// fake_driver.h: a stand-in of the FluffOS driver API, written from the facts in
// ../shared/fluffos/README.md (svalue_t type tags, counted strings, ref-counted
// arrays/mappings/buffers, objects, function pointers, the VM stack, safe_apply,
// save_svalue/restore_svalue). Just enough for the shim core's tests, with a
// counter of every live allocation so that tests can prove nothing leaks.

#ifndef UNISOCK_TESTS_FAKE_DRIVER_H
#define UNISOCK_TESTS_FAKE_DRIVER_H

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fake {

// Type tags and subtypes as the driver numbers them.
constexpr unsigned short T_NUMBER = 0x2, T_STRING = 0x4, T_ARRAY = 0x8, T_OBJECT = 0x10,
                         T_MAPPING = 0x20, T_FUNCTION = 0x40, T_REAL = 0x80, T_BUFFER = 0x100,
                         T_CLASS = 0x200;
constexpr unsigned short T_UNDEFINED = 0x4;  // subtype of T_NUMBER
constexpr unsigned short STRING_CONSTANT = 0, STRING_MALLOC = 0x1, STRING_SHARED = 0x3;
constexpr unsigned O_DESTRUCTED = 0x10, O_EFUN_SOCKET = 0x800;

struct array_t;
struct mapping_t;
struct buffer_t;
struct object_t;
struct funptr_t;

struct svalue_t {
  unsigned short type;
  unsigned short subtype;
  union {
    int64_t number;
    double real;
    const char* string;
    array_t* arr;
    mapping_t* map;
    buffer_t* buf;
    object_t* ob;
    funptr_t* fp;
  } u;
};

struct array_t {
  uint32_t ref;
  int size;
  svalue_t* item;
};

struct mapping_node_t {
  svalue_t values[2];
};

struct mapping_t {
  uint32_t ref;
  std::vector<mapping_node_t*> nodes;
};

struct buffer_t {
  uint32_t ref;
  unsigned int size;
  unsigned char* item;
};

struct object_t {
  uint32_t ref;
  unsigned flags;
  std::string name;
  // Functions callable by safe_apply: name -> body(args, n).
  std::map<std::string, std::function<void(svalue_t*, int)>> funcs;
  // How many parameters a function declares (missing: any number, as varargs).
  std::map<std::string, int> params;
};

struct funptr_t {
  uint32_t ref;
  object_t* owner;
  std::function<void(svalue_t*, int)> body;
  int params = -1;  // parameters the function declares (-1: any number)
};

extern const svalue_t const0, const0u;

// Live allocations of every kind (strings, arrays, mappings, nodes, buffers, objects, funptrs).
long live_blocks();

// Strings: counted, with a hidden header (length, refs) in front.
char* new_string(size_t len);                 // len bytes + NUL, refs 1
char* string_copy(const char* s, size_t len);
const char* ref_string(const char* s);
void free_string(const char* s);
size_t counted_strlen(const char* s);

array_t* allocate_empty_array(int n);  // every item const0u
void free_array(array_t* a);
mapping_t* allocate_mapping(int n);
// The value slot for key (inserted as a copy of *key when missing).
svalue_t* find_for_insert(mapping_t* m, svalue_t* key, int unused);
void free_mapping(mapping_t* m);
buffer_t* allocate_buffer(int n);
void free_buffer(buffer_t* b);

object_t* new_object(const std::string& name);
void add_ref(object_t* ob);
void free_object(object_t* ob);
void destruct_object(object_t* ob);  // marks it destructed and drops the creator's ref

funptr_t* make_funp(object_t* owner, std::function<void(svalue_t*, int)> body);
void free_funp(funptr_t* f);

void free_svalue(svalue_t* v);
void assign_svalue_no_free(svalue_t* to, const svalue_t* from);
bool svalue_equal(const svalue_t* a, const svalue_t* b);  // deep, order-insensitive for mappings

// The VM stack.
extern std::vector<svalue_t> stack;
void push_svalue_moved(svalue_t v);  // takes v's references
void pop_n_elems(int n);

// Calls: the arguments are the top n stack entries; both pop them.
void safe_apply(const char* fun, object_t* ob, int n);
void safe_call_function_pointer(funptr_t* f, int n);

// save_svalue / restore_svalue in the driver's text format (numbers, reals,
// "strings", ({ arrays, }), ([ key:value, ]) ); objects and functions save as 0.
int svalue_save_depth(const svalue_t* v);
std::string save_svalue(const svalue_t* v);
int restore_svalue(const char* text, svalue_t* out);  // 0 on success

// Helpers for tests.
svalue_t make_int(int64_t n);
svalue_t make_real(double d);
svalue_t make_str(const std::string& s);
svalue_t make_buf(const std::string& bytes);
svalue_t make_arr(std::vector<svalue_t> items);                 // takes items
svalue_t make_map(std::vector<std::pair<svalue_t, svalue_t>> kv);  // takes pairs
svalue_t make_obj(object_t* ob);
std::string describe(const svalue_t* v);

}  // namespace fake

#endif  // UNISOCK_TESTS_FAKE_DRIVER_H
