/* vexec: runs a program that LD_PRELOAD cannot reach (Go, statically linked) under the cell's
   virtual clock (docs/live.md, "Go and static programs: vexec"). What its C files share.
     main.c    arguments, the environment, the program's exit status, signals passed on, --check
     launch.c  fork, seccomp filter, exec; the vDSO made the fast clock or hidden (ptrace)
     fast.c    the fast clock installed in the program's vDSO
     blob.c    the fast clock itself, copied into the program
     vclock.c  the virtual clock, read from the cell's clock state (../shim/layout.h)
     serve.c   the seccomp notifications: clock readings answered, sleeps and waits held */
#ifndef LIVESIM_VEXEC_H
#define LIVESIM_VEXEC_H
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>
#include <time.h>
#include "../shim/layout.h"

/* Exit status of vexec when it cannot run the program (as a shell's "command not executable"). */
#define VEXEC_FAILED 127

/* What the seccomp filter hands to the supervisor. */
enum trap_set {
  TRAP_CLOCKS = 1, /* clock_gettime (the clocks the virtual clock replaces), gettimeofday, time */
  TRAP_SLEEPS = 2, /* nanosleep, clock_nanosleep (REALTIME, MONOTONIC, BOOTTIME) */
  TRAP_WAITS = 4,  /* epoll_wait, epoll_pwait with a timeout (not 0, not infinite); futex waits
                      (FUTEX_WAIT, FUTEX_WAIT_BITSET) with a timeout */
};

/* blob.c, fast.c: the fast clock copied into a program reads this, just before its code. */
#define BLOB_DATA_BYTES 64
struct blob_data {
  volatile long long *state;                          /* the cell's clock state, mapped in the program */
  int (*clock_gettime)(clockid_t, struct timespec *); /* the vDSO's own */
};
_Static_assert(sizeof(struct blob_data) <= BLOB_DATA_BYTES, "the fast clock's data fits before its code");

/* launch.c */
struct launched {
  pid_t pid;    /* the program */
  int listener; /* its seccomp notification fd */
  int vdso_hidden; /* the vDSO was found in its auxiliary vector and hidden */
  int fast;        /* the vDSO's clock functions are the fast clock (fast.c) */
  const char *fast_why; /* why not, when it was asked for */
};
/* Start argv[0] (looked up in PATH as execvp does) with envp; on failure print why on stderr and
   return -1. sigmask: the mask the program starts with. fast_state: the clock state for the fast
   clock (fast.c), or NULL: hide the vDSO (as when the fast clock cannot be installed). */
int launch(char *const argv[], char *const envp[], unsigned traps, const void *sigmask, const char *fast_state, struct launched *out);

/* fast.c: make the vDSO's clock functions the fast clock of blob.c; 0, or -1 with *why. *signal: a
   signal the program got meanwhile (0: none), for the caller to deliver when it lets it go. */
int fast_install(pid_t pid, const char *state_file, const char **why, int *signal);
/* The file an exec of name would run (PATH search as execvp), into buf; 0, or -1 (errno). */
int resolve_program(const char *name, char *buf, size_t size);
/* The ELF file has a program interpreter (dynamically linked): 1, 0, or -1 if unreadable. */
int elf_dynamic(const char *file);

/* vclock.c */
int vclock_map(const char *file);       /* map the clock state; 0, or -1 with errno (the why on stderr) */
void vclock_fixed(long long epoch_ns);  /* no state: the clock stands at epoch_ns (vexec --check) */
long long mono_ns(void);                /* real CLOCK_MONOTONIC ns */
struct vreading {
  long long ns;        /* virtual epoch ns, or -1: no usable clock state (the program gets the real clock) */
  int wait;            /* a precise slice's barrier was reached: the reading waits there until the
                          runtime moves the clock (the state's sequence is no longer seq) */
  long long seq;       /* the state's sequence the reading was taken at */
};
struct vreading vclock_read(void);      /* a reading of the program: may start a precise slice */
long long vclock_left(long long deadline); /* virtual ns before deadline (0: it has come) */
long long vclock_real_wait(long long deadline); /* real ns to wait for it (0: it has come) */
long long vclock_seq(void);             /* the state's sequence now */
void vclock_waiting(int delta);         /* readings waiting at the barrier (W_WAITING) */

/* serve.c */
struct served {
  unsigned long notifications, clocks, passed, sleeps, waits, waits_ready, futexes, futexes_woken, held_max, restarts, gone, barrier_waits;
};
void serve_init(int listener, unsigned traps);
void serve_one(void);                   /* receive and answer (or hold) one notification */
void serve_held(void);                  /* answer the held ones whose time has come */
int serve_pollfds(struct pollfd *fds, int max); /* fds whose readiness ends a held wait; how many */
long long serve_timeout_ns(void);       /* real ns until a held one may be due (-1: none held) */
const struct served *serve_stats(void);

static inline long long ns_of_ts(long long sec, long long nsec) { return sec * 1000000000LL + nsec; }

#endif
