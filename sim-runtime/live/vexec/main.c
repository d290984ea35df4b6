/* vexec: run a program on its cell's virtual clock when LD_PRELOAD cannot reach it (Go programs,
   statically linked ones): the program's clock readings become system calls (launch.c hides the
   vDSO from it) that a seccomp filter hands to this process, which answers them from the cell's
   clock state (vclock.c, serve.c).

     vexec [--sleeps] [--waits] [--no-fast] [--] PROGRAM [ARG...]
     vexec --check

   The runtime spawns `vexec -- PROGRAM ARGS` as the live program (sim-runtime/live/vexec.ts): it is
   in the program's cell, frozen and thawed with it, and stands in for it: signals it receives
   (SIGTERM, SIGINT, …) go on to the program, and it exits as the program does (its status, or the
   signal that killed it). The program is killed if vexec dies.
   Clock readings are answered from the virtual clock (serve.c says how each call is handled).
   --sleeps   also hold nanosleep and clock_nanosleep to their virtual deadline (C programs)
   --waits    also hold epoll waits and futex waits with a timeout to their virtual deadline (C
              programs, whose glibc gives the kernel absolute deadlines on the virtual clock; Go
              programs on a clock faster than the wall, whose real waits would end late)
   --no-fast  hide the vDSO (every clock reading a system call vexec answers) instead of making its
              clock functions the fast clock (fast.c), which reads the virtual clock in the program
   --check    run a probe under the supervisor and print "ok", or what does not work here (exit 1);
              then one with the fast clock, and print "fast", or why not
   Environment: LIVESIM_CLOCK_LIMIT, the cell's clock state (required); LIVESIM_VEXEC_PRELOAD, an
   LD_PRELOAD for the program's own children (dynamically linked programs it starts read the clock
   through the shim; vexec passes it on only to a statically linked program); LIVESIM_VEXEC_STATS=1
   prints what was served on stderr at the end. */
#include "vexec.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Signals a process manager sends to stop or steer a program: passed on to it. */
static const int FORWARDED[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH };

static void usage(void) {
  fprintf(stderr, "usage: vexec [--sleeps] [--waits] [--no-fast] [--] PROGRAM [ARG...]\n       vexec --check\n");
  exit(VEXEC_FAILED);
}

/* vexec must read the real clock and wait on it: if the runtime's LD_PRELOAD (the shim and
   libfaketime) reached it, run it again without, keeping the value for the program's children. */
static void shed_preload(char **argv) {
  const char *preload = getenv("LD_PRELOAD");
  if (!preload || !*preload) return;
  if (!getenv("LIVESIM_VEXEC_PRELOAD")) setenv("LIVESIM_VEXEC_PRELOAD", preload, 1);
  unsetenv("LD_PRELOAD");
  execv("/proc/self/exe", argv);
  fprintf(stderr, "vexec: running itself again without LD_PRELOAD: %s\n", strerror(errno));
  exit(VEXEC_FAILED);
}

/* The program's environment: vexec's, without LIVESIM_VEXEC_PRELOAD, with it as LD_PRELOAD if the
   program is statically linked. A dynamically linked program (cgo, musl) gets none: the shim in a
   process whose clock readings the supervisor answers would take the virtual time for the real one. */
static char **program_env(const char *program) {
  const char *preload = getenv("LIVESIM_VEXEC_PRELOAD");
  int n = 0;
  while (environ[n]) n++;
  char **env = calloc((size_t)n + 2, sizeof *env);
  if (!env) return environ;
  int k = 0;
  for (int i = 0; i < n; i++)
    if (strncmp(environ[i], "LIVESIM_VEXEC_PRELOAD=", 22) != 0 && strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[k++] = environ[i];
  if (preload && *preload && elf_dynamic(program) == 0) {
    size_t len = strlen(preload) + sizeof "LD_PRELOAD=";
    char *var = malloc(len);
    if (var) {
      snprintf(var, len, "LD_PRELOAD=%s", preload);
      env[k++] = var;
    }
  }
  env[k] = NULL;
  return env;
}

/* Block the forwarded signals and SIGCHLD and read them from a signalfd; *old gets the mask the
   program starts with. */
static int signals_fd(sigset_t *old) {
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++) sigaddset(&set, FORWARDED[i]);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, old) != 0) return -1;
  return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Pass pending signals on; returns 1 when the program has ended (*status). */
static int on_signals(int sfd, pid_t pid, int *status) {
  struct signalfd_siginfo si;
  int ended = 0;
  while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (si.ssi_signo == SIGCHLD) ended |= waitpid(pid, status, WNOHANG) == pid;
    else kill(pid, (int)si.ssi_signo);
  }
  return ended;
}

/* Held waits whose readiness the supervisor watches besides its own two fds, at most. */
#define MAX_WATCHED 254

/* Serve the program until it ends; returns its wait status. */
static int supervise(const struct launched *l, int sfd) {
  struct pollfd fds[2 + MAX_WATCHED] = { { l->listener, POLLIN, 0 }, { sfd, POLLIN, 0 } };
  int status = 0;
  for (;;) {
    long long t = serve_timeout_ns();
    struct timespec ts = { t / 1000000000LL, t % 1000000000LL };
    int watched = serve_pollfds(fds + 2, MAX_WATCHED);
    int n = ppoll(fds, 2 + (nfds_t)watched, t >= 0 ? &ts : NULL, NULL);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "vexec: ppoll: %s\n", strerror(errno));
      kill(l->pid, SIGKILL);
    }
    if (n > 0 && (fds[1].revents & POLLIN) && on_signals(sfd, l->pid, &status)) return status;
    if (n > 0 && (fds[0].revents & POLLIN)) serve_one();
    /* Nobody is left under the filter: the program is exiting; only its status is left to wait for. */
    else if (n > 0 && (fds[0].revents & (POLLHUP | POLLERR))) fds[0].fd = -1;
    serve_held();
  }
}

/* Exit as the program did: its exit code, or killed by the same signal (without a core of vexec). */
static void exit_like(int status) {
  if (WIFEXITED(status)) exit(WEXITSTATUS(status));
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
  struct rlimit none = { 0, 0 };
  setrlimit(RLIMIT_CORE, &none);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
  exit(128 + sig);
}

static const char *clock_path(const struct launched *l) {
  return l->fast ? "fast clock in the vDSO" : l->vdso_hidden ? "vdso hidden" : "vdso absent";
}

static void print_stats(const struct launched *l) {
  const struct served *s = serve_stats();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long long cpu_us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  fprintf(stderr, "vexec: %s; %lu notifications: %lu clock readings, %lu sleeps, %lu epoll waits (%lu ended by events), %lu futex waits (%lu woken; %lu calls restarted, at most %lu held at once), %lu waits at a barrier, %lu passed through, %lu answered too late (interrupted); supervisor CPU %lld us\n",
          clock_path(l), s->notifications, s->clocks, s->sleeps, s->waits, s->waits_ready, s->futexes, s->futexes_woken, s->restarts, s->held_max, s->barrier_waits, s->passed, s->gone, cpu_us);
}

static int run(char **argv, unsigned traps, int fast) {
  const char *clock = getenv("LIVESIM_CLOCK_LIMIT");
  if (!clock || !*clock) {
    fprintf(stderr, "vexec: LIVESIM_CLOCK_LIMIT is not set: vexec runs a program on a livesim cell's virtual clock\n");
    return VEXEC_FAILED;
  }
  if (vclock_map(clock) != 0) return VEXEC_FAILED;
  char program[4096];
  if (resolve_program(argv[0], program, sizeof program) != 0) {
    fprintf(stderr, "vexec: %s: %s\n", argv[0], strerror(errno));
    return VEXEC_FAILED;
  }
  char **env = program_env(program);
  sigset_t old;
  int sfd = signals_fd(&old);
  if (sfd < 0) {
    fprintf(stderr, "vexec: signalfd: %s\n", strerror(errno));
    return VEXEC_FAILED;
  }
  /* Held sleeps wake at the µs, not 50 µs later (the default timer slack). */
  prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
  struct launched l;
  if (launch(argv, env, traps, &old, fast ? clock : NULL, &l) != 0) return VEXEC_FAILED;
  if (fast && !l.fast) fprintf(stderr, "vexec: %s: no fast clock (%s): its clock readings are system calls answered by vexec\n", argv[0], l.fast_why);
  serve_init(l.listener, traps);
  int status = supervise(&l, sfd);
  if (getenv("LIVESIM_VEXEC_STATS")) print_stats(&l);
  exit_like(status);
  return VEXEC_FAILED;
}

/* ---- --check: the whole mechanism, once, on a probe -------------------------------------- */

/* The time the probe must read (2024-01-01T00:00:00.123456789Z). */
#define CHECK_NS 1704067200123456789LL

/* The probe, run under the supervisor: glibc's clock_gettime (the vDSO's, if there is one) must
   return the supervisor's time, and a CPU-time clock must not; the vDSO must be gone (trapped) or
   there (fast). Exit 0, or which step failed. */
static int check_child(int fast) {
  if ((getauxval(AT_SYSINFO_EHDR) != 0) != fast) return 2;
  struct timespec t;
  if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) return 3;
  if (ns_of_ts(t.tv_sec, t.tv_nsec) != CHECK_NS) return 4;
  struct timeval tv;
  if (gettimeofday(&tv, NULL) != 0 || tv.tv_sec != CHECK_NS / 1000000000LL || time(NULL) != CHECK_NS / 1000000000LL) return 4;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0 || ns_of_ts(t.tv_sec, t.tv_nsec) == CHECK_NS) return 5;
  return 0;
}

/* A clock state that reads CHECK_NS for ever (its anchor is in the future), in a temporary file. */
static int check_state(char *file, size_t size) {
  const char *tmp = getenv("TMPDIR");
  snprintf(file, size, "%s/vexec-check-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemp(file);
  if (fd < 0) return -1;
  long long words[STATE_BYTES / 8] = { 0 };
  double rate = 1.0;
  words[W_AT] = CHECK_NS;
  words[W_ANCHOR] = 0x7fffffffffffffffLL;
  memcpy(&words[W_RATE], &rate, sizeof rate);
  words[W_SEQ] = 2;
  int ok = write(fd, words, sizeof words) == (ssize_t)sizeof words;
  close(fd);
  return ok ? 0 : -1;
}

/* Run the probe under the supervisor; 0 ok, else why not on *why. sfd, mask: signals_fd's. */
static int probe(int fast, int sfd, const sigset_t *mask, const char **why) {
  static const char *const WHY[] = { "ok", "", "the vDSO is not as it should be in the probe's auxiliary vector", "the probe's clock_gettime failed",
                                     "the probe did not read the supervisor's time", "a CPU-time clock was answered by the supervisor" };
  char file[4096] = "";
  if (fast && check_state(file, sizeof file) != 0) return *why = "cannot write a clock state for the fast clock", -1;
  if (fast) vclock_map(file);
  else vclock_fixed(CHECK_NS);
  char *argv[] = { "/proc/self/exe", fast ? "--check-child-fast" : "--check-child", NULL };
  struct launched l;
  int launched = launch(argv, environ, TRAP_CLOCKS, mask, fast ? file : NULL, &l) == 0;
  if (fast) unlink(file);
  if (!launched) return *why = "vexec cannot run a program under its supervisor here (see above)", -1;
  if (fast && !l.fast) *why = l.fast_why;
  serve_init(l.listener, TRAP_CLOCKS);
  unsigned long served = serve_stats()->clocks;
  int status = supervise(&l, sfd);
  close(l.listener);
  if (fast && !l.fast) return -1;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code > 0 && code < (int)(sizeof WHY / sizeof *WHY) && *WHY[code]) return *why = WHY[code], -1;
  if (code != 0) return *why = "the probe did not end well", -1;
  if (fast && serve_stats()->clocks > served) return *why = "the probe's readings reached the supervisor", -1;
  return 0;
}

/* Prints "ok" (the supervisor works here) or why not, then "fast" (so does the fast clock) or why not. */
static int check(void) {
  const char *why = "";
  sigset_t mask;
  int sfd = signals_fd(&mask);
  if (sfd < 0 || probe(0, sfd, &mask, &why) != 0) {
    printf("%s\n", sfd < 0 ? "signalfd failed" : why);
    return 1;
  }
  printf("ok\n");
  if (probe(1, sfd, &mask, &why) == 0) printf("fast\n");
  else printf("no fast clock: %s\n", why);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--check-child") == 0) return check_child(0);
  if (argc == 2 && strcmp(argv[1], "--check-child-fast") == 0) return check_child(1);
  shed_preload(argv);
  unsigned traps = TRAP_CLOCKS;
  int fast = 1, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "--check") == 0 && argc == 2) return check();
    if (strcmp(argv[i], "--sleeps") == 0) traps |= TRAP_SLEEPS;
    else if (strcmp(argv[i], "--waits") == 0) traps |= TRAP_WAITS;
    else if (strcmp(argv[i], "--no-fast") == 0) fast = 0;
    else usage();
  }
  if (i >= argc) usage();
  return run(argv + i, traps, fast);
}
