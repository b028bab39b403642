/*
 * ws-load: a WebSocket load client for scripts/bench-ws (epoll, one thread).
 *
 *   ws-load PORT CONNS SECONDS SIZE [WINDOW]   echo load
 *   ws-load PORT CONNS idle                     idle connections
 *
 * Echo load: opens CONNS connections to ws://127.0.0.1:PORT/ (plain opening
 * handshake, no extensions), then on each keeps WINDOW (default 1) text
 * messages of SIZE bytes in flight: every complete message read back sends
 * the next one (masked frames, as a client must send). Counts the messages
 * that came back during SECONDS after the handshakes and prints one JSON
 * line: {"conns":..,"seconds":..,"messages":..,"mps":..,"p50_us":..,
 * "p99_us":..,"errors":..} (latency: from sending a message to reading the
 * message that completes it, window 1 exact).
 *
 * Idle: opens CONNS connections (at most 256 handshakes at a time), prints
 * {"ready":N,"failed":F}, then waits for EOF on stdin, counts the
 * connections the server closed meanwhile, closes all and prints
 * {"closed":N,"dropped_by_server":D}.
 *
 * Loopback only; every wait is bounded (connects and handshakes 30 s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };

typedef struct {
  int fd, state;
  unsigned char *in;
  size_t in_len, in_cap;
  size_t out_off;       /* bytes of the pending output already written */
  int out_pending;      /* frames queued but not fully written */
  long long sent_us[64]; /* send times of the messages in flight (ring) */
  int ring_head, ring_n;
} conn_t;

static conn_t *conns;
static int nconns, epfd, port;
static unsigned char *frame;
static size_t frame_len;
static long long messages, errors, hist[200001];
static int measuring;

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char handshake[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/* A masked text frame of SIZE bytes of 'x' (the mask is fixed: the server
 * unmasks, which is the cost that counts). */
static void build_frame(size_t size) {
  static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  frame = malloc(size + 14);
  size_t h = 0;
  frame[h++] = 0x81;
  if (size < 126) frame[h++] = 0x80 | (unsigned char)size;
  else if (size < 65536) { frame[h++] = 0x80 | 126; frame[h++] = size >> 8; frame[h++] = size & 0xff; }
  else {
    frame[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) frame[h++] = (unsigned char)((uint64_t)size >> (8 * i));
  }
  memcpy(frame + h, mask, 4);
  h += 4;
  for (size_t i = 0; i < size; i++) frame[h + i] = 'x' ^ mask[i & 3];
  frame_len = h + size;
}

static void kill_conn(conn_t *c) {
  if (c->state == ST_DEAD) return;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->state = ST_DEAD;
  errors++;
}

/* Writes the queued frames (all identical); keeps EPOLLOUT while blocked. */
static void flush_out(conn_t *c) {
  while (c->out_pending > 0) {
    ssize_t n = send(c->fd, frame + c->out_off, frame_len - c->out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        return;
      }
      kill_conn(c);
      return;
    }
    c->out_off += (size_t)n;
    if (c->out_off == frame_len) { c->out_off = 0; c->out_pending--; }
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_msg(conn_t *c) {
  c->sent_us[(c->ring_head + c->ring_n) & 63] = now_us();
  c->ring_n++;
  c->out_pending++;
  if (c->out_pending == 1) flush_out(c);
}

static void send_pong(conn_t *c, const unsigned char *payload, size_t len) {
  unsigned char buf[6 + 125];
  if (len > 125 || c->out_pending) return; /* rare; the benchmark servers do not ping */
  buf[0] = 0x8a;
  buf[1] = 0x80 | (unsigned char)len;
  memset(buf + 2, 0, 4); /* mask 0: payload unchanged */
  memcpy(buf + 6, payload, len);
  if (send(c->fd, buf, 6 + len, MSG_NOSIGNAL) != (ssize_t)(6 + len)) kill_conn(c);
}

/* Parses the server's frames in c->in; returns the complete messages read. */
static int parse_frames(conn_t *c) {
  size_t off = 0;
  int done = 0;
  for (;;) {
    unsigned char *p = c->in + off;
    size_t have = c->in_len - off;
    if (have < 2) break;
    size_t h = 2;
    uint64_t len = p[1] & 0x7f;
    if (len == 126) { if (have < 4) break; len = (uint64_t)p[2] << 8 | p[3]; h = 4; }
    else if (len == 127) {
      if (have < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
      h = 10;
    }
    if (p[1] & 0x80) h += 4; /* servers do not mask; tolerate it */
    if (have < h + len) break;
    int op = p[0] & 0x0f, fin = p[0] & 0x80;
    if (op == 0x9) send_pong(c, p + h, (size_t)len);
    else if (op == 0x8) { kill_conn(c); return done; }
    else if (fin && op != 0xa) done++; /* the last frame of a message */
    off += h + (size_t)len;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
  return done;
}

static int read_in(conn_t *c) {
  for (;;) {
    if (c->in_cap - c->in_len < 65536) {
      c->in_cap = c->in_cap * 2 + 65536;
      c->in = realloc(c->in, c->in_cap);
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n > 0) { c->in_len += (size_t)n; continue; }
    if (n < 0 && errno == EAGAIN) return 0;
    return -1; /* closed or error */
  }
}

static int open_conn(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) { close(c->fd); return -1; }
  c->state = ST_CONNECTING;
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  return 0;
}

/* Drives connects and handshakes until all are open or dead (30 s bound). */
static void open_all(int max_pending) {
  int next = 0, pending = 0;
  long long deadline = now_us() + 30000000;
  struct epoll_event evs[256];
  while ((next < nconns || pending > 0) && now_us() < deadline) {
    while (next < nconns && pending < max_pending) {
      if (open_conn(&conns[next]) == 0) pending++;
      else { conns[next].state = ST_DEAD; errors++; }
      next++;
    }
    int n = epoll_wait(epfd, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || send(c->fd, handshake, sizeof handshake - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof handshake - 1)) {
          kill_conn(c); pending--; continue;
        }
        c->state = ST_HANDSHAKE;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
      } else if (c->state == ST_HANDSHAKE) {
        if (read_in(c) < 0) { kill_conn(c); pending--; continue; }
        unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) continue;
        if (c->in_len < 12 || memcmp(c->in + 9, "101", 3)) { kill_conn(c); pending--; continue; }
        size_t used = (size_t)(end + 4 - c->in);
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        c->state = ST_OPEN;
        pending--;
      }
    }
  }
  for (int i = 0; i < nconns; i++)
    if (conns[i].state == ST_CONNECTING || conns[i].state == ST_HANDSHAKE) kill_conn(&conns[i]);
}

static long long pct(double q) {
  long long total = 0, want, seen = 0;
  for (int i = 0; i <= 200000; i++) total += hist[i];
  if (!total) return -1;
  want = (long long)(q * (double)total);
  for (int i = 0; i <= 200000; i++) { seen += hist[i]; if (seen > want) return i; }
  return 200000;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: ws-load PORT CONNS SECONDS SIZE [WINDOW] | ws-load PORT CONNS idle\n");
    return 2;
  }
  port = atoi(argv[1]);
  nconns = atoi(argv[2]);
  int idle = !strcmp(argv[3], "idle");
  if (!idle && argc < 5) { fprintf(stderr, "ws-load: SIZE missing\n"); return 2; }
  conns = calloc((size_t)nconns, sizeof *conns);
  epfd = epoll_create1(0);

  if (idle) {
    open_all(256);
    int ready = 0;
    for (int i = 0; i < nconns; i++) ready += conns[i].state == ST_OPEN;
    printf("{\"ready\":%d,\"failed\":%d}\n", ready, nconns - ready);
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {}
    int dropped = 0, closed = 0;
    for (int i = 0; i < nconns; i++) {
      conn_t *c = &conns[i];
      if (c->state != ST_OPEN) continue;
      char b;
      ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) dropped++;
      close(c->fd);
      closed++;
    }
    printf("{\"closed\":%d,\"dropped_by_server\":%d}\n", closed, dropped);
    return 0;
  }

  double secs = atof(argv[3]);
  build_frame((size_t)atol(argv[4]));
  int window = argc > 5 ? atoi(argv[5]) : 1;
  if (window < 1 || window > 64) window = 1;
  open_all(nconns);
  long long start = now_us(), end = start + (long long)(secs * 1e6);
  measuring = 1;
  for (int i = 0; i < nconns; i++)
    if (conns[i].state == ST_OPEN)
      for (int w = 0; w < window; w++) send_msg(&conns[i]);
  struct epoll_event evs[256];
  long long t;
  while ((t = now_us()) < end) {
    int n = epoll_wait(epfd, evs, 256, (int)((end - t) / 1000) + 1);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->state != ST_OPEN) continue;
      if (evs[i].events & EPOLLOUT) flush_out(c);
      if (c->state != ST_OPEN || !(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      int rc = read_in(c);
      int got = parse_frames(c);
      if (c->state != ST_OPEN) continue;
      long long now = now_us();
      for (int k = 0; k < got; k++) {
        if (c->ring_n > 0) {
          long long lat = now - c->sent_us[c->ring_head];
          c->ring_head = (c->ring_head + 1) & 63;
          c->ring_n--;
          hist[lat > 200000 ? 200000 : lat]++;
        }
        if (now < end) { messages++; send_msg(c); }
      }
      if (rc < 0) kill_conn(c);
    }
  }
  double el = (double)(now_us() - start) / 1e6;
  int open = 0;
  for (int i = 0; i < nconns; i++) open += conns[i].state == ST_OPEN;
  printf("{\"conns\":%d,\"open\":%d,\"window\":%d,\"size\":%s,\"seconds\":%.3f,\"messages\":%lld,\"mps\":%.1f,"
         "\"p50_us\":%lld,\"p99_us\":%lld,\"errors\":%lld}\n",
         nconns, open, window, argv[4], el, messages, (double)messages / el, pct(0.5), pct(0.99), errors);
  return 0;
}
