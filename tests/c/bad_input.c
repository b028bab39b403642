/*
 * Every C entry point given NULL, closed ids, the wrong value kind, huge or
 * deep values, or invalid UTF-8 must answer with a result code and a message:
 * nothing aborts, nothing leaks. Run under valgrind (scripts/test-bad-input).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unisock.h"

static int passed = 0, failed = 0;

static void check(int ok, const char *what) {
  if (ok) passed++;
  else { failed++; printf("FAIL: %s\n", what); }
}

static int has_message(void) {
  char buf[512];
  size_t n = 0;
  unisock_last_error(buf, sizeof buf, &n);
  return n > 0 && strlen(buf) > 0;
}

#define EXPECT(call, code) check((call) == (code) && ((code) == UNISOCK_RESULT_OK || has_message()), #call " == " #code)

int main(void) {
  unisock_value *v = NULL, *s = NULL;
  unisock_event *ev = NULL;

  /* NULL out-pointers and arguments. */
  EXPECT(unisock_value_new_int(1, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_new_string(NULL, 3, &v), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_new_buffer(NULL, 3, &v), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_array_push(NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_mapping_set(NULL, NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_int(NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_bytes(NULL, NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_len(NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_to_json(NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_value_from_json(NULL, 2, &v), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_connect(1, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(socket_set_option(1, 12, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(socket_get_option(1, 12, NULL), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_write(1, NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_status(-1, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_next_event(NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_reactor_fd(NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(unisock_option_id(NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  check(unisock_event_get_kind(NULL) == 0, "event kind of NULL is 0");
  check(unisock_event_socket(NULL) == -1, "event socket of NULL is -1");
  check(unisock_event_data(NULL) == NULL, "event data of NULL is NULL");
  check(unisock_event_addr(NULL) == NULL, "event addr of NULL is NULL");
  check(unisock_event_abnormal(NULL) == 0, "event abnormal of NULL is 0");
  check(unisock_mode_name(-1) == NULL && unisock_mode_name(1000) == NULL, "no name for a number that is no mode");
  unisock_event_free(NULL);
  unisock_value_free(NULL);
  unisock_string_free(NULL);
  check(unisock_value_get_kind(NULL) == UNISOCK_VALUE_KIND_UNDEFINED, "kind of NULL");

  /* Closed or never-opened ids. */
  EXPECT(unisock_value_new_int(5, &v), UNISOCK_RESULT_OK);
  EXPECT(socket_set_option(42, 12, v), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_write(42, v, NULL), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_close(42), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_listen(42), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_accept(42, 43), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_bind(42, 0, NULL), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_release(42), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_create(-3, 1), UNISOCK_RESULT_EE_FDRANGE);
  EXPECT(unisock_create(1, 99), UNISOCK_RESULT_EE_MODENOTSUPP);
  EXPECT(unisock_create(1, -1), UNISOCK_RESULT_EE_MODENOTSUPP);
  EXPECT(unisock_create(1, 1), UNISOCK_RESULT_OK);
  EXPECT(unisock_create(1, 1), UNISOCK_RESULT_EE_ISCONN);
  EXPECT(unisock_close(1), UNISOCK_RESULT_OK);
  EXPECT(unisock_close(1), UNISOCK_RESULT_EE_BADF);
  EXPECT(unisock_adopt_fd(5, -1, 1), UNISOCK_RESULT_EE_BADF);

  /* Wrong kinds. */
  double d;
  const uint8_t *p;
  size_t n;
  EXPECT(unisock_value_real(v, &d), UNISOCK_RESULT_WRONG_VALUE_KIND);
  EXPECT(unisock_value_bytes(v, &p, &n), UNISOCK_RESULT_WRONG_VALUE_KIND);
  EXPECT(unisock_value_len(v, &n), UNISOCK_RESULT_WRONG_VALUE_KIND);
  EXPECT(unisock_value_new_int(1, &s), UNISOCK_RESULT_OK);
  EXPECT(unisock_value_array_push(v, s), UNISOCK_RESULT_WRONG_VALUE_KIND); /* s consumed */
  EXPECT(unisock_create(2, 1), UNISOCK_RESULT_OK);
  EXPECT(unisock_value_new_string("x", 1, &s), UNISOCK_RESULT_OK);
  EXPECT(socket_set_option(2, 12, s), UNISOCK_RESULT_BAD_OPTION_VALUE);
  EXPECT(socket_set_option(2, 777, s), UNISOCK_RESULT_UNKNOWN_OPTION);
  EXPECT(socket_set_option(2, 0, v), UNISOCK_RESULT_UNKNOWN_OPTION);
  EXPECT(socket_set_option(2, 104, v), UNISOCK_RESULT_OPTION_NOT_FOR_MODE);
  EXPECT(socket_set_option(2, 18, v), UNISOCK_RESULT_OPTION_READ_ONLY);
  EXPECT(unisock_write(2, s, NULL), UNISOCK_RESULT_EE_NOTCONN);
  EXPECT(socket_set_option_int(2, 13, 12), UNISOCK_RESULT_BAD_OPTION_VALUE);
  EXPECT(socket_set_option_int(2, 13, 4096), UNISOCK_RESULT_OK);
  int64_t got = 0;
  EXPECT(socket_get_option_int(2, 13, &got), UNISOCK_RESULT_OK);
  check(got == 4096, "typed get reads the typed set");
  EXPECT(socket_get_option_int(2, 13, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  EXPECT(socket_get_option_int(2, 777, &got), UNISOCK_RESULT_UNKNOWN_OPTION);
  EXPECT(socket_set_option_int(42, 13, 4096), UNISOCK_RESULT_EE_BADF);
  unisock_value_free(s);

  /* Invalid UTF-8. */
  const char bad[] = {'a', (char)0xff, 'b', 0};
  EXPECT(unisock_value_new_string(bad, 3, &s), UNISOCK_RESULT_INVALID_UTF8);
  EXPECT(unisock_connect(2, bad), UNISOCK_RESULT_INVALID_UTF8);
  EXPECT(unisock_bind(2, 0, bad), UNISOCK_RESULT_INVALID_UTF8);
  EXPECT(unisock_http_encode_url(bad, 3, &s), UNISOCK_RESULT_INVALID_UTF8);
  EXPECT(unisock_value_from_json("{bad", 4, &s), UNISOCK_RESULT_PARSE);
  EXPECT(unisock_http_decode_url("%zz", 3, &s), UNISOCK_RESULT_PARSE);

  /* A large mapping built with push is linear (set would be quadratic). */
  unisock_value *big_map = NULL;
  EXPECT(unisock_value_new_mapping(&big_map), UNISOCK_RESULT_OK);
  for (int i = 0; i < 200000; i++) {
    unisock_value *k = NULL, *x = NULL;
    unisock_value_new_int(i, &k);
    unisock_value_new_int(i, &x);
    if (unisock_value_mapping_push(big_map, k, x) != UNISOCK_RESULT_OK) { check(0, "mapping_push"); break; }
  }
  size_t big_len = 0;
  unisock_value_len(big_map, &big_len);
  check(big_len == 200000, "mapping_push kept every pair");
  EXPECT(unisock_value_mapping_push(v, NULL, NULL), UNISOCK_RESULT_NULL_PARAMETER);
  unisock_value_free(big_map);

  /* Huge and deep values. */
  unisock_value *arr = NULL;
  EXPECT(unisock_value_new_array(&arr), UNISOCK_RESULT_OK);
  for (int i = 0; i < 100000; i++) {
    unisock_value *x = NULL;
    unisock_value_new_int(i, &x);
    unisock_value_array_push(arr, x);
  }
  EXPECT(socket_set_option(2, 11, arr), UNISOCK_RESULT_BAD_OPTION_VALUE);
  unisock_value_free(arr);
  unisock_value *deep = NULL;
  unisock_value_new_int(0, &deep);
  int refused = 0;
  for (int i = 0; i < 1000 && deep; i++) {
    unisock_value *outer = NULL;
    unisock_value_new_array(&outer);
    unisock_result r = unisock_value_array_push(outer, deep); /* consumes deep */
    deep = outer;
    if (r == UNISOCK_RESULT_TOO_LARGE) { refused = 1; break; }
  }
  check(refused, "nesting beyond the limit is refused");
  unisock_value_free(deep);
  unisock_value *big = NULL;
  char *huge = malloc(8 << 20);
  memset(huge, 'a', 8 << 20);
  EXPECT(unisock_value_new_string(huge, 8 << 20, &big), UNISOCK_RESULT_OK);
  EXPECT(socket_set_option(2, 2, big), UNISOCK_RESULT_OPTION_NOT_FOR_MODE);
  EXPECT(unisock_value_new_int(1, &s), UNISOCK_RESULT_OK);
  EXPECT(socket_set_option(2, 13, s), UNISOCK_RESULT_BAD_OPTION_VALUE); /* below 1024 */
  unisock_value_free(s);
  free(huge);
  unisock_value_free(big);

  /* The IPC wire format: NULLs, nothing yet, garbage, too deep, too large. */
  {
    unisock_value *m = NULL, *enc = NULL;
    size_t used = 99;
    const uint8_t ok_msg[] = {0x81, 0xa4, 'd', 'a', 't', 'a', 0x81, 0xa1, 'a', 0x01}; /* {"data":{"a":1}} */
    EXPECT(unisock_ipc_decode(ok_msg, sizeof ok_msg, "bus", NULL, &used), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_ipc_decode(ok_msg, sizeof ok_msg, "bus", &m, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_ipc_decode(NULL, 3, "bus", &m, &used), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_ipc_decode(ok_msg, sizeof ok_msg, NULL, &m, &used), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_ipc_decode(ok_msg, sizeof ok_msg, bad, &m, &used), UNISOCK_RESULT_INVALID_UTF8);
    check(m == NULL && used == 99, "a refused ipc_decode writes nothing");
    EXPECT(unisock_ipc_decode(NULL, 0, "bus", &m, &used), UNISOCK_RESULT_OK);
    check(m == NULL && used == 0, "ipc_decode of nothing: no message yet");
    EXPECT(unisock_ipc_decode(ok_msg, 5, "bus", &m, &used), UNISOCK_RESULT_OK);
    check(m == NULL && used == 0, "ipc_decode of a truncated message: no message yet");
    const uint8_t reserved[] = {0xc1}, ext[] = {0xd4, 1, 2}, not_map[] = {0x01};
    const uint8_t data_int[] = {0x81, 0xa4, 'd', 'a', 't', 'a', 0x01};
    const uint8_t bad_type[] = {0x81, 0xac, 'm', 'e', 's', 's', 'a', 'g', 'e', '_', 't', 'y', 'p', 'e', 0xa1, 'x'};
    EXPECT(unisock_ipc_decode(reserved, sizeof reserved, "bus", &m, &used), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_ipc_decode(ext, sizeof ext, "bus", &m, &used), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_ipc_decode(not_map, sizeof not_map, "bus", &m, &used), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_ipc_decode(data_int, sizeof data_int, "bus", &m, &used), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_ipc_decode(bad_type, sizeof bad_type, "bus", &m, &used), UNISOCK_RESULT_PARSE);
    uint8_t deep_msg[200];
    size_t dn = 0;
    memcpy(deep_msg, "\x81\xa4" "data", 6); dn = 6;
    for (int i = 0; i < 100; i++) deep_msg[dn++] = 0x91; /* [[[...]]] */
    deep_msg[dn++] = 0xc0;
    EXPECT(unisock_ipc_decode(deep_msg, dn, "bus", &m, &used), UNISOCK_RESULT_PARSE);
    size_t big_n = (1 << 20) + 64;
    uint8_t *big_msg = calloc(1, big_n);
    memcpy(big_msg, "\x81\xa4" "data" "\x81\xa1" "b" "\xc6\x00\x20\x00\x00", 14); /* bin32 of 2 MiB, cut */
    EXPECT(unisock_ipc_decode(big_msg, big_n, "bus", &m, &used), UNISOCK_RESULT_TOO_LARGE);
    /* the length prefix alone is past the limit */
    EXPECT(unisock_ipc_decode(big_msg, 1000, "bus", &m, &used), UNISOCK_RESULT_TOO_LARGE);
    big_msg[11] = 0x08; /* bin32 of 512 KiB: under the limit, cut */
    EXPECT(unisock_ipc_decode(big_msg, 1000, "bus", &m, &used), UNISOCK_RESULT_OK);
    check(m == NULL && used == 0, "ipc_decode of a large message's beginning: no message yet");
    free(big_msg);
    check(m == NULL && used == 0, "a refused ipc_decode writes nothing");
    EXPECT(unisock_ipc_decode(ok_msg, sizeof ok_msg, "bus", &m, &used), UNISOCK_RESULT_OK);
    check(m != NULL && used == sizeof ok_msg && unisock_value_get_kind(m) == UNISOCK_VALUE_KIND_MAPPING,
          "ipc_decode of a whole message");
    size_t keys = 0;
    unisock_value_len(m, &keys);
    check(keys == 5, "ipc_decode fills in the five keys");

    EXPECT(unisock_ipc_encode("bus", m, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_ipc_encode("bus", NULL, &enc), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_ipc_encode(NULL, m, &enc), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_ipc_encode(bad, m, &enc), UNISOCK_RESULT_INVALID_UTF8);
    EXPECT(unisock_ipc_encode("bus", v, &enc), UNISOCK_RESULT_EE_BADDATA); /* an int */
    unisock_value *empty = NULL;
    unisock_value_new_mapping(&empty);
    EXPECT(unisock_ipc_encode("bus", empty, &enc), UNISOCK_RESULT_EE_BADDATA); /* no "data" */
    unisock_value_free(empty);
    check(enc == NULL, "a refused ipc_encode writes nothing");
    EXPECT(unisock_ipc_encode("bus", m, &enc), UNISOCK_RESULT_OK);
    check(unisock_value_get_kind(enc) == UNISOCK_VALUE_KIND_BUFFER, "ipc_encode gives a buffer");
    unisock_value_free(m);
    m = NULL;
    const uint8_t *ep = NULL;
    size_t en = 0;
    EXPECT(unisock_value_bytes(enc, &ep, &en), UNISOCK_RESULT_OK);
    EXPECT(unisock_ipc_decode(ep, en, "bus", &m, &used), UNISOCK_RESULT_OK);
    check(m != NULL && used == en, "ipc_encode's bytes decode back");
    unisock_value_free(m);
    unisock_value_free(enc);
  }

  /* The admin's policy: NULLs, bad UTF-8, bad JSON; the default refuses mode 22. */
  {
    unisock_value *pol = NULL;
    EXPECT(unisock_set_policy(NULL, 3), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_set_policy(bad, 3), UNISOCK_RESULT_INVALID_UTF8);
    EXPECT(unisock_set_policy("{", 1), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_set_policy("{\"nope\":1}", 10), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_set_policy("{\"commands\":[\"rel\"]}", 21), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_get_policy(NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_create(41, 22), UNISOCK_RESULT_EE_SECURITY);
    EXPECT(unisock_set_policy("{\"open\":1}", 10), UNISOCK_RESULT_OK);
    EXPECT(unisock_get_policy(&pol), UNISOCK_RESULT_OK);
    check(pol && unisock_value_get_kind(pol) == UNISOCK_VALUE_KIND_MAPPING, "get_policy: a mapping");
    unisock_value_free(pol);
  }

  /* The policy's path resolution: NULLs, bad UTF-8, no path (empty, a NUL byte); a path
     that does not resolve is where it would be. */
  {
    unisock_value *p = NULL;
    const uint8_t *pb = NULL;
    size_t pn = 0;
    EXPECT(unisock_resolve_path(NULL, 4, 0, &p), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_resolve_path("/tmp", 4, 0, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_resolve_path(bad, 3, 0, &p), UNISOCK_RESULT_INVALID_UTF8);
    EXPECT(unisock_resolve_path("/tmp\0/x", 6, 1, &p), UNISOCK_RESULT_PARSE);
    EXPECT(unisock_resolve_path(NULL, 0, 0, &p), UNISOCK_RESULT_PARSE);
    check(p == NULL, "resolve_path: *out untouched on failure");
    EXPECT(unisock_resolve_path("/tmp/..", 7, 1, &p), UNISOCK_RESULT_OK);
    check(p && unisock_value_bytes(p, &pb, &pn) == UNISOCK_RESULT_OK && pn == 1 && pb[0] == '/',
          "resolve_path: /tmp/.. is /");
    unisock_value_free(p);
    p = NULL;
    EXPECT(unisock_resolve_path("/no/such/../dir/x", 17, 0, &p), UNISOCK_RESULT_OK);
    check(p && unisock_value_bytes(p, &pb, &pn) == UNISOCK_RESULT_OK && pn == 9 &&
              memcmp(pb, "/no/dir/x", 9) == 0,
          "resolve_path: what does not resolve, lexically");
    unisock_value_free(p);
  }

  /* The external_* efuns: NULLs, bad UTF-8, unknown ids, the wrong mode, bad bits. */
  {
    int64_t n = -1;
    unisock_value *out = NULL, *str = NULL;
    EXPECT(unisock_value_new_string("x", 1, &str), UNISOCK_RESULT_OK);
    EXPECT(unisock_external_write(2, NULL, &n), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_write(2, str, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_write(77, str, &n), UNISOCK_RESULT_EE_BADF);
    EXPECT(unisock_external_write(2, str, &n), UNISOCK_RESULT_EE_MODENOTSUPP); /* socket 2: not external */
    check(n == -1, "a refused external_write writes nothing");
    EXPECT(unisock_external_read(2, 0, NULL), UNISOCK_RESULT_EE_MODENOTSUPP);
    EXPECT(unisock_create(40, 22), UNISOCK_RESULT_OK);
    EXPECT(unisock_external_read(40, -5, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_read(40, -5, &out), UNISOCK_RESULT_OK);
    check(out && unisock_value_get_kind(out) == UNISOCK_VALUE_KIND_INT, "external_read: 0 when nothing is held");
    unisock_value_free(out);
    out = NULL;
    EXPECT(unisock_external_monitor_path(40, NULL, 0, &n), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_monitor_path(40, "/tmp", 0, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_monitor_path(40, bad, 0, &n), UNISOCK_RESULT_INVALID_UTF8);
    EXPECT(unisock_external_monitor_path(40, "/tmp", 0x100, &n), UNISOCK_RESULT_EE_BADDATA);
    EXPECT(unisock_external_monitor_path(40, "/tmp", -1, &n), UNISOCK_RESULT_EE_BADDATA);
    EXPECT(unisock_external_stop_monitoring(40, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_stop_monitoring(40, bad), UNISOCK_RESULT_INVALID_UTF8);
    EXPECT(unisock_external_stop_monitoring(40, "/not/watched"), UNISOCK_RESULT_EE_BADDATA);
    EXPECT(unisock_external_get_file_events(40, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_get_file_events(40, &out), UNISOCK_RESULT_OK);
    check(out && unisock_value_get_kind(out) == UNISOCK_VALUE_KIND_ARRAY, "external_get_file_events: an array");
    unisock_value_free(out);
    out = NULL;
    EXPECT(unisock_external_set_resource_limits(40, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_set_resource_limits(40, str), UNISOCK_RESULT_EE_BADDATA); /* not a mapping */
    EXPECT(unisock_external_get_process_stats(40, NULL), UNISOCK_RESULT_NULL_PARAMETER);
    EXPECT(unisock_external_get_process_stats(40, &out), UNISOCK_RESULT_OK);
    check(out && unisock_value_get_kind(out) == UNISOCK_VALUE_KIND_MAPPING, "external_get_process_stats: a mapping");
    unisock_value_free(out);
    EXPECT(unisock_external_spawn_process(40), UNISOCK_RESULT_EE_NOADDR); /* no EXTERNAL_COMMAND */
    EXPECT(unisock_external_spawn_process(77), UNISOCK_RESULT_EE_BADF);
    EXPECT(unisock_close(40), UNISOCK_RESULT_OK);
    unisock_value_free(str);
  }

  /* Messages: truncation and unknown codes. */
  char small[8];
  size_t full = 0;
  EXPECT(unisock_value_new_string(bad, 3, &s), UNISOCK_RESULT_INVALID_UTF8);
  check(unisock_last_error(small, sizeof small, &full) == UNISOCK_RESULT_BUFFER_TOO_SMALL && strlen(small) == 7 && full > 7,
        "last_error truncates and reports the full length");
  char text[64];
  unisock_result_text(123456, text, sizeof text, NULL);
  check(strcmp(text, "unknown result code") == 0, "unknown code text");
  check(unisock_result_ee(UNISOCK_RESULT_EE_CALLBACK) == -29, "EE mapping");
  check(unisock_result_ee(UNISOCK_RESULT_OK) == 1, "EESUCCESS");

  /* Events: none pending is OK with NULL out. */
  EXPECT(unisock_dispatch(NULL), UNISOCK_RESULT_OK);
  EXPECT(unisock_next_event(&ev), UNISOCK_RESULT_OK);
  check(ev == NULL, "no event");

  EXPECT(unisock_close(2), UNISOCK_RESULT_OK);
  unisock_value_free(v);
  EXPECT(unisock_close_all(), UNISOCK_RESULT_OK);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
