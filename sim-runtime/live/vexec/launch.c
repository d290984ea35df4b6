/* Starting the program so that its clock readings reach the supervisor:
   1. the child asks to be traced (PTRACE_TRACEME), installs a seccomp filter that hands the calls
      of enum trap_set to a listener (SECCOMP_RET_USER_NOTIF; PR_SET_NO_NEW_PRIVS makes that
      possible without privilege), passes the listener's fd to the parent over a socketpair
      (SCM_RIGHTS) and execs the program;
   2. the exec stops the child (it is traced); the parent makes the vDSO's clock functions the fast
      clock (fast.c), which reads the virtual clock in the program. Where it cannot, it overwrites
      AT_SYSINFO_EHDR in the new program's auxiliary vector with AT_IGNORE: neither Go's runtime nor
      glibc (static or dynamic) then finds the vDSO, and both read the clock with the system call,
      which the filter traps;
   3. the parent detaches: from then on the program runs untraced, and only the trapped calls
      cost anything (a round trip through the supervisor).
   The filter is inherited by everything the program forks, and so are the missing vDSO (a fork
   copies the address space and the libraries' state) and the supervisor's answers; a program the
   program execs gets a fresh auxiliary vector, with the vDSO (docs/live.md says what that means). */
#include "vexec.h"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define STACK_POINTER(r) ((r).rsp)
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define STACK_POINTER(r) ((r).sp)
#else
#error "vexec supports x86-64 and aarch64"
#endif

/* ---- The filter ---------------------------------------------------------------------------- */

#define MAX_FILTER 64
struct filter {
  struct sock_filter insn[MAX_FILTER];
  unsigned short n;
};

static void emit(struct filter *f, unsigned short code, unsigned k, unsigned char jt, unsigned char jf) {
  if (f->n >= MAX_FILTER) abort(); /* a fixed program: a bug, not an input */
  f->insn[f->n++] = (struct sock_filter){ code, jt, jf, k };
}

#define RET_NOTIFY SECCOMP_RET_USER_NOTIF
#define RET_ALLOW SECCOMP_RET_ALLOW
#define ARG0_LOW (offsetof(struct seccomp_data, args[0])) /* clockid_t is an int: the low half (little-endian) */

/* A block for system call nr whose first argument is a clock id: handed to the supervisor when the
   clock is in clocks (a bit mask of ids 0-31), allowed otherwise (CPU-time clocks, whose ids are
   negative or 2 and 3, pass untouched). A is nr on entry; every path of the block returns. */
static void trap_clock_call(struct filter *f, unsigned nr, unsigned clocks) {
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 8); /* not nr: skip the 8 instructions of the block */
  emit(f, BPF_LD | BPF_W | BPF_ABS, ARG0_LOW, 0, 0);
  emit(f, BPF_JMP | BPF_JGT | BPF_K, 31, 4, 0); /* → allow */
  emit(f, BPF_MISC | BPF_TAX, 0, 0, 0);
  emit(f, BPF_LD | BPF_IMM, 1, 0, 0);
  emit(f, BPF_ALU | BPF_LSH | BPF_X, 0, 0, 0); /* A = 1 << clock */
  emit(f, BPF_JMP | BPF_JSET | BPF_K, clocks, 1, 0);
  emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
  emit(f, BPF_RET | BPF_K, RET_NOTIFY, 0, 0);
}

static void trap_call(struct filter *f, unsigned nr) {
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
  emit(f, BPF_RET | BPF_K, RET_NOTIFY, 0, 0);
}

/* A block for system call nr whose argument arg is a timeout in ms: handed to the supervisor when
   the timeout is positive; 0 (no wait) and negative ones (no timeout) are allowed. */
static void trap_timeout_call(struct filter *f, unsigned nr, int arg) {
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 5);
  emit(f, BPF_LD | BPF_W | BPF_ABS, (unsigned)(offsetof(struct seccomp_data, args[0]) + 8 * (unsigned)arg), 0, 0);
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0);
  emit(f, BPF_JMP | BPF_JSET | BPF_K, 0x80000000u, 1, 0);
  emit(f, BPF_RET | BPF_K, RET_NOTIFY, 0, 0);
  emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

/* A block for futex: handed to the supervisor when it waits (FUTEX_WAIT, FUTEX_WAIT_BITSET, private or
   not) with a timeout (a pointer in the fourth argument, both halves looked at). */
static void trap_futex_wait(struct filter *f) {
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 0, 10);
  emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]), 0, 0);
  emit(f, BPF_ALU | BPF_AND | BPF_K, (unsigned)FUTEX_CMD_MASK, 0, 0);
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAIT, 1, 0);
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAIT_BITSET, 0, 5); /* neither: → allow */
  emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3]), 0, 0);
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2); /* low half set: → notify */
  emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3]) + 4, 0, 0);
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0); /* no timeout: → allow */
  emit(f, BPF_RET | BPF_K, RET_NOTIFY, 0, 0);
  emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

#define BIT(c) (1u << (c))
/* The clocks the virtual clock replaces: the shim's (shim/clock.c, limited). */
#define VIRTUAL_CLOCKS (BIT(CLOCK_REALTIME) | BIT(CLOCK_MONOTONIC) | BIT(CLOCK_MONOTONIC_RAW) | BIT(CLOCK_REALTIME_COARSE) | BIT(CLOCK_MONOTONIC_COARSE) | BIT(CLOCK_BOOTTIME))
/* The clocks whose sleeps are virtual: the shim's (shim/sleep.c, clock_nanosleep). */
#define SLEEP_CLOCKS (BIT(CLOCK_REALTIME) | BIT(CLOCK_MONOTONIC) | BIT(CLOCK_BOOTTIME))

static void build_filter(struct filter *f, unsigned traps) {
  f->n = 0;
  /* Another architecture's calls (a 32-bit program through int 0x80) have other numbers: allowed;
     clock.ts does not send 32-bit programs here. */
  emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
  emit(f, BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0);
  emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
  emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
  if (traps & TRAP_CLOCKS) {
    trap_clock_call(f, SYS_clock_gettime, VIRTUAL_CLOCKS);
    trap_call(f, SYS_gettimeofday);
#ifdef SYS_time
    trap_call(f, SYS_time);
#endif
  }
  if (traps & TRAP_SLEEPS) {
    trap_call(f, SYS_nanosleep);
    trap_clock_call(f, SYS_clock_nanosleep, SLEEP_CLOCKS);
  }
  if (traps & TRAP_WAITS) {
#ifdef SYS_epoll_wait
    trap_timeout_call(f, SYS_epoll_wait, 3);
#endif
    trap_timeout_call(f, SYS_epoll_pwait, 3);
    trap_futex_wait(f);
  }
  emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

/* ---- The child --------------------------------------------------------------------------- */

static int send_fd(int sock, int fd) {
  char byte = 0, control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof control);
  struct iovec io = { &byte, 1 };
  struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

/* What the child reports when it cannot get as far as the exec: the step and errno. */
struct failure {
  int step;
  int err;
};
static const char *const STEPS[] = { "", "prctl(PR_SET_PDEATHSIG)", "ptrace(PTRACE_TRACEME)", "prctl(PR_SET_NO_NEW_PRIVS)", "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)", "passing the listener", "execve" };

/* The listener's fd from the child, or -1: the child failed (*f says where, when it could) or died. */
static int recv_fd(int sock, struct failure *f) {
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec io = { f, sizeof *f };
  struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
  memset(f, 0, sizeof *f);
  ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
  if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  memset(f, 0, sizeof *f);
  return fd;
}

static void child_fails(int sock, int step) {
  struct failure f = { step, errno };
  if (write(sock, &f, sizeof f) < 0) _exit(VEXEC_FAILED);
  _exit(VEXEC_FAILED);
}

static void child(int sock, pid_t parent, char *const argv[], char *const envp[], unsigned traps, const void *sigmask) {
  /* The program cannot run without its clock: it dies with the supervisor. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) child_fails(sock, 1);
  if (getppid() != parent) _exit(VEXEC_FAILED);
  if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) child_fails(sock, 2);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fails(sock, 3);
  struct filter f;
  build_filter(&f, traps);
  struct sock_fprog prog = { f.n, f.insn };
  int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0) child_fails(sock, 4);
  if (send_fd(sock, listener) != 0) child_fails(sock, 5);
  close(listener);
  sigprocmask(SIG_SETMASK, (const sigset_t *)sigmask, NULL);
  execvpe(argv[0], argv, envp);
  child_fails(sock, 6);
}

/* ---- The parent ---------------------------------------------------------------------------- */

static long peek(pid_t pid, unsigned long addr, int *ok) {
  errno = 0;
  long w = ptrace(PTRACE_PEEKDATA, pid, (void *)addr, 0);
  if (errno) *ok = 0;
  return w;
}

/* At the post-exec stop the stack pointer is at argc, followed by argv[], NULL, envp[], NULL and
   the auxiliary vector (tag, value pairs up to AT_NULL). Overwrite the tag AT_SYSINFO_EHDR with
   AT_IGNORE. Returns 1 if it was there and is hidden, 0 if there was none, -1 on error. */
static int hide_vdso(pid_t pid) {
  struct user_regs_struct regs;
  struct iovec io = { &regs, sizeof regs };
  if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &io) != 0) return -1;
  int ok = 1;
  unsigned long p = STACK_POINTER(regs);
  long argc = peek(pid, p, &ok);
  if (!ok || argc < 0) return -1;
  p += sizeof(long) * (unsigned long)(argc + 2);
  for (int i = 0; ok && peek(pid, p, &ok) != 0; i++, p += sizeof(long))
    if (i > 1 << 20) return -1;
  p += sizeof(long);
  for (int i = 0; ok && i < 256; i++, p += 2 * sizeof(long)) {
    long tag = peek(pid, p, &ok);
    if (!ok) return -1;
    if (tag == AT_NULL) return 0;
    if (tag == AT_SYSINFO_EHDR) return ptrace(PTRACE_POKEDATA, pid, (void *)p, (void *)AT_IGNORE) == 0 ? 1 : -1;
  }
  return -1;
}

/* Wait for the stop after the exec. A signal that arrives before it (the child is traced, so it
   stops at every signal) is delivered, except a stop signal: the supervisor, in the same process
   group, was stopped with it and is running again, so the freeze it was part of is over. */
static int await_exec(pid_t pid, int *status) {
  for (;;) {
    if (waitpid(pid, status, 0) < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (!WIFSTOPPED(*status)) return -1;
    int sig = WSTOPSIG(*status);
    if (sig == SIGTRAP) return 0;
    int stop = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
    ptrace(PTRACE_CONT, pid, 0, (void *)(long)(stop ? 0 : sig));
  }
}

static void report_child_failure(int sock, const char *program, int status, struct failure f) {
  if (f.step == 0 && read(sock, &f, sizeof f) != (ssize_t)sizeof f) f.step = 0;
  if (f.step > 0 && f.step < (int)(sizeof STEPS / sizeof *STEPS)) {
    fprintf(stderr, "vexec: %s: %s failed: %s\n", program, STEPS[f.step], strerror(f.err));
  } else if (WIFSIGNALED(status)) {
    fprintf(stderr, "vexec: %s: killed by signal %d before it started\n", program, WTERMSIG(status));
  } else {
    fprintf(stderr, "vexec: %s: did not start (status 0x%x)\n", program, status);
  }
}

int launch(char *const argv[], char *const envp[], unsigned traps, const void *sigmask, const char *fast_state, struct launched *out) {
  memset(out, 0, sizeof *out);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    fprintf(stderr, "vexec: socketpair: %s\n", strerror(errno));
    return -1;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "vexec: fork: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    close(sv[0]);
    child(sv[1], parent, argv, envp, traps, sigmask);
  }
  close(sv[1]);
  out->pid = pid;
  struct failure f;
  out->listener = recv_fd(sv[0], &f);
  int status = 0;
  if (out->listener < 0 || await_exec(pid, &status) != 0) {
    if (out->listener >= 0) close(out->listener);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    report_child_failure(sv[0], argv[0], status, f);
    close(sv[0]);
    return -1;
  }
  close(sv[0]);
  int signal = 0;
  out->fast = fast_state && fast_install(pid, fast_state, &out->fast_why, &signal) == 0;
  /* A stop signal came with a freeze the supervisor was part of, and is over (see await_exec). */
  if (signal == SIGSTOP || signal == SIGTSTP || signal == SIGTTIN || signal == SIGTTOU) signal = 0;
  int hidden = out->fast ? 0 : hide_vdso(pid);
  if (hidden < 0) {
    fprintf(stderr, "vexec: %s: cannot read its auxiliary vector to hide the vDSO: %s\n", argv[0], strerror(errno ? errno : EIO));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    close(out->listener);
    return -1;
  }
  out->vdso_hidden = hidden;
  if (ptrace(PTRACE_DETACH, pid, 0, (void *)(long)signal) != 0) {
    fprintf(stderr, "vexec: %s: ptrace(PTRACE_DETACH): %s\n", argv[0], strerror(errno));
    kill(pid, SIGKILL);
    close(out->listener);
    return -1;
  }
  return 0;
}

/* ---- Looking at the program ---------------------------------------------------------------- */

int resolve_program(const char *name, char *buf, size_t size) {
  if (strchr(name, '/')) {
    if ((size_t)snprintf(buf, size, "%s", name) >= size) return errno = ENAMETOOLONG, -1;
    return access(buf, X_OK);
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p;) {
    const char *end = strchrnul(p, ':');
    int len = (int)(end - p);
    if ((size_t)snprintf(buf, size, "%.*s%s%s", len, p, len ? "/" : "", name) < size && access(buf, X_OK) == 0) return 0;
    p = *end ? end + 1 : end;
  }
  errno = ENOENT;
  return -1;
}

int elf_dynamic(const char *file) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  Elf64_Ehdr eh;
  int dynamic = 0;
  if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64) {
    for (unsigned i = 0; i < eh.e_phnum && i < 4096; i++) {
      Elf64_Phdr ph;
      if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize)) != (ssize_t)sizeof ph) break;
      if (ph.p_type == PT_INTERP) dynamic = 1;
    }
  }
  close(fd);
  return dynamic;
}
