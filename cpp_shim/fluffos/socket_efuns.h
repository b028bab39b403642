/*
 * socket_efuns.h: unisock's FluffOS sockets package, the declarations other
 * parts of the driver use (packages/external, vm/internal/simulate.cc,
 * vm/internal/base/object.cc, packages/develop/checkmemory.cc).
 *
 * Included as "packages/sockets/socket_efuns.h" after base/package_api.h (or
 * base/std.h + the vm headers), like the header it replaces: svalue_t,
 * object_t, array_t and union string_or_func come from the driver.
 *
 * The sockets themselves live in unisock (Rust, through include/unisock.h);
 * lpc_socket_t is kept as a mirror of each entry so that code written for the
 * old package (external_start) can fill one in: an fd given to
 * new_lpc_socket_event_listener() is handed to unisock (unisock_adopt_fd) when
 * its event first fires or the socket is first used, whichever is earlier.
 */

#ifndef _SOCKET_EFUNS_H_
#define _SOCKET_EFUNS_H_

#include <sys/socket.h>
#include <event2/util.h>

// The numbers are those of include/socket.h (the LPC one). The underlying type
// is fixed because the mirror's `mode` also holds unisock's modes 10-30, which
// an enum without one could not represent (its values only span 0-7).
enum socket_mode : int {
  MUD = 0,
  STREAM = 1,
  DATAGRAM = 2,
  STREAM_BINARY = 3,
  DATAGRAM_BINARY = 4,
  STREAM_TLS = 5,
  STREAM_TLS_BINARY = 6
};

enum socket_option {
  SO_INVALID = 0,
  SO_TLS_VERIFY_PEER = 1,
  SO_TLS_SNI_HOSTNAME = 2,
  SO_TLS_CERT = 3,
  SO_TLS_KEY = 4,
};

constexpr int NUM_SOCKET_OPTIONS = 5;

enum socket_state {
  STATE_CLOSED,
  STATE_FLUSHING,
  STATE_UNBOUND,
  STATE_BOUND,
  STATE_LISTEN,
  STATE_HANDSHAKE,
  STATE_DATA_XFER
};

#define BUF_SIZE 65535 /* max reliable packet size */
#define ADDR_BUF_SIZE 64

struct lpc_socket_event_data;

// One socket table entry, as code written for the old package sees it.
// fd, flags, mode, state, owner_ob, release_ob and the callbacks are kept in
// step with unisock's entry; the buffers, ssl fields and options are unused
// (unisock keeps the data and the options) and stay zero.
struct lpc_socket_t {
  evutil_socket_t fd;
  unsigned short flags;
  enum socket_mode mode;
  enum socket_state state;
  struct sockaddr_storage l_addr;
  struct sockaddr_storage r_addr;
  ev_socklen_t l_addrlen;
  ev_socklen_t r_addrlen;
  object_t* owner_ob;
  object_t* release_ob;
  union string_or_func read_callback;
  union string_or_func write_callback;
  union string_or_func close_callback;
  char* r_buf;
  int r_off;
  int r_len;
  char* w_buf;
  int w_off;
  int w_len;
  struct event* ev_read;
  struct event* ev_write;
  struct lpc_socket_event_data* ev_data;
  void* ssl_ctx;
  void* ssl;
  svalue_t options[NUM_SOCKET_OPTIONS];
};

enum socket_flags {
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

/* flags for socket_close() */
#define SC_FORCE 1u
#define SC_DO_CALLBACK 2u
#define SC_FINAL_CLOSE 4u

array_t* socket_status(int);
int check_valid_socket(const char* const, int, object_t*, const char* const, int);
void assign_socket_owner(svalue_t*, object_t*);
object_t* get_socket_owner(int);
void close_referencing_sockets(object_t*);
int get_socket_address(int, char*, int*, int);
int socket_close(int, int);
const char* socket_error(int);
int find_new_socket(void);
void set_read_callback(int, svalue_t*);
void set_write_callback(int, svalue_t*);
void set_close_callback(int, svalue_t*);

int lpc_socks_num();
lpc_socket_t* lpc_socks_get(int i);
void mark_sockets();

void lpc_socks_closeall();

// Registers `real_fd` for socket `idx` (from find_new_socket): sock->ev_read and
// sock->ev_write become libevent events on it whose callback gives the fd to
// unisock, which owns it from then on (and closes it exactly once).
void new_lpc_socket_event_listener(int idx, lpc_socket_t* sock, evutil_socket_t real_fd);

#endif /* _SOCKET_EFUNS_H_ */
