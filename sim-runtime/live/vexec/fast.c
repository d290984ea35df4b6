/* The fast path: instead of hiding the vDSO (every clock reading a round trip through the
   supervisor, ~8 µs), make its clock functions the fast clock of blob.c, which reads the cell's
   clock state in the program (tens of ns). At the post-exec stop, with the program traced:
   1. map a page and the cell's clock state into the program, by system calls the program is made
      to execute (ptrace: registers set, a `syscall` instruction written at its entry point, one
      step, everything restored after);
   2. copy blob.c's section into the page, after the data it reads (struct blob_data: the state's
      address, the vDSO's own clock_gettime), and make the page read-only and executable;
   3. point the symbols clock_gettime, gettimeofday and time (and their __vdso_ names) in the
      vDSO's dynamic symbol table at the copies. The vDSO's pages are the program's private copy
      (a ptrace write makes one); Go's runtime, glibc (static or dynamic) and musl all find the
      vDSO's functions through that table, when they start, after this.
   Any failure leaves the program as it was (the symbols are written last, all or none) and the
   caller hides the vDSO instead. x86-64 only. */
#include "vexec.h"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)

extern char __start_vexec_blob[], __stop_vexec_blob[];
int blob_clock_gettime(clockid_t c, struct timespec *ts);
int blob_gettimeofday(struct timeval *tv, struct timezone *tz);
long blob_time(long *t);

#define PAGE 4096

static int read_mem(pid_t pid, unsigned long addr, void *buf, size_t len) {
  struct iovec local = { buf, len }, remote = { (void *)addr, len };
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int write_mem(pid_t pid, unsigned long addr, const void *buf, size_t len) {
  struct iovec local = { (void *)buf, len }, remote = { (void *)addr, len };
  return process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* ---- The vDSO's symbols ------------------------------------------------------------------ */

/* The [vdso] mapping of pid: its start and length, or 0. */
static unsigned long vdso_range(pid_t pid, size_t *len) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  FILE *f = fopen(path, "re");
  unsigned long start = 0, end = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &start, &end) == 2) break;
  if (f) fclose(f);
  *len = end > start ? end - start : 0;
  return *len ? start : 0;
}

/* The symbols to point at the fast clock, and the fast clock's function for each. */
static const struct {
  const char *name;
  int fn; /* 0 clock_gettime, 1 gettimeofday, 2 time */
} NAMES[] = { { "__vdso_clock_gettime", 0 }, { "clock_gettime", 0 }, { "__vdso_gettimeofday", 1 }, { "gettimeofday", 1 }, { "__vdso_time", 2 }, { "time", 2 } };
#define NNAMES (sizeof NAMES / sizeof *NAMES)

struct vdso {
  unsigned long base, load; /* where it is mapped; the address it was linked at (its first PT_LOAD) */
  unsigned long sym_at[NNAMES]; /* address of each symbol's entry in the program (0: absent) */
  unsigned long value[NNAMES];  /* its st_value */
  unsigned long clock_gettime; /* the vDSO's own, in the program */
};

/* A pointer into the image, or NULL when [off, off + len) is not inside it. */
static const void *in(const unsigned char *img, size_t size, unsigned long off, size_t len) {
  return off <= size && len <= size - off ? img + off : NULL;
}

/* Find the symbols of NAMES in the vDSO image img (size bytes, mapped at base). 0, or -1. */
static int parse_vdso(const unsigned char *img, size_t size, unsigned long base, struct vdso *v) {
  const Elf64_Ehdr *eh = in(img, size, 0, sizeof *eh);
  if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) return -1;
  const Elf64_Phdr *ph = in(img, size, eh->e_phoff, (size_t)eh->e_phnum * sizeof *ph);
  if (!ph) return -1;
  unsigned long load = ~0UL, dyn = 0;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type == PT_LOAD && load == ~0UL) load = ph[i].p_vaddr;
    if (ph[i].p_type == PT_DYNAMIC) dyn = ph[i].p_vaddr;
  }
  if (load == ~0UL || !dyn) return -1;
  unsigned long symtab = 0, strtab = 0, hash = 0;
  for (const Elf64_Dyn *d = in(img, size, dyn - load, sizeof *d); d && d->d_tag != DT_NULL; d = in(img, size, (unsigned long)((const unsigned char *)(d + 1) - img), sizeof *d)) {
    if (d->d_tag == DT_SYMTAB) symtab = d->d_un.d_ptr - load;
    if (d->d_tag == DT_STRTAB) strtab = d->d_un.d_ptr - load;
    if (d->d_tag == DT_HASH) hash = d->d_un.d_ptr - load;
  }
  const Elf64_Word *h = hash ? in(img, size, hash, 2 * sizeof *h) : NULL;
  if (!symtab || !strtab || !h) return -1;
  unsigned long nsyms = h[1]; /* DT_HASH's nchain: the number of symbols */
  const Elf64_Sym *syms = in(img, size, symtab, nsyms * sizeof *syms);
  if (!syms) return -1;
  memset(v, 0, sizeof *v);
  v->base = base;
  v->load = load;
  for (unsigned long i = 0; i < nsyms; i++) {
    const char *name = in(img, size, strtab + syms[i].st_name, 1);
    if (!name || !syms[i].st_value || ELF64_ST_TYPE(syms[i].st_info) != STT_FUNC) continue;
    for (size_t k = 0; k < NNAMES; k++) {
      size_t len = strlen(NAMES[k].name) + 1;
      if (!in(img, size, strtab + syms[i].st_name, len) || memcmp(name, NAMES[k].name, len) != 0) continue;
      v->sym_at[k] = base + symtab + i * sizeof *syms;
      v->value[k] = syms[i].st_value;
      if (NAMES[k].fn == 0) v->clock_gettime = base + syms[i].st_value - load;
    }
  }
  return v->clock_gettime ? 0 : -1;
}

/* ---- System calls made by the program ------------------------------------------------------ */

struct injector {
  pid_t pid;
  struct user_regs_struct saved;
  unsigned long at; /* where the `syscall` instruction was written: the program's entry point */
  long code;        /* what was there */
  int signal;       /* a signal that stopped the program instead of the step: delivered at the detach */
};

static int injector_begin(struct injector *j, pid_t pid) {
  j->pid = pid;
  j->signal = 0;
  if (ptrace(PTRACE_GETREGS, pid, 0, &j->saved) != 0) return -1;
  j->at = j->saved.rip;
  errno = 0;
  j->code = ptrace(PTRACE_PEEKTEXT, pid, (void *)j->at, 0);
  if (errno) return -1;
  long syscall_insn = (j->code & ~0xffffL) | 0x050f; /* 0f 05: syscall */
  return ptrace(PTRACE_POKETEXT, pid, (void *)j->at, (void *)syscall_insn);
}

static void injector_end(struct injector *j) {
  ptrace(PTRACE_POKETEXT, j->pid, (void *)j->at, (void *)j->code);
  ptrace(PTRACE_SETREGS, j->pid, 0, &j->saved);
}

/* The program makes system call nr; its result (a negative errno on failure), or -ENOSYS when the
   step did not go as expected. */
static long inject(struct injector *j, long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  struct user_regs_struct r = j->saved;
  r.rip = j->at;
  r.rax = (unsigned long)nr;
  r.orig_rax = (unsigned long)-1; /* not in a system call: nothing to restart */
  r.rdi = (unsigned long)a0, r.rsi = (unsigned long)a1, r.rdx = (unsigned long)a2;
  r.r10 = (unsigned long)a3, r.r8 = (unsigned long)a4, r.r9 = (unsigned long)a5;
  int status;
  if (ptrace(PTRACE_SETREGS, j->pid, 0, &r) != 0 || ptrace(PTRACE_SINGLESTEP, j->pid, 0, 0) != 0) return -ENOSYS;
  if (waitpid(j->pid, &status, __WALL) != j->pid || !WIFSTOPPED(status)) return -ENOSYS;
  if (WSTOPSIG(status) != SIGTRAP) { /* a signal came first: the installation is given up, the signal kept */
    j->signal = WSTOPSIG(status);
    return -ENOSYS;
  }
  if (ptrace(PTRACE_GETREGS, j->pid, 0, &r) != 0 || r.rip != j->at + 2) return -ENOSYS;
  return (long)r.rax;
}

/* ---- Installing -------------------------------------------------------------------------------- */

/* Map the page and the clock state into the program and fill the page (steps 1-2); its address,
   or 0 with *why set. */
static unsigned long install_blob(struct injector *j, const char *state_file, unsigned long vdso_clock_gettime, const char **why) {
  size_t code = (size_t)(__stop_vexec_blob - __start_vexec_blob), path_at = (BLOB_DATA_BYTES + code + 7) & ~7UL, path_len = strlen(state_file) + 1;
  if (path_at + path_len > PAGE) return *why = "the clock state's path is too long", 0;
  long page = inject(j, SYS_mmap, 0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page < 0 && page > -4096) return *why = "mmap in the program failed", 0;
  if (write_mem(j->pid, (unsigned long)page + path_at, state_file, path_len) != 0) return *why = "cannot write into the program", 0;
  long fd = inject(j, SYS_openat, AT_FDCWD, page + (long)path_at, O_RDWR | O_CLOEXEC, 0, 0, 0);
  if (fd < 0) return *why = "the program cannot open the clock state read-write", 0;
  long state = inject(j, SYS_mmap, 0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  inject(j, SYS_close, fd, 0, 0, 0, 0, 0);
  if (state < 0 && state > -4096) return *why = "mapping the clock state in the program failed", 0;
  unsigned char buf[PAGE];
  memset(buf, 0, sizeof buf);
  struct blob_data d = { (volatile long long *)state, (int (*)(clockid_t, struct timespec *))vdso_clock_gettime };
  memcpy(buf, &d, sizeof d);
  memcpy(buf + BLOB_DATA_BYTES, __start_vexec_blob, code);
  if (write_mem(j->pid, (unsigned long)page, buf, path_at) != 0) return *why = "cannot write into the program", 0;
  if (inject(j, SYS_mprotect, page, PAGE, PROT_READ | PROT_EXEC, 0, 0, 0) != 0) return *why = "mprotect in the program failed", 0;
  return (unsigned long)page;
}

/* The fast clock's copy of blob function fn (NAMES[].fn) in the program's page. */
static unsigned long copy_of(unsigned long page, int fn) {
  const char *f = fn == 0 ? (const char *)blob_clock_gettime : fn == 1 ? (const char *)blob_gettimeofday : (const char *)blob_time;
  return page + BLOB_DATA_BYTES + (unsigned long)(f - __start_vexec_blob);
}

static int set_symbol(pid_t pid, const struct vdso *v, size_t k, unsigned long value) {
  return (int)ptrace(PTRACE_POKEDATA, pid, (void *)(v->sym_at[k] + offsetof(Elf64_Sym, st_value)), (void *)value);
}

int fast_install(pid_t pid, const char *state_file, const char **why, int *signal) {
  size_t size;
  *signal = 0;
  unsigned long base = vdso_range(pid, &size);
  if (!base) return *why = "the program has no vDSO", -1;
  unsigned char *img = malloc(size);
  struct vdso v;
  int parsed = img && read_mem(pid, base, img, size) == 0 ? parse_vdso(img, size, base, &v) : -1;
  free(img);
  if (parsed != 0) return *why = "no clock_gettime in the vDSO's symbol table (DT_HASH)", -1;
  struct injector j;
  if (injector_begin(&j, pid) != 0) return *why = "cannot take the program's registers", -1;
  unsigned long page = install_blob(&j, state_file, v.clock_gettime, why);
  injector_end(&j);
  *signal = j.signal;
  if (!page) return -1;
  /* Step 3, last: st_value is the symbol's address relative to the vDSO's link address. */
  size_t k = 0;
  for (; k < NNAMES; k++) {
    if (v.sym_at[k] && set_symbol(pid, &v, k, copy_of(page, NAMES[k].fn) - v.base + v.load) != 0) break;
  }
  if (k == NNAMES) return 0;
  while (k-- > 0) if (v.sym_at[k]) set_symbol(pid, &v, k, v.value[k]); /* all or none */
  return *why = "cannot write the vDSO's symbol table", -1;
}

#else

int fast_install(pid_t pid, const char *state_file, const char **why, int *signal) {
  (void)pid, (void)state_file;
  *signal = 0;
  *why = "the fast path is built for x86-64 only";
  return -1;
}

#endif
