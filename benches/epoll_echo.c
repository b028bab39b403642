/*
 * epoll_echo: the reference for scripts/bench-echo and scripts/bench-idle.
 * A plain single-threaded, non-blocking, edge-triggered epoll TCP echo
 * server: what a hand-written C driver loop would do, with no library.
 *
 *   epoll_echo [PORT [ADDR]]     (default 0 = any free port, 127.0.0.1)
 *
 * Prints {"port":N} once listening, then echoes every connection until
 * SIGTERM/SIGINT. Accepted sockets get TCP_NODELAY (as unisock's SO_NODELAY
 * default does). Output a client does not take at once is kept per
 * connection and sent on EPOLLOUT; reading that connection pauses meanwhile.
 * Nothing here has a timer: epoll_wait blocks with no timeout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  int fd;
  char *out;        /* bytes still to echo */
  size_t out_len, out_off, out_cap;
} conn_t;

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) { (void)sig; stop = 1; }

static char buf[65536];

static void drop(int ep, conn_t *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->out);
  free(c);
}

/* Sends pending output; 1 = all out, 0 = would block, -1 = error. */
static int flush_out(conn_t *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) { c->out_off += (size_t)n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
  }
  c->out_off = c->out_len = 0;
  return 1;
}

static int keep(conn_t *c, const char *p, size_t n) {
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap * 2 : 65536;
    while (cap < c->out_len + n) cap *= 2;
    char *q = realloc(c->out, cap);
    if (!q) return -1;
    c->out = q;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return 0;
}

/* Reads and echoes until EAGAIN; returns -1 when the connection is done. */
static int pump(conn_t *c) {
  int r = flush_out(c);
  if (r < 0) return -1;
  if (r == 0) return 0; /* still blocked: leave input in the kernel (back-pressure) */
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n == 0) return -1;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    size_t off = 0;
    while (off < (size_t)n) {
      ssize_t w = send(c->fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
      if (w > 0) { off += (size_t)w; continue; }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (keep(c, buf + off, (size_t)n - off) < 0) return -1;
        return 0; /* EPOLLOUT (edge) resumes us */
      }
      return -1;
    }
  }
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  const char *addr = argc > 2 ? argv[2] : "127.0.0.1";
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", addr); return 2; }
  if (bind(ls, (struct sockaddr *)&sin, sizeof sin) || listen(ls, 1024)) { perror("bind/listen"); return 2; }
  socklen_t sl = sizeof sin;
  getsockname(ls, (struct sockaddr *)&sin, &sl);
  printf("{\"port\":%d}\n", ntohs(sin.sin_port));
  fflush(stdout);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL = the listener */
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); break; }
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn_t *nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
          if (pump(nc) < 0) drop(ep, nc); /* data may already be there */
        }
        continue;
      }
      if ((evs[i].events & (EPOLLERR | EPOLLHUP)) || pump(c) < 0) drop(ep, c);
    }
  }
  close(ep);
  close(ls);
  return 0;
}
