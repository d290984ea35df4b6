/* Signal handlers, counted per thread: how a wait tells an EINTR of the cell's own machinery from one
   the program should see. Freezing a cell (the cgroup freezer kicks every task as a signal would;
   signals mode stops and continues it) interrupts a thread in epoll_wait, or in a socket call with a
   timeout, and the kernel returns EINTR although no handler ran, where poll, select and futex waits
   restart by themselves. An EINTR with no handler run in the thread since the wait began is such an
   interruption: waits.c waits on. One after a handler ran is the program's: it returns.
   So the program's handlers run through a trampoline that counts them: sigaction (and signal, which
   glibc implements without going through sigaction) install the trampoline in the program's place
   and keep the program's action, which is what the program reads back. Handlers installed before the
   shim's library was loaded, or through sysv_signal, sigset or a raw system call, are not counted:
   an EINTR they cause in a timed wait is taken for the cell's. */
#include "shim.h"
#include <dlfcn.h>
#include <signal.h>

__thread unsigned long handlers_run SHIM_TLS;

/* The program's action of each signal whose handler the trampoline stands in for. */
static struct sigaction program_action[_NSIG];

static void trampoline(int sig, siginfo_t *info, void *context) {
  handlers_run++;
  const struct sigaction *a = &program_action[sig];
  if (a->sa_flags & SA_SIGINFO) {
    timers_delivered(sig, info); /* a timer's si_overrun (timers.c) */
    a->sa_sigaction(sig, info, context);
  } else {
    a->sa_handler(sig);
  }
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static int is_handler(const struct sigaction *a) {
  return (a->sa_flags & SA_SIGINFO) ? a->sa_sigaction != NULL : a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

SHIM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  static sigaction_fn next;
  if (!next) next = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  if (sig <= 0 || sig >= _NSIG) return next(sig, act, old);
  struct sigaction before = program_action[sig], mine;
  const struct sigaction *install = act;
  if (act && is_handler(act)) {
    /* The program's action first: a signal that comes as soon as the trampoline is in finds it. */
    program_action[sig] = *act;
    mine = *act;
    mine.sa_sigaction = trampoline;
    mine.sa_flags |= SA_SIGINFO;
    install = &mine;
  }
  int r = next(sig, install, old);
  if (r != 0) {
    program_action[sig] = before;
    return r;
  }
  /* The trampoline was in: the program reads back its own action. */
  if (old && (old->sa_flags & SA_SIGINFO) && old->sa_sigaction == trampoline) *old = before;
  return r;
}

/* glibc's signal(): BSD semantics (the handler stays, interrupted calls restart). */
static sighandler_t bsd_signal_via_sigaction(int sig, sighandler_t handler) {
  if (sig <= 0 || sig >= _NSIG || handler == SIG_ERR) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction act = { 0 }, old;
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, sig);
  act.sa_flags = SA_RESTART;
  return sigaction(sig, &act, &old) != 0 ? SIG_ERR : old.sa_handler;
}

SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler) { return bsd_signal_via_sigaction(sig, handler); }
SHIM_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler) { return bsd_signal_via_sigaction(sig, handler); }
