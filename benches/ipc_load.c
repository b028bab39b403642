/*
 * ipc_load: the load client of scripts/bench-ipc, for any server speaking the
 * IPC bus's wire format (a stream of MessagePack maps) on a Unix socket.
 *
 *   ipc_load flood PATH CLIENTS COUNT TIMEOUT_S
 *     Connects CLIENTS clients, prints {"ready":CLIENTS}, then reads until
 *     every client has COUNT whole messages. Prints one JSON line: messages
 *     received (all clients), bytes, and the time from the first byte any
 *     client got to the last message: msgs_per_s = messages / that time.
 *   ipc_load ping PATH ROUNDS WARMUP TIMEOUT_S
 *     One client sends a bus message whose data is {"seq": "<8 digits>"}
 *     and waits for one whole message back that carries the same seq;
 *     WARMUP rounds, then ROUNDS timed ones. Prints p50/p99/mean/max µs.
 *
 * Messages are counted by walking the MessagePack structure (a value's
 * length, without building it), so the client costs far less per message
 * than the servers it measures; a malformed stream is an error (exit 1).
 * CONTROL messages (message_type "control", such as a server's greeting on
 * connect) are counted apart and otherwise ignored.
 * Single-threaded, poll(2); every wait is bounded by TIMEOUT_S.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "ipc_load: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int connect_unix(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) { errno = ENAMETOOLONG; die(path); }
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die(path);
  return fd;
}

static uint64_t be(const uint8_t *p, int n) {
  uint64_t x = 0;
  for (int i = 0; i < n; i++) x = x << 8 | p[i];
  return x;
}

/* Length of the first MessagePack value in b[0..n): > 0 when whole, 0 when
 * more bytes are needed, -1 when malformed. Iterative: `pending` counts the
 * values still to skip (a container adds its items). */
static long value_len(const uint8_t *b, size_t n) {
  size_t i = 0;
  uint64_t pending = 1;
  while (pending) {
    if (i >= n) return 0;
    uint8_t m = b[i++];
    uint64_t skip = 0, items = 0;
    int len_bytes = 0;
    pending--;
    if (m <= 0x7f || m >= 0xe0 || (m >= 0xc0 && m <= 0xc3 && m != 0xc1)) {
    } else if (m >= 0x80 && m <= 0x8f) items = 2 * (uint64_t)(m & 0x0f);
    else if (m >= 0x90 && m <= 0x9f) items = m & 0x0f;
    else if (m >= 0xa0 && m <= 0xbf) skip = m & 0x1f;
    else switch (m) {
      case 0xc4: case 0xd9: len_bytes = 1; break;
      case 0xc5: case 0xda: len_bytes = 2; break;
      case 0xc6: case 0xdb: len_bytes = 4; break;
      case 0xc7: len_bytes = 1; skip = 1; break; /* ext: + type byte */
      case 0xc8: len_bytes = 2; skip = 1; break;
      case 0xc9: len_bytes = 4; skip = 1; break;
      case 0xca: skip = 4; break;
      case 0xcb: skip = 8; break;
      case 0xcc: case 0xd0: skip = 1; break;
      case 0xcd: case 0xd1: skip = 2; break;
      case 0xce: case 0xd2: skip = 4; break;
      case 0xcf: case 0xd3: skip = 8; break;
      case 0xd4: skip = 2; break;
      case 0xd5: skip = 3; break;
      case 0xd6: skip = 5; break;
      case 0xd7: skip = 9; break;
      case 0xd8: skip = 17; break;
      case 0xdc: case 0xdd: {
        int k = m == 0xdc ? 2 : 4;
        if (n - i < (size_t)k) return 0;
        items = be(b + i, k);
        i += k;
        break;
      }
      case 0xde: case 0xdf: {
        int k = m == 0xde ? 2 : 4;
        if (n - i < (size_t)k) return 0;
        items = 2 * be(b + i, k);
        i += k;
        break;
      }
      default: return -1; /* 0xc1 */
    }
    if (len_bytes) {
      if (n - i < (size_t)len_bytes) return 0;
      skip += be(b + i, len_bytes);
      i += len_bytes;
    }
    if (skip > n - i) return 0;
    i += skip;
    pending += items;
  }
  return (long)i;
}

typedef struct {
  int fd;
  uint8_t *buf;
  size_t have, cap;
  long long msgs, control, bytes;
} client_t;

static int is_control(const uint8_t *m, size_t n) {
  static const char key[] = "\xac" "message_type" "\xa7" "control";
  return memmem(m, n, key, sizeof key - 1) != NULL;
}

/* Reads what is there; counts whole messages; 0 at EOF, -1 on a bad stream. */
static int pump(client_t *c, const uint8_t **last, size_t *last_len) {
  for (;;) {
    if (c->cap - c->have < 65536) {
      c->cap = c->cap * 2 + 65536;
      c->buf = realloc(c->buf, c->cap);
      if (!c->buf) die("realloc");
    }
    size_t space = c->cap - c->have;
    ssize_t got = recv(c->fd, c->buf + c->have, space, MSG_DONTWAIT);
    if (got == 0) return 0;
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      die("recv");
    }
    c->have += (size_t)got;
    c->bytes += got;
    if ((size_t)got < space) break; /* the kernel had no more */
  }
  size_t off = 0;
  for (;;) {
    long n = value_len(c->buf + off, c->have - off);
    if (n < 0) { fprintf(stderr, "ipc_load: malformed MessagePack from the server\n"); return -1; }
    if (n == 0) break;
    if (is_control(c->buf + off, (size_t)n)) {
      c->control++;
      off += (size_t)n;
      continue;
    }
    if (last) { *last = c->buf + off; *last_len = (size_t)n; }
    off += (size_t)n;
    c->msgs++;
  }
  if (last && *last) { /* the caller looks at the last message: keep it in place */
    return 1;
  }
  memmove(c->buf, c->buf + off, c->have - off);
  c->have -= off;
  return 1;
}

static int flood(const char *path, int nclients, long long count, double timeout) {
  client_t *cs = calloc((size_t)nclients, sizeof *cs);
  struct pollfd *pf = calloc((size_t)nclients, sizeof *pf);
  for (int i = 0; i < nclients; i++) {
    cs[i].fd = connect_unix(path);
    pf[i].fd = cs[i].fd;
    pf[i].events = POLLIN;
  }
  printf("{\"ready\":%d}\n", nclients);
  fflush(stdout);
  double start = now_s(), first = 0, last = 0;
  int done = 0;
  while (done < nclients) {
    double left = start + timeout - now_s();
    if (left <= 0) break;
    int n = poll(pf, (nfds_t)nclients, (int)(left * 1000) + 1);
    if (n < 0 && errno != EINTR) die("poll");
    for (int i = 0; i < nclients && n > 0; i++) {
      if (!pf[i].revents) continue;
      double t = now_s();
      long long had = cs[i].msgs;
      int r = pump(&cs[i], NULL, NULL);
      if (r < 0) return 1;
      if (first == 0 && cs[i].msgs > had) first = t;
      if (cs[i].msgs >= count || r == 0) {
        if (cs[i].msgs >= count) last = now_s();
        pf[i].fd = -pf[i].fd - 1; /* done with it (or EOF): poll ignores it */
        done++;
      }
    }
  }
  long long msgs = 0, control = 0, bytes = 0, short_clients = 0;
  for (int i = 0; i < nclients; i++) {
    msgs += cs[i].msgs;
    control += cs[i].control;
    bytes += cs[i].bytes;
    if (cs[i].msgs < count) short_clients++;
    close(cs[i].fd);
    free(cs[i].buf);
  }
  double secs = last > first ? last - first : 0;
  printf("{\"clients\":%d,\"count\":%lld,\"messages\":%lld,\"control\":%lld,\"bytes\":%lld,"
         "\"secs\":%.6f,\"msgs_per_s\":%.1f,\"clients_short\":%lld}\n",
         nclients, count, msgs, control, bytes, secs, secs > 0 ? msgs / secs : 0.0, short_clients);
  free(cs);
  free(pf);
  return short_clients ? 1 : 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* A bus message as a client of the seeds' module sends it; data {"seq": s}. */
static size_t ping_message(uint8_t *out, unsigned seq) {
  uint8_t *p = out;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  char iso[40];
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t k = strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(iso + k, sizeof iso - k, ".%03d+00:00", (int)(ts.tv_nsec / 1000000));
#define STR(s) do { size_t l_ = strlen(s); *p++ = (uint8_t)(0xa0 | l_); memcpy(p, s, l_); p += l_; } while (0)
  *p++ = 0x85;
  STR("event_name"); STR("bench");
  STR("timestamp_ms");
  *p++ = 0xcf;
  for (int i = 7; i >= 0; i--) *p++ = (uint8_t)(ms >> (8 * i));
  STR("timestamp_iso"); STR(iso);
  STR("message_type"); STR("data");
  STR("data");
  *p++ = 0x81;
  STR("seq");
  char s[16];
  snprintf(s, sizeof s, "%08u", seq);
  STR(s);
#undef STR
  return (size_t)(p - out);
}

static int ping(const char *path, int rounds, int warmup, double timeout) {
  client_t c = {.fd = connect_unix(path)};
  double *rtt = calloc((size_t)rounds, sizeof *rtt);
  double start = now_s();
  for (int r = 0; r < warmup + rounds; r++) {
    uint8_t msg[256];
    size_t n = ping_message(msg, (unsigned)r);
    char want[16];
    want[0] = (char)0xa3; memcpy(want + 1, "seq", 3); want[4] = (char)0xa8;
    snprintf(want + 5, sizeof want - 5, "%08u", (unsigned)r);
    double t0 = now_s();
    if (send(c.fd, msg, n, MSG_NOSIGNAL) != (ssize_t)n) die("send");
    long long had = c.msgs;
    const uint8_t *last = NULL;
    size_t last_len = 0;
    while (c.msgs == had) {
      double left = start + timeout - now_s();
      if (left <= 0) { fprintf(stderr, "ipc_load: no reply to round %d\n", r); return 1; }
      struct pollfd pf = {.fd = c.fd, .events = POLLIN};
      if (poll(&pf, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR) die("poll");
      int k = pump(&c, &last, &last_len);
      if (k <= 0) { fprintf(stderr, "ipc_load: the server closed (round %d)\n", r); return 1; }
    }
    double t1 = now_s();
    if (c.msgs != had + 1 || !memmem(last, last_len, want, 13)) {
      fprintf(stderr, "ipc_load: round %d: %lld messages back, or not the one sent; the last:\n  ", r,
              c.msgs - had);
      for (size_t i = 0; last && i < last_len && i < 400; i++)
        fprintf(stderr, last[i] >= 0x20 && last[i] < 0x7f ? "%c" : "\\x%02x", last[i]);
      fprintf(stderr, "\n");
      return 1;
    }
    c.have = 0; /* exactly one whole message was there */
    if (r >= warmup) rtt[r - warmup] = (t1 - t0) * 1e6;
  }
  qsort(rtt, (size_t)rounds, sizeof *rtt, cmp_double);
  double sum = 0;
  for (int i = 0; i < rounds; i++) sum += rtt[i];
  printf("{\"rounds\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"max_us\":%.1f}\n", rounds,
         rtt[rounds / 2], rtt[(int)(rounds * 0.99)], sum / rounds, rtt[rounds - 1]);
  close(c.fd);
  free(c.buf);
  free(rtt);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "flood"))
    return flood(argv[2], atoi(argv[3]), atoll(argv[4]), atof(argv[5]));
  if (argc == 6 && !strcmp(argv[1], "ping"))
    return ping(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
  fprintf(stderr, "usage: ipc_load flood PATH CLIENTS COUNT TIMEOUT_S\n"
                  "       ipc_load ping PATH ROUNDS WARMUP TIMEOUT_S\n");
  return 2;
}
