/*
 * unisock-host: a small C program that plays the driver for unisock.
 *
 * It watches unisock's one reactor fd (poll), calls unisock_dispatch when it
 * is readable and drains the events, exactly as the FluffOS shim does. It
 * reads one command per line from a file or stdin and prints every result
 * and every event as one JSON object per line on stdout.
 *
 * Verbs (modes and options by name or number, values as JSON):
 *   create ID MODE            set ID OPTION VALUE        get ID OPTION
 *   bind ID PORT [IP]         listen ID                  accept LISTENER NEW_ID
 *   connect ID ADDRESS|""     write ID VALUE [TARGET]    close ID
 *   release ID                acquire ID                 adopt ID FD MODE
 *   status [ID]               address ID [local]         wait EVENT [TIMEOUT_MS [ID]]
 *   run MS                    autoaccept LISTENER [FIRST_ID]
 *   autoecho ID|all [quiet]   autoreply ID|all JSON [quiet]
 *   burst ID N JSON [TARGET]  fds
 *   spawnloop N COMMAND [pipes|null]                     timestamps on|off
 *   count                     echo TEXT
 *   policy [JSON|open]        the admin's policy (docs/SECURITY.md): JSON puts it
 *                             in force, `open` allows everything ({"open":1}),
 *                             no argument prints the one in force
 *   ext ID OP [ARGS]          the external_* efuns (OP: write JSON, read [MAX],
 *                             monitor PATH_JSON [BITS], unmonitor PATH_JSON,
 *                             events, limits JSON, stats, spawn)
 *   quit
 * `wait` runs the loop until an event of that type (read, write, close,
 * listen, any) arrives, printing everything meanwhile; on timeout it prints
 * {"wait":"timeout"} and the exit status becomes 1.
 * `autoecho` writes every string or buffer read back to its socket; a
 * mapping with "data" (an IPC bus message) goes back to where it came from:
 * to its "client_id" on an IPC_SERVER, to the server from an IPC_CLIENT.
 * A WebSocket message (a mapping with "type" "text" or "binary") goes back
 * as one message of the same kind: its "data" written as a string (a text
 * frame) or a buffer (a binary frame); the other WebSocket mappings (open,
 * close, ping, pong) are not echoed (and not printed under `quiet`). While a
 * socket's write is refused (EE_ALREADY, EE_WOULDBLOCK) the echoes wait, in
 * order, for its write event: stream bytes joined, WebSocket messages one by
 * one.
 * `burst` writes the same value N times as LPC would: after EE_CALLBACK it
 * runs the loop until the socket's write event (which it does not print)
 * before the next write; it prints {"cmd":"burst",...,"written":N,
 * "callbacks":waits,"us":elapsed} (for benchmarks: scripts/bench-ipc).
 * `spawnloop` starts COMMAND (an absolute path, no arguments) N times, one
 * after the other, as LPC would: socket_create(EXTERNAL_PROCESS),
 * EXTERNAL_COMMAND, EXTERNAL_STDIN/STDOUT/STDERR_MODE all "null" (the verb's
 * default) or all "pipe" (`pipes`), socket_bind(id, 0), then the loop until
 * the socket's close event; the socket (id 65535) is the loop's own and its
 * events are not printed. It prints {"cmd":"spawnloop","n":N,"stdio":...,
 * "ok":runs that ended with exit_code 0,"us":elapsed} (for benchmarks:
 * scripts/bench-external).
 * `timestamps on` adds "t_us" to every event printed: CLOCK_MONOTONIC in µs
 * when the host took the event from unisock's queue (`off` stops it).
 * Lines starting with # and empty lines are ignored.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unisock.h"

static int failures = 0;
static int reactor_fd = -1;

/* ---- small helpers ------------------------------------------------------ */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
  }
  fputc('"', f);
}

static void print_value(const unisock_value *v) {
  char *json = NULL;
  if (v && unisock_value_to_json(v, &json) == UNISOCK_RESULT_OK) {
    fputs(json, stdout);
    unisock_string_free(json);
  } else {
    fputs("null", stdout);
  }
}

/* Prints {"cmd":..., "result":..., "code":..., "ee":..., "error":...}. */
static void print_result(const char *cmd, long long id, unisock_result r) {
  char name[128];
  printf("{\"cmd\":");
  json_str(stdout, cmd);
  if (id >= 0) printf(",\"id\":%lld", id);
  unisock_result_text(r, name, sizeof name, NULL);
  printf(",\"result\":%s,\"code\":%u,\"ee\":%d", r == UNISOCK_RESULT_OK ? "\"ok\"" : "\"error\"",
         (unsigned)r, unisock_result_ee(r));
  if (r != UNISOCK_RESULT_OK) {
    char msg[2048];
    unisock_last_error(msg, sizeof msg, NULL);
    printf(",\"text\":");
    json_str(stdout, name);
    printf(",\"error\":");
    json_str(stdout, msg);
  }
  printf("}\n");
  fflush(stdout);
}

static int parse_mode(const char *s, long long *out) {
  char *end;
  long long n = strtoll(s, &end, 10);
  if (*s && !*end) { *out = n; return 1; }
  int64_t v;
  if (unisock_mode_number(s, &v) == UNISOCK_RESULT_OK) { *out = v; return 1; }
  return 0;
}

static int parse_option(const char *s, long long *out) {
  char *end;
  long long n = strtoll(s, &end, 10);
  if (*s && !*end) { *out = n; return 1; }
  int64_t v;
  if (unisock_option_id(s, &v) == UNISOCK_RESULT_OK) { *out = v; return 1; }
  return 0;
}

/* Splits off the next space-separated word of *p (NULL at the end). */
static char *word(char **p) {
  while (**p == ' ' || **p == '\t') (*p)++;
  if (!**p) return NULL;
  char *start = *p;
  while (**p && **p != ' ' && **p != '\t') (*p)++;
  if (**p) *(*p)++ = 0;
  return start;
}

/* Splits off one JSON value at the front of *p (strings, arrays, objects, scalars). */
static char *json_word(char **p) {
  while (**p == ' ' || **p == '\t') (*p)++;
  char *start = *p, *q = *p;
  if (!*q) return NULL;
  if (*q == '"' || *q == '[' || *q == '{') {
    int depth = 0, in_str = 0;
    for (; *q; q++) {
      if (in_str) {
        if (*q == '\\' && q[1]) q++;
        else if (*q == '"') { in_str = 0; if (depth == 0) { q++; break; } }
      } else if (*q == '"') in_str = 1;
      else if (*q == '[' || *q == '{') depth++;
      else if (*q == ']' || *q == '}') { if (--depth == 0) { q++; break; } }
    }
  } else {
    while (*q && *q != ' ' && *q != '\t') q++;
  }
  if (*q) *q++ = 0;
  *p = q;
  return start;
}

static unisock_value *json_value(const char *text) {
  unisock_value *v = NULL;
  if (!text) return NULL;
  if (unisock_value_from_json(text, strlen(text), &v) != UNISOCK_RESULT_OK) return NULL;
  return v;
}

/* ---- automatic accept and echo (for tests and benchmarks) --------------- */

#define MAX_AUTO 65536
static int autoaccept_listener[16];
static int autoaccept_n = 0;
static int next_auto_id = 1000;
static int echo_all = 0;
static unsigned char echo_on[MAX_AUTO];
typedef struct { unsigned char *data; size_t len; int binary; } pending_t;
static pending_t pending[MAX_AUTO];
/* WebSocket echoes waiting for the socket's write event, in order. */
typedef struct ws_msg { unisock_value *v; struct ws_msg *next; } ws_msg;
typedef struct { ws_msg *head, *tail; } ws_queue;
static ws_queue ws_pending[MAX_AUTO];
static int quiet_echo = 0;

static int is_echo(int id) { return id >= 0 && id < MAX_AUTO && (echo_all || echo_on[id]); }

/* autoreply: every read event carrying a mapping (an HTTP request) on these
 * sockets is answered at once with one fixed value, as a server whose reply
 * costs nothing would (benchmarks, load and concurrency tests). */
static unisock_value *reply_value = NULL;
static int reply_all = 0;
static unsigned char reply_on[MAX_AUTO];
static int quiet_reply = 0;
static int is_reply(int id) { return reply_value && id >= 0 && id < MAX_AUTO && (reply_all || reply_on[id]); }

static void echo_write(int id, const unisock_value *data) {
  const uint8_t *ptr; size_t len;
  if (unisock_value_bytes(data, &ptr, &len) != UNISOCK_RESULT_OK) return;
  pending_t *p = &pending[id];
  if (p->len) { /* still blocked: keep it for the write event */
    p->data = realloc(p->data, p->len + len);
    memcpy(p->data + p->len, ptr, len);
    p->len += len;
    return;
  }
  unisock_result r = unisock_write(id, data, NULL);
  if (r == UNISOCK_RESULT_EE_ALREADY) {
    p->data = malloc(len);
    memcpy(p->data, ptr, len);
    p->len = len;
    p->binary = unisock_value_get_kind(data) == UNISOCK_VALUE_KIND_BUFFER;
  } else if (r != UNISOCK_RESULT_OK && r != UNISOCK_RESULT_EE_CALLBACK) {
    print_result("autoecho-write", id, r);
  }
}

static void echo_flush(int id) {
  pending_t *p = &pending[id];
  if (!p->len) return;
  unisock_value *v = NULL;
  if (p->binary) unisock_value_new_buffer(p->data, p->len, &v);
  else if (unisock_value_new_string((const char *)p->data, p->len, &v) != UNISOCK_RESULT_OK)
    unisock_value_new_buffer(p->data, p->len, &v);
  free(p->data);
  p->data = NULL;
  p->len = 0;
  unisock_result r = unisock_write(id, v, NULL);
  if (r != UNISOCK_RESULT_OK && r != UNISOCK_RESULT_EE_CALLBACK) print_result("autoecho-write", id, r);
  unisock_value_free(v);
}

/* The value of string key `key` in mapping `m` (borrowed), or NULL. */
static const unisock_value *map_get(const unisock_value *m, const char *key) {
  size_t n = 0, klen = strlen(key);
  if (unisock_value_len(m, &n) != UNISOCK_RESULT_OK) return NULL;
  for (size_t i = 0; i < n; i++) {
    const unisock_value *k = NULL, *v = NULL;
    const uint8_t *p;
    size_t len;
    if (unisock_value_mapping_get(m, i, &k, &v) == UNISOCK_RESULT_OK &&
        unisock_value_get_kind(k) == UNISOCK_VALUE_KIND_STRING &&
        unisock_value_bytes(k, &p, &len) == UNISOCK_RESULT_OK && len == klen && !memcmp(p, key, len))
      return v;
  }
  return NULL;
}

/* A copy of the string or buffer `v` (owned by the caller), or NULL. */
static unisock_value *value_copy(const unisock_value *v) {
  const uint8_t *ptr;
  size_t len;
  unisock_value *out = NULL;
  if (unisock_value_bytes(v, &ptr, &len) != UNISOCK_RESULT_OK) return NULL;
  if (unisock_value_get_kind(v) == UNISOCK_VALUE_KIND_BUFFER) unisock_value_new_buffer(ptr, len, &out);
  else unisock_value_new_string((const char *)ptr, len, &out);
  return out;
}

static int write_refused(unisock_result r) {
  return r == UNISOCK_RESULT_EE_ALREADY || r == UNISOCK_RESULT_EE_WOULDBLOCK;
}

static void ws_queue_push(int id, const unisock_value *v) {
  ws_msg *m = malloc(sizeof *m);
  m->v = value_copy(v);
  m->next = NULL;
  if (!m->v) { free(m); return; }
  ws_queue *q = &ws_pending[id];
  if (q->tail) q->tail->next = m; else q->head = m;
  q->tail = m;
}

static void ws_queue_pop(int id) {
  ws_queue *q = &ws_pending[id];
  ws_msg *m = q->head;
  if (!m) return;
  q->head = m->next;
  if (!q->head) q->tail = NULL;
  unisock_value_free(m->v);
  free(m);
}

/* Writes the waiting WebSocket echoes of `id` until one is refused or stays
 * queued in unisock (EE_CALLBACK: the next write event goes on). */
static void ws_flush(int id) {
  while (ws_pending[id].head) {
    unisock_result r = unisock_write(id, ws_pending[id].head->v, NULL);
    if (write_refused(r)) return;
    if (r != UNISOCK_RESULT_OK && r != UNISOCK_RESULT_EE_CALLBACK) print_result("autoecho-write", id, r);
    ws_queue_pop(id);
    if (r == UNISOCK_RESULT_EE_CALLBACK) return;
  }
}

/* The string value of key `key` in mapping `m` equals `want`. */
static int map_str_is(const unisock_value *m, const char *key, const char *want) {
  const unisock_value *v = map_get(m, key);
  const uint8_t *p;
  size_t len;
  if (!v || unisock_value_get_kind(v) != UNISOCK_VALUE_KIND_STRING) return 0;
  if (unisock_value_bytes(v, &p, &len) != UNISOCK_RESULT_OK) return 0;
  return len == strlen(want) && !memcmp(p, want, len);
}

/* autoecho of a WebSocket mapping: "text" and "binary" messages go back as
 * one message of the same kind. Returns 1 for a WebSocket mapping ("type"
 * text, binary, open, close, ping or pong), echoed or not; 0 for any other
 * mapping (IPC messages and notices). */
static int ws_echo(int id, const unisock_value *msg) {
  if (!map_str_is(msg, "type", "text") && !map_str_is(msg, "type", "binary"))
    return map_str_is(msg, "type", "open") || map_str_is(msg, "type", "close") ||
           map_str_is(msg, "type", "ping") || map_str_is(msg, "type", "pong");
  const unisock_value *data = map_get(msg, "data");
  if (!data) return 1;
  if (ws_pending[id].head) { ws_queue_push(id, data); return 1; }
  unisock_result r = unisock_write(id, data, NULL);
  if (write_refused(r)) ws_queue_push(id, data);
  else if (r != UNISOCK_RESULT_OK && r != UNISOCK_RESULT_EE_CALLBACK) print_result("autoecho-write", id, r);
  return 1;
}

/* autoecho of a mapping: an IPC bus message (it has "data") goes back as
 * LPC's socket_write(id, msg, msg["client_id"]) would send it; other
 * mappings (client_connected / client_disconnected notices) are not
 * echoed. Returns 1 if it was echoed. */
static int ipc_echo(int id, const unisock_value *msg) {
  const unisock_value *cid = map_get(msg, "client_id");
  char target[256];
  const char *t = NULL;
  if (!map_get(msg, "data")) return 0;
  if (cid) {
    const uint8_t *p;
    size_t len;
    if (unisock_value_bytes(cid, &p, &len) != UNISOCK_RESULT_OK || len >= sizeof target) return 0;
    memcpy(target, p, len);
    target[len] = 0;
    t = target;
  }
  unisock_result r = unisock_write(id, msg, t);
  if (r != UNISOCK_RESULT_OK && r != UNISOCK_RESULT_EE_CALLBACK) print_result("autoecho-write", id, r);
  return 1;
}

/* The socket a `burst` is writing to: its write events are not printed. */
static int burst_id = -1;

/* The socket of a `spawnloop` round: its events are not printed; spawn_ok
 * counts the exit (or result) mappings with exit_code 0. */
#define SPAWN_ID 65535
static int spawn_id = -1;
static long long spawn_ok = 0;

/* `timestamps on`: every printed event carries "t_us" (CLOCK_MONOTONIC). */
static int timestamps = 0;

/* ---- the loop ----------------------------------------------------------- */

/* Dispatches once and prints the events; returns 1 if one matched `want`. */
static int drain(const char *want, int want_id) {
  int matched = 0;
  unisock_dispatch(NULL);
  for (;;) {
    unisock_event *ev = NULL;
    if (unisock_next_event(&ev) != UNISOCK_RESULT_OK || !ev) break;
    long long taken_us = timestamps ? now_us() : 0;
    uint32_t kind = unisock_event_get_kind(ev);
    int id = unisock_event_socket(ev);
    const char *name = unisock_event_kind_name(kind);
    const unisock_value *data = unisock_event_data(ev);
    const char *addr = unisock_event_addr(ev);
    int handled_quietly = 0;

    if (kind == UNISOCK_EVENT_KIND_LISTEN) {
      for (int i = 0; i < autoaccept_n; i++) {
        if (autoaccept_listener[i] == id) {
          int nid = next_auto_id++;
          unisock_result r = unisock_accept(id, nid);
          if (r == UNISOCK_RESULT_OK) {
            if (!quiet_echo && !quiet_reply) printf("{\"accepted\":%d,\"listener\":%d}\n", nid, id);
          } else {
            print_result("autoaccept", nid, r);
          }
          handled_quietly = quiet_echo || quiet_reply;
        }
      }
    } else if (kind == UNISOCK_EVENT_KIND_READ && is_reply(id) && data &&
               unisock_value_get_kind(data) == UNISOCK_VALUE_KIND_MAPPING) {
      unisock_result r = unisock_write(id, reply_value, NULL);
      if (r != UNISOCK_RESULT_OK && r != UNISOCK_RESULT_EE_CALLBACK) print_result("autoreply-write", id, r);
      handled_quietly = quiet_reply;
    } else if (kind == UNISOCK_EVENT_KIND_WRITE && is_reply(id)) {
      handled_quietly = quiet_reply;
    } else if (kind == UNISOCK_EVENT_KIND_WRITE && id == burst_id) {
      handled_quietly = 1;
    } else if (id == spawn_id && id >= 0) {
      const unisock_value *code = data ? map_get(data, "exit_code") : NULL;
      int64_t c = -1;
      if (kind == UNISOCK_EVENT_KIND_READ && code && unisock_value_int(code, &c) == UNISOCK_RESULT_OK && c == 0)
        spawn_ok++;
      handled_quietly = 1;
    } else if (kind == UNISOCK_EVENT_KIND_READ && is_echo(id) && data &&
               unisock_value_get_kind(data) == UNISOCK_VALUE_KIND_MAPPING) {
      if (id < MAX_AUTO && ws_echo(id, data)) handled_quietly = quiet_echo;
      else handled_quietly = ipc_echo(id, data) && quiet_echo;
    } else if (kind == UNISOCK_EVENT_KIND_READ && is_echo(id) && data) {
      echo_write(id, data);
      handled_quietly = quiet_echo;
    } else if (kind == UNISOCK_EVENT_KIND_WRITE && is_echo(id)) {
      echo_flush(id);
      ws_flush(id);
      handled_quietly = quiet_echo;
    } else if (kind == UNISOCK_EVENT_KIND_CLOSE && id >= 0 && id < MAX_AUTO) {
      free(pending[id].data);
      pending[id].data = NULL;
      pending[id].len = 0;
      while (ws_pending[id].head) ws_queue_pop(id);
      handled_quietly = (quiet_echo && is_echo(id)) || (quiet_reply && is_reply(id));
    }
    if (!handled_quietly) {
      printf("{\"event\":\"%s\",\"socket\":%d", name, id);
      if (data) { printf(",\"data\":"); print_value(data); }
      if (addr) { printf(",\"addr\":"); json_str(stdout, addr); }
      if (kind == UNISOCK_EVENT_KIND_CLOSE) printf(",\"abnormal\":%d", unisock_event_abnormal(ev));
      if (timestamps) printf(",\"t_us\":%lld", taken_us);
      printf("}\n");
    }
    if (want && (!strcmp(want, "any") || !strcmp(want, name)) && (want_id < 0 || want_id == id))
      matched = 1;
    unisock_event_free(ev);
  }
  fflush(stdout);
  return matched;
}

/* Runs the loop for up to `ms` (or until an event matching `want`). */
static int run_loop(long long ms, const char *want, int want_id) {
  long long deadline = now_ms() + ms;
  if (want && drain(want, want_id)) return 1;
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = reactor_fd, .events = POLLIN};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno != EINTR) return 0;
    if (n > 0 && drain(want, want_id) && want) return 1;
  }
}

static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the DIR's own fd */
}

static void command(char *line) {
  char *p = line;
  char *verb = word(&p);
  if (!verb || verb[0] == '#') return;
  long long id = -1;
  unisock_result r;

  if (!strcmp(verb, "create")) {
    char *ids = word(&p), *ms = word(&p);
    long long mode;
    if (!ids || !ms || !parse_mode(ms, &mode)) { printf("{\"cmd\":\"create\",\"error\":\"usage: create ID MODE\"}\n"); failures++; return; }
    id = atoll(ids);
    print_result("create", id, unisock_create((int)id, mode));
  } else if (!strcmp(verb, "set")) {
    char *ids = word(&p), *os = word(&p), *vs = json_word(&p);
    long long opt;
    if (!ids || !os || !vs || !parse_option(os, &opt)) { printf("{\"cmd\":\"set\",\"error\":\"usage: set ID OPTION JSON\"}\n"); failures++; return; }
    unisock_value *v = json_value(vs);
    if (!v) { printf("{\"cmd\":\"set\",\"error\":\"bad JSON value\"}\n"); failures++; return; }
    id = atoll(ids);
    print_result("set", id, socket_set_option((int)id, opt, v));
    unisock_value_free(v);
  } else if (!strcmp(verb, "get")) {
    char *ids = word(&p), *os = word(&p);
    long long opt;
    if (!ids || !os || !parse_option(os, &opt)) { printf("{\"cmd\":\"get\",\"error\":\"usage: get ID OPTION\"}\n"); failures++; return; }
    id = atoll(ids);
    unisock_value *v = NULL;
    r = socket_get_option((int)id, opt, &v);
    if (r != UNISOCK_RESULT_OK) { print_result("get", id, r); return; }
    printf("{\"cmd\":\"get\",\"id\":%lld,\"option\":%lld,\"result\":\"ok\",\"value\":", id, opt);
    print_value(v);
    printf("}\n");
    unisock_value_free(v);
  } else if (!strcmp(verb, "bind")) {
    char *ids = word(&p), *port = word(&p);
    while (*p == ' ') p++;
    if (!ids || !port) { printf("{\"cmd\":\"bind\",\"error\":\"usage: bind ID PORT [IP]\"}\n"); failures++; return; }
    id = atoll(ids);
    char addr[300];
    const char *a = NULL;
    if (*p) { snprintf(addr, sizeof addr, "%s %s", p, port); a = addr; }
    print_result("bind", id, unisock_bind((int)id, atoll(port), a));
  } else if (!strcmp(verb, "listen")) {
    id = atoll(p);
    print_result("listen", id, unisock_listen((int)id));
  } else if (!strcmp(verb, "accept")) {
    char *l = word(&p), *n = word(&p);
    if (!l || !n) { printf("{\"cmd\":\"accept\",\"error\":\"usage: accept LISTENER NEW_ID\"}\n"); failures++; return; }
    id = atoll(n);
    print_result("accept", id, unisock_accept(atoi(l), (int)id));
  } else if (!strcmp(verb, "connect")) {
    char *ids = word(&p);
    while (*p == ' ') p++;
    if (!ids || !*p) { printf("{\"cmd\":\"connect\",\"error\":\"usage: connect ID ADDRESS\"}\n"); failures++; return; }
    id = atoll(ids);
    /* `connect ID ""` passes the empty address (HTTP clients then use SO_HTTP_URL). */
    print_result("connect", id, unisock_connect((int)id, strcmp(p, "\"\"") ? p : ""));
  } else if (!strcmp(verb, "write")) {
    char *ids = word(&p), *vs = json_word(&p);
    while (*p == ' ') p++;
    if (!ids || !vs) { printf("{\"cmd\":\"write\",\"error\":\"usage: write ID JSON [TARGET]\"}\n"); failures++; return; }
    unisock_value *v = json_value(vs);
    if (!v) { printf("{\"cmd\":\"write\",\"error\":\"bad JSON value\"}\n"); failures++; return; }
    id = atoll(ids);
    print_result("write", id, unisock_write((int)id, v, *p ? p : NULL));
    unisock_value_free(v);
  } else if (!strcmp(verb, "burst")) {
    char *ids = word(&p), *ns = word(&p), *vs = json_word(&p);
    while (*p == ' ') p++;
    if (!ids || !ns || !vs) { printf("{\"cmd\":\"burst\",\"error\":\"usage: burst ID N JSON [TARGET]\"}\n"); failures++; return; }
    unisock_value *v = json_value(vs);
    if (!v) { printf("{\"cmd\":\"burst\",\"error\":\"bad JSON value\"}\n"); failures++; return; }
    id = atoll(ids);
    long long n = atoll(ns), written = 0, waits = 0, t0 = now_us();
    const char *target = *p ? p : NULL;
    r = UNISOCK_RESULT_OK;
    burst_id = (int)id;
    while (written < n) {
      r = unisock_write((int)id, v, target);
      if (r == UNISOCK_RESULT_OK) { written++; continue; }
      if (r != UNISOCK_RESULT_EE_CALLBACK) break;
      written++;
      waits++;
      fflush(stdout);
      if (!run_loop(10000, "write", (int)id)) {
        printf("{\"wait\":\"timeout\",\"event\":\"write\",\"ms\":10000}\n");
        failures++;
        break;
      }
      r = UNISOCK_RESULT_OK;
    }
    burst_id = -1;
    long long us = now_us() - t0;
    unisock_value_free(v);
    if (r != UNISOCK_RESULT_OK) { print_result("burst", id, r); return; }
    printf("{\"cmd\":\"burst\",\"id\":%lld,\"result\":\"ok\",\"written\":%lld,\"callbacks\":%lld,\"us\":%lld}\n",
           id, written, waits, us);
  } else if (!strcmp(verb, "spawnloop")) {
    char *ns = word(&p), *cmd = word(&p), *how = word(&p);
    if (!ns || !cmd || (how && strcmp(how, "pipes") && strcmp(how, "null"))) {
      printf("{\"cmd\":\"spawnloop\",\"error\":\"usage: spawnloop N COMMAND [pipes|null]\"}\n");
      failures++;
      return;
    }
    const char *stdio = how && !strcmp(how, "pipes") ? "pipe" : "null";
    unisock_value *cv = NULL, *sv = NULL;
    unisock_value_new_string(cmd, strlen(cmd), &cv);
    unisock_value_new_string(stdio, strlen(stdio), &sv);
    long long n = atoll(ns), done = 0, t0 = now_us();
    const char *step = NULL;
    r = UNISOCK_RESULT_OK;
    spawn_id = SPAWN_ID;
    spawn_ok = 0;
    while (done < n) {
      step = "spawnloop-create";
      if ((r = unisock_create(SPAWN_ID, 22)) != UNISOCK_RESULT_OK) break;
      step = "spawnloop-set";
      if ((r = socket_set_option(SPAWN_ID, 140, cv)) != UNISOCK_RESULT_OK) break;
      for (int o = 150; o <= 152 && r == UNISOCK_RESULT_OK; o++) r = socket_set_option(SPAWN_ID, o, sv);
      if (r != UNISOCK_RESULT_OK) break;
      step = "spawnloop-bind";
      if ((r = unisock_bind(SPAWN_ID, 0, NULL)) != UNISOCK_RESULT_OK) break;
      if (!run_loop(10000, "close", SPAWN_ID)) {
        printf("{\"wait\":\"timeout\",\"event\":\"close\",\"ms\":10000}\n");
        failures++;
        unisock_close(SPAWN_ID);
        break;
      }
      done++;
    }
    long long us = now_us() - t0;
    spawn_id = -1;
    unisock_value_free(cv);
    unisock_value_free(sv);
    if (r != UNISOCK_RESULT_OK) {
      print_result(step, SPAWN_ID, r);
      unisock_close(SPAWN_ID);
      return;
    }
    printf("{\"cmd\":\"spawnloop\",\"n\":%lld,\"stdio\":\"%s\",\"ok\":%lld,\"us\":%lld}\n", done, stdio,
           spawn_ok, us);
  } else if (!strcmp(verb, "timestamps")) {
    char *w = word(&p);
    timestamps = w && !strcmp(w, "on");
    printf("{\"cmd\":\"timestamps\",\"result\":\"ok\"}\n");
  } else if (!strcmp(verb, "close")) {
    id = atoll(p);
    print_result("close", id, unisock_close((int)id));
  } else if (!strcmp(verb, "release")) {
    id = atoll(p);
    print_result("release", id, unisock_release((int)id));
  } else if (!strcmp(verb, "acquire")) {
    id = atoll(p);
    print_result("acquire", id, unisock_acquire((int)id));
  } else if (!strcmp(verb, "adopt")) {
    char *ids = word(&p), *fds = word(&p), *ms = word(&p);
    long long mode;
    if (!ids || !fds || !ms || !parse_mode(ms, &mode)) { printf("{\"cmd\":\"adopt\",\"error\":\"usage: adopt ID FD MODE\"}\n"); failures++; return; }
    id = atoll(ids);
    print_result("adopt", id, unisock_adopt_fd((int)id, atoi(fds), mode));
  } else if (!strcmp(verb, "status")) {
    char *ids = word(&p);
    id = ids ? atoll(ids) : -1;
    unisock_value *v = NULL;
    r = unisock_status((int)id, &v);
    if (r != UNISOCK_RESULT_OK) { print_result("status", id, r); return; }
    printf("{\"cmd\":\"status\",\"result\":\"ok\",\"value\":");
    print_value(v);
    printf("}\n");
    unisock_value_free(v);
  } else if (!strcmp(verb, "ext")) {
    char *ids = word(&p), *op = word(&p);
    if (!ids || !op) { printf("{\"cmd\":\"ext\",\"error\":\"usage: ext ID OP [ARGS]\"}\n"); failures++; return; }
    id = atoll(ids);
    unisock_value *out = NULL, *arg = NULL;
    int64_t n = 0;
    int has_n = 0;
    if (!strcmp(op, "write") || !strcmp(op, "limits") || !strcmp(op, "monitor") || !strcmp(op, "unmonitor")) {
      char *vs = json_word(&p);
      arg = vs ? json_value(vs) : NULL;
      if (!arg) { printf("{\"cmd\":\"ext\",\"error\":\"%s wants a JSON argument\"}\n", op); failures++; return; }
    }
    if (!strcmp(op, "write")) {
      r = unisock_external_write((int)id, arg, &n);
      has_n = 1;
    } else if (!strcmp(op, "read")) {
      char *m = word(&p);
      r = unisock_external_read((int)id, m ? atoll(m) : 0, &out);
    } else if (!strcmp(op, "monitor") || !strcmp(op, "unmonitor")) {
      const uint8_t *path = NULL;
      uintptr_t len = 0;
      char buf[4200];
      if (unisock_value_bytes(arg, &path, &len) != UNISOCK_RESULT_OK || len >= sizeof buf) {
        printf("{\"cmd\":\"ext\",\"error\":\"%s wants a JSON string path\"}\n", op); failures++;
        unisock_value_free(arg);
        return;
      }
      memcpy(buf, path, len);
      buf[len] = 0;
      if (!strcmp(op, "monitor")) {
        char *bits = word(&p);
        r = unisock_external_monitor_path((int)id, buf, bits ? strtoll(bits, NULL, 0) : 0, &n);
        has_n = 1;
      } else {
        r = unisock_external_stop_monitoring((int)id, buf);
      }
    } else if (!strcmp(op, "events")) {
      r = unisock_external_get_file_events((int)id, &out);
    } else if (!strcmp(op, "limits")) {
      r = unisock_external_set_resource_limits((int)id, arg);
    } else if (!strcmp(op, "stats")) {
      r = unisock_external_get_process_stats((int)id, &out);
    } else if (!strcmp(op, "spawn")) {
      r = unisock_external_spawn_process((int)id);
    } else {
      printf("{\"cmd\":\"ext\",\"error\":\"unknown OP %s\"}\n", op); failures++;
      unisock_value_free(arg);
      return;
    }
    unisock_value_free(arg);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "ext %s", op);
    if (r != UNISOCK_RESULT_OK || (!out && !has_n)) { print_result(cmd, id, r); unisock_value_free(out); return; }
    printf("{\"cmd\":");
    json_str(stdout, cmd);
    printf(",\"id\":%lld,\"result\":\"ok\",\"value\":", id);
    if (out) print_value(out); else printf("%lld", (long long)n);
    printf("}\n");
    fflush(stdout);
    unisock_value_free(out);
  } else if (!strcmp(verb, "address")) {
    char *ids = word(&p), *local = word(&p);
    id = ids ? atoll(ids) : -1;
    unisock_value *v = NULL;
    r = unisock_address((int)id, local != NULL, &v);
    if (r != UNISOCK_RESULT_OK) { print_result("address", id, r); return; }
    printf("{\"cmd\":\"address\",\"id\":%lld,\"result\":\"ok\",\"value\":", id);
    print_value(v);
    printf("}\n");
    unisock_value_free(v);
  } else if (!strcmp(verb, "wait")) {
    char *what = word(&p), *ms = word(&p), *ids = word(&p);
    if (!what) { printf("{\"cmd\":\"wait\",\"error\":\"usage: wait EVENT [TIMEOUT_MS [ID]]\"}\n"); failures++; return; }
    long long t = ms ? atoll(ms) : 5000;
    int want_id = ids ? atoi(ids) : -1;
    fflush(stdout);
    if (!run_loop(t, what, want_id)) {
      printf("{\"wait\":\"timeout\",\"event\":");
      json_str(stdout, what);
      printf(",\"ms\":%lld}\n", t);
      failures++;
    }
  } else if (!strcmp(verb, "run")) {
    run_loop(atoll(p), NULL, -1);
    printf("{\"cmd\":\"run\",\"result\":\"ok\"}\n");
  } else if (!strcmp(verb, "autoaccept")) {
    char *l = word(&p), *first = word(&p);
    if (l && autoaccept_n < 16) autoaccept_listener[autoaccept_n++] = atoi(l);
    if (first) next_auto_id = atoi(first);
    printf("{\"cmd\":\"autoaccept\",\"result\":\"ok\"}\n");
  } else if (!strcmp(verb, "autoecho")) {
    char *w = word(&p), *q = word(&p);
    if (w && !strcmp(w, "all")) echo_all = 1;
    else if (w && atoi(w) >= 0 && atoi(w) < MAX_AUTO) echo_on[atoi(w)] = 1;
    if (q && !strcmp(q, "quiet")) quiet_echo = 1;
    printf("{\"cmd\":\"autoecho\",\"result\":\"ok\"}\n");
  } else if (!strcmp(verb, "autoreply")) {
    char *w = word(&p), *vs = json_word(&p), *q = word(&p);
    unisock_value *v = vs ? json_value(vs) : NULL;
    if (!w || !v) { printf("{\"cmd\":\"autoreply\",\"error\":\"usage: autoreply ID|all JSON [quiet]\"}\n"); failures++; return; }
    if (reply_value) unisock_value_free(reply_value);
    reply_value = v;
    if (!strcmp(w, "all")) reply_all = 1;
    else if (atoi(w) >= 0 && atoi(w) < MAX_AUTO) reply_on[atoi(w)] = 1;
    if (q && !strcmp(q, "quiet")) quiet_reply = 1;
    printf("{\"cmd\":\"autoreply\",\"result\":\"ok\"}\n");
  } else if (!strcmp(verb, "policy")) {
    while (*p == ' ') p++;
    if (!*p) {
      unisock_value *v = NULL;
      r = unisock_get_policy(&v);
      if (r != UNISOCK_RESULT_OK) { print_result("policy", -1, r); return; }
      printf("{\"cmd\":\"policy\",\"value\":");
      print_value(v);
      printf("}\n");
      unisock_value_free(v);
    } else {
      const char *json = strcmp(p, "open") ? p : "{\"open\":1}";
      print_result("policy", -1, unisock_set_policy(json, strlen(json)));
    }
  } else if (!strcmp(verb, "fds")) {
    printf("{\"cmd\":\"fds\",\"value\":%d}\n", count_fds());
  } else if (!strcmp(verb, "count")) {
    size_t open = 0, flushing = 0;
    unisock_socket_count(&open, &flushing);
    printf("{\"cmd\":\"count\",\"open\":%zu,\"flushing\":%zu}\n", open, flushing);
  } else if (!strcmp(verb, "echo")) {
    while (*p == ' ') p++;
    printf("{\"echo\":");
    json_str(stdout, p);
    printf("}\n");
  } else if (!strcmp(verb, "quit")) {
    unisock_close_all();
    if (reply_value) unisock_value_free(reply_value);
    printf("{\"done\":true,\"failures\":%d}\n", failures);
    fflush(stdout);
    exit(failures ? 1 : 0);
  } else {
    printf("{\"error\":\"unknown verb\",\"verb\":");
    json_str(stdout, verb);
    printf("}\n");
    failures++;
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  FILE *in = stdin;
  if (argc > 1 && strcmp(argv[1], "-")) {
    in = fopen(argv[1], "r");
    if (!in) { perror(argv[1]); return 2; }
  }
  int32_t fd;
  if (unisock_reactor_fd(&fd) != UNISOCK_RESULT_OK) { fprintf(stderr, "no reactor\n"); return 2; }
  reactor_fd = fd;

  /* Between commands, keep the reactor running: events print as they come. */
  int in_fd = fileno(in);
  static char buf[1 << 22];
  size_t have = 0;
  int eof = 0;
  while (!eof) {
    struct pollfd p[2] = {{.fd = in_fd, .events = POLLIN}, {.fd = reactor_fd, .events = POLLIN}};
    int n = poll(p, 2, -1);
    if (n < 0) { if (errno == EINTR) continue; break; }
    if (p[1].revents & POLLIN) drain(NULL, -1);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t got = read(in_fd, buf + have, sizeof buf - 1 - have);
      if (got <= 0) { eof = 1; got = 0; }
      have += (size_t)got;
      buf[have] = 0;
      char *start = buf, *nl;
      while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
        *nl = 0;
        command(start);
        start = nl + 1;
      }
      have -= (size_t)(start - buf);
      memmove(buf, start, have);
      if (eof && have) { buf[have] = 0; command(buf); have = 0; }
      if (have == sizeof buf - 1) { printf("{\"error\":\"line too long\"}\n"); have = 0; failures++; }
    }
  }
  unisock_close_all();
  printf("{\"done\":true,\"failures\":%d}\n", failures);
  fflush(stdout);
  return failures ? 1 : 0;
}
