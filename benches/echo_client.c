/*
 * echo_client: the load generator of scripts/bench-echo (and the idle
 * connection holder of scripts/bench-idle). Single-threaded, epoll.
 *
 *   echo_client PORT CONNS SECONDS [MSG_BYTES]          load mode
 *   echo_client PORT CONNS idle                          idle mode
 *
 * Load mode: opens CONNS connections to 127.0.0.1:PORT; each sends one
 * MSG_BYTES (default 4096) message of printable ASCII and waits for the whole
 * echo (checked byte for byte) before sending the next. One warm-up round
 * trip per connection is not counted; then it runs for SECONDS and prints one
 * JSON line: round trips, round trips/s, MB/s (echoed payload, one
 * direction, 10^6 bytes), and round-trip latency percentiles.
 *
 * Idle mode: opens CONNS connections, prints {"idle":CONNS} once all are
 * established, then sends nothing and blocks until stdin reaches EOF or
 * SIGTERM, then closes them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  size_t sent, got;
  double started; /* when the current message's first byte went out */
  int warm;       /* warm-up round trip done */
  int wout;       /* EPOLLOUT is being watched (a send was partial) */
} conn_t;

static char *msg;
static size_t msg_len = 4096;
static char rbuf[65536];

/* Latency histogram: 1 µs buckets up to 100 ms, then one overflow bucket. */
#define BUCKETS 100001
static uint32_t hist[BUCKETS + 1];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what) {
  fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int open_conn(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin)) fail("connect");
  return fd;
}

static double percentile(uint64_t total, double p) {
  uint64_t want = (uint64_t)(p * (double)total), seen = 0;
  for (int i = 0; i <= BUCKETS; i++) {
    seen += hist[i];
    if (seen > want) return (double)i; /* µs */
  }
  return (double)BUCKETS;
}

static int ep = -1;

/* Sends what is left of the message (watching EPOLLOUT while some is left);
 * returns -1 on error. */
static int push(conn_t *c, uint32_t idx) {
  while (c->sent < msg_len) {
    ssize_t n = send(c->fd, msg + c->sent, msg_len - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) { c->sent += (size_t)n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return -1;
  }
  int partial = c->sent < msg_len;
  if (partial != c->wout) {
    c->wout = partial;
    struct epoll_event ev = {.events = EPOLLIN | (partial ? EPOLLOUT : 0), .data.u32 = idx};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: echo_client PORT CONNS SECONDS|idle [MSG_BYTES]\n");
    return 2;
  }
  int port = atoi(argv[1]), nconn = atoi(argv[2]);
  int idle = !strcmp(argv[3], "idle");
  double seconds = idle ? 0 : atof(argv[3]);
  if (argc > 4) msg_len = (size_t)atol(argv[4]);
  if (nconn < 1 || port <= 0 || msg_len < 1) { fprintf(stderr, "echo_client: bad arguments\n"); return 2; }
  signal(SIGPIPE, SIG_IGN);

  conn_t *cs = calloc((size_t)nconn, sizeof *cs);
  for (int i = 0; i < nconn; i++) cs[i].fd = open_conn(port); /* blocking connect: loopback is immediate */

  if (idle) {
    printf("{\"idle\":%d}\n", nconn);
    fflush(stdout);
    /* Wait for EOF on stdin (or SIGTERM, whose default action ends us). */
    char b[256];
    while (read(0, b, sizeof b) > 0) {}
    for (int i = 0; i < nconn; i++) close(cs[i].fd);
    return 0;
  }

  msg = malloc(msg_len);
  for (size_t i = 0; i < msg_len; i++) msg[i] = (char)('a' + (i * 7 + i / 26) % 26);

  ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < nconn; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  /* Kick every connection off. */
  double t = now_s();
  for (int i = 0; i < nconn; i++) {
    cs[i].started = t;
    if (push(&cs[i], (uint32_t)i) < 0) fail("send");
  }
  int warm_left = nconn;
  double t_start = 0, t_end = 0;
  uint64_t rts = 0, bytes = 0;
  int measuring = 0;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 1000);
    if (n < 0) { if (errno == EINTR) continue; fail("epoll_wait"); }
    if (n == 0) { fprintf(stderr, "echo_client: no echo for 1 s; server stalled?\n"); return 3; }
    double now = now_s();
    if (measuring && now >= t_end) break;
    for (int k = 0; k < n; k++) {
      uint32_t idx = evs[k].data.u32;
      conn_t *c = &cs[idx];
      if (c->sent < msg_len && push(c, idx) < 0) fail("send");
      for (;;) {
        size_t want = msg_len - c->got;
        ssize_t r = recv(c->fd, rbuf, want < sizeof rbuf ? want : sizeof rbuf, MSG_DONTWAIT);
        if (r == 0) { fprintf(stderr, "echo_client: server closed a connection\n"); return 3; }
        if (r < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          fail("recv");
        }
        if (memcmp(rbuf, msg + c->got, (size_t)r)) { fprintf(stderr, "echo_client: echo differs\n"); return 3; }
        c->got += (size_t)r;
        if (c->got < msg_len) continue;
        /* One round trip done. */
        if (!c->warm) {
          c->warm = 1;
          if (--warm_left == 0) { measuring = 1; t_start = now; t_end = now + seconds; }
        } else if (measuring) {
          double us = (now - c->started) * 1e6;
          hist[us < BUCKETS ? (int)us : BUCKETS]++;
          rts++;
          bytes += msg_len;
        }
        c->got = c->sent = 0;
        c->started = now;
        if (push(c, idx) < 0) fail("send");
      }
    }
  }
  double el = now_s() - t_start;
  printf("{\"conns\":%d,\"msg_bytes\":%zu,\"seconds\":%.3f,\"round_trips\":%llu,\"rt_per_s\":%.0f,"
         "\"mb_per_s\":%.2f,\"p50_us\":%.0f,\"p99_us\":%.0f}\n",
         nconn, msg_len, el, (unsigned long long)rts, rts / el, bytes / el / 1e6,
         percentile(rts, 0.50), percentile(rts, 0.99));
  for (int i = 0; i < nconn; i++) close(cs[i].fd);
  return 0;
}
