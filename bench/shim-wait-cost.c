/* The shim-wait-cost benchmark's program (bench/shim-wait.ts): what a wait costs its caller, under
   the clock shim and natively. `shim-wait-cost N_POLL0 N_TIMED N_RW` makes, on a pipe nobody
   writes to,
     N_POLL0 × poll(fd, 1, 0)   (no wait: the shim passes it through)
     N_TIMED × poll(fd, 1, 1)   (a 1 ms timeout that runs out: the shim waits for a virtual deadline)
   and on another pipe N_RW × (write 1 byte, read 1 byte) (the shim wraps both: an fd without a
   socket timeout must cost what it did). For each it prints
     <what> <thread CPU ns per call> <wall ns per call>
   measured with raw system calls (CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC), which the virtual clock
   does not touch. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long raw(clockid_t c) {
  struct timespec t;
  syscall(SYS_clock_gettime, c, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void report(const char *what, long n, long long cpu0, long long wall0) {
  long long cpu = raw(CLOCK_THREAD_CPUTIME_ID) - cpu0, wall = raw(CLOCK_MONOTONIC) - wall0;
  printf("%s %.1f %.1f\n", what, (double)cpu / (double)n, (double)wall / (double)n);
}

int main(int argc, char **argv) {
  long n0 = argc > 1 ? atol(argv[1]) : 200000, nt = argc > 2 ? atol(argv[2]) : 300, nrw = argc > 3 ? atol(argv[3]) : 200000;
  int quiet[2], rw[2];
  if (pipe(quiet) != 0 || pipe(rw) != 0) return 1;
  struct pollfd p = { quiet[0], POLLIN, 0 };
  char b = 'x';
  /* Warm-up: the shim resolves its functions at first use. */
  for (int i = 0; i < 100; i++) {
    poll(&p, 1, 0);
    if (write(rw[1], &b, 1) != 1 || read(rw[0], &b, 1) != 1) return 1;
  }
  poll(&p, 1, 1);

  long long c = raw(CLOCK_THREAD_CPUTIME_ID), w = raw(CLOCK_MONOTONIC);
  for (long i = 0; i < n0; i++) poll(&p, 1, 0);
  report("poll0", n0, c, w);

  c = raw(CLOCK_THREAD_CPUTIME_ID), w = raw(CLOCK_MONOTONIC);
  for (long i = 0; i < nt; i++)
    if (poll(&p, 1, 1) != 0) return 1;
  report("timed", nt, c, w);

  c = raw(CLOCK_THREAD_CPUTIME_ID), w = raw(CLOCK_MONOTONIC);
  for (long i = 0; i < nrw; i++)
    if (write(rw[1], &b, 1) != 1 || read(rw[0], &b, 1) != 1) return 1;
  report("rw", nrw, c, w);
  return 0;
}
