/*
 * spawn_true: the reference for scripts/bench-external's spawn round trip.
 *
 *   spawn_true N COMMAND null|pipes
 *
 * Starts COMMAND (an absolute path, no arguments) N times, one after the
 * other, with posix_spawn and waits for each with waitpid, doing what
 * unisock asks of the child too: its own process group
 * (POSIX_SPAWN_SETPGROUP), an environment of PATH and LANG only, an empty
 * signal mask and SIGPIPE at its default. "null": stdin, stdout and stderr
 * are /dev/null (opened in the child by file actions). "pipes": three pipes
 * (O_CLOEXEC), the parent closes the child's ends, closes stdin's write end,
 * reads stdout and stderr with poll until both are at end-of-file, then
 * waits. Prints {"n":N,"stdio":"null"|"pipe","ok":runs that exited 0,
 * "us":elapsed,"cpu_us":its own user + system time} on one line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what, int err) {
  fprintf(stderr, "spawn_true: %s: %s\n", what, strerror(err));
  exit(1);
}

/* Reads fds[0..n) until every one is at end-of-file. */
static void drain(int *fds, int n) {
  char buf[4096];
  int open = n;
  while (open > 0) {
    struct pollfd p[2];
    int k = 0;
    for (int i = 0; i < n; i++)
      if (fds[i] >= 0) p[k++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    if (poll(p, (nfds_t)k, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll", errno);
    }
    for (int j = 0; j < k; j++) {
      if (!p[j].revents) continue;
      ssize_t got = read(p[j].fd, buf, sizeof buf);
      if (got > 0) continue;
      if (got < 0 && errno == EINTR) continue;
      for (int i = 0; i < n; i++)
        if (fds[i] == p[j].fd) { close(fds[i]); fds[i] = -1; open--; }
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[3], "null") && strcmp(argv[3], "pipes"))) {
    fprintf(stderr, "usage: spawn_true N COMMAND null|pipes\n");
    return 2;
  }
  long long n = atoll(argv[1]), ok = 0;
  int pipes = !strcmp(argv[3], "pipes");
  char *child_argv[] = {argv[2], NULL};
  char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL};

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  long long t0 = now_us();
  for (long long i = 0; i < n; i++) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipes) {
      if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) die("pipe2", errno);
      posix_spawn_file_actions_adddup2(&fa, in[0], 0);
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
      posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    } else {
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid;
    int rc = posix_spawn(&pid, argv[2], &fa, &attr, child_argv, env);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) die(argv[2], rc);
    if (pipes) {
      close(in[0]);
      close(out[1]);
      close(err[1]);
      close(in[1]);
      int fds[2] = {out[0], err[0]};
      drain(fds, 2);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) die("waitpid", errno);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
  }
  long long us = now_us() - t0;
  posix_spawnattr_destroy(&attr);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long long cpu = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
                  ru.ru_stime.tv_usec;
  printf("{\"n\":%lld,\"stdio\":\"%s\",\"ok\":%lld,\"us\":%lld,\"cpu_us\":%lld}\n", n, pipes ? "pipe" : "null",
         ok, us, cpu);
  return 0;
}
