/* Write stamps (stamps.ts, docs/live.md "Write stamps"): the virtual time of every write a program
   makes to a connected IPv4 socket, in a ring the runtime reads after each quantum. */
#include "shim.h"
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>


/* Write stamps (LIVESIM_STAMPS): a ring the runtime reads after each quantum (stamps.ts). Before
   every write to a connected IPv4 socket the shim appends (virtual time of the write, offset in the
   socket's stream of its first byte, bytes asked, local port, peer port, peer address), so that the
   runtime stamps each byte it relays with the virtual time the program wrote it, not the time the
   runtime read it. Appended before the system call, a record is there when its bytes are; matched by
   offset, a record of a write that wrote less (or nothing) does no harm: the next one starts where
   the bytes really went. The ring's layout: struct stamp and STAMP_* in layout.h. */
static volatile unsigned long long *stamp_head;
static struct stamp *stamp_ring;

void map_stamps(void) {
  const char *file = getenv("LIVESIM_STAMPS");
  if (!file || !*file) return;
  int fd = open(file, O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  size_t size = STAMP_HEADER_BYTES + (size_t)STAMP_SLOTS * sizeof(struct stamp);
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < size) { close(fd); return; }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return;
  stamp_head = (volatile unsigned long long *)p;
  stamp_ring = (struct stamp *)((char *)p + STAMP_HEADER_BYTES);
}

/* Write stamps: which socket an fd is (cached; new sockets and close() forget), the virtual time of
   each write, appended to the ring after the write (so the length is what was written). */
#define FD_CACHE 4096
static unsigned long long fd_key[FD_CACHE]; /* 0 unknown, 1 not a connected IPv4 socket, else 1<<63 | raddr<<32 | lport<<16 | rport */
static unsigned long long fd_off[FD_CACHE]; /* bytes written to the socket so far */

static void forget_fd(int fd) { if (fd >= 0 && fd < FD_CACHE) { fd_key[fd] = 0; fd_off[fd] = 0; } }

static unsigned long long key_of(int fd) {
  if (fd < 0 || fd >= FD_CACHE) return 1;
  if (fd_key[fd]) return fd_key[fd];
  struct sockaddr_in l, r;
  socklen_t ll = sizeof l, rl = sizeof r;
  unsigned long long k = 1;
  int e = errno;
  if (getsockname(fd, (struct sockaddr *)&l, &ll) == 0 && l.sin_family == AF_INET) {
    if (getpeername(fd, (struct sockaddr *)&r, &rl) != 0) { errno = e; return 1; } /* not connected yet: ask again later */
    k = (1ULL << 63) | ((unsigned long long)ntohl(r.sin_addr.s_addr) << 32) | ((unsigned long long)ntohs(l.sin_port) << 16) | ntohs(r.sin_port);
  }
  errno = e;
  fd_key[fd] = k;
  return k;
}

static long long stamp_now(void) {
  if (state) { long long v = fast_ns(); if (v >= 0) return v; }
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return ns_of(&t);
}

static void stamp(int fd, unsigned long long k, long long vt, size_t len) {
  unsigned long long i = __atomic_fetch_add(stamp_head, 1ULL, __ATOMIC_ACQ_REL);
  struct stamp *e = &stamp_ring[i % STAMP_SLOTS];
  e->vt = vt;
  e->off = fd_off[fd];
  e->len = len > 0xffffffffU ? 0xffffffffU : (unsigned int)len;
  e->lport = (unsigned short)(k >> 16);
  e->rport = (unsigned short)k;
  e->raddr = (unsigned int)(k >> 32) & 0x7fffffffU;
  __atomic_store_n(&e->seq, i + 1, __ATOMIC_RELEASE);
}

/* Before a write of len bytes to fd: stamp it if fd is a connected IPv4 socket; returns whether it did. */
static int pre_write(int fd, size_t len) {
  if (!stamp_head || !ready || in_clock) return 0;
  unsigned long long k = key_of(fd);
  if (!(k >> 63)) return 0;
  stamp(fd, k, stamp_now(), len);
  return 1;
}

/* After it: where the socket's next byte goes. */
static ssize_t post_write(int fd, int stamped, ssize_t r) {
  if (stamped && r > 0) __atomic_fetch_add(&fd_off[fd], (unsigned long long)r, __ATOMIC_RELAXED);
  return r;
}

static size_t iov_bytes(const struct iovec *iov, int cnt) {
  size_t n = 0;
  for (int i = 0; iov && i < cnt; i++) n += iov[i].iov_len;
  return n;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef int (*close_fn)(int);
typedef int (*socket_fn)(int, int, int);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n) {
  static write_fn next;
  if (!next) next = (write_fn)dlsym(RTLD_NEXT, "write");
  int st = pre_write(fd, n);
  return post_write(fd, st, snd_timeout_ns(fd) ? timed_write(next, fd, buf, n) : next(fd, buf, n));
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  static writev_fn next;
  if (!next) next = (writev_fn)dlsym(RTLD_NEXT, "writev");
  int st = pre_write(fd, iov_bytes(iov, cnt));
  return post_write(fd, st, snd_timeout_ns(fd) ? timed_writev(next, fd, iov, cnt) : next(fd, iov, cnt));
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen) {
  static sendto_fn next;
  if (!next) next = (sendto_fn)dlsym(RTLD_NEXT, "sendto");
  int st = to ? 0 : pre_write(fd, n);
  return post_write(fd, st, snd_timeout_ns(fd) ? timed_sendto(next, fd, buf, n, flags, to, tolen) : next(fd, buf, n, flags, to, tolen));
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags) { return sendto(fd, buf, n, flags, NULL, 0); }

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  static sendmsg_fn next;
  if (!next) next = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
  int st = !msg || msg->msg_name ? 0 : pre_write(fd, iov_bytes(msg->msg_iov, (int)msg->msg_iovlen));
  return post_write(fd, st, snd_timeout_ns(fd) ? timed_sendmsg(next, fd, msg, flags) : next(fd, msg, flags));
}

SHIM_EXPORT int close(int fd) {
  static close_fn next;
  if (!next) next = (close_fn)dlsym(RTLD_NEXT, "close");
  forget_fd(fd);
  timers_fd_closed(fd);
  timeouts_forget(fd);
  return next(fd);
}

/* A descriptor copied onto another: the copy is the same socket (its stream offset and its timeouts
   are the original's); whatever the target was is closed. */
static int copied_fd(int from, int to) {
  if (to >= 0 && to != from) {
    forget_fd(to);
    timers_fd_closed(to);
    if (from >= 0 && from < FD_CACHE && to < FD_CACHE) {
      fd_key[to] = fd_key[from];
      fd_off[to] = fd_off[from];
    }
    timeouts_copy(from, to);
  }
  return to;
}

typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*socketpair_fn)(int, int, int, int *);

SHIM_EXPORT int dup(int fd) {
  static dup_fn next;
  if (!next) next = (dup_fn)dlsym(RTLD_NEXT, "dup");
  return copied_fd(fd, next(fd));
}

SHIM_EXPORT int dup2(int from, int to) {
  static dup2_fn next;
  if (!next) next = (dup2_fn)dlsym(RTLD_NEXT, "dup2");
  return copied_fd(from, next(from, to));
}

SHIM_EXPORT int dup3(int from, int to, int flags) {
  static dup3_fn next;
  if (!next) next = (dup3_fn)dlsym(RTLD_NEXT, "dup3");
  return copied_fd(from, next(from, to, flags));
}

SHIM_EXPORT int socket(int domain, int type, int protocol) {
  static socket_fn next;
  if (!next) next = (socket_fn)dlsym(RTLD_NEXT, "socket");
  int fd = next(domain, type, protocol);
  forget_fd(fd);
  timeouts_forget(fd);
  return fd;
}

SHIM_EXPORT int socketpair(int domain, int type, int protocol, int sv[2]) {
  static socketpair_fn next;
  if (!next) next = (socketpair_fn)dlsym(RTLD_NEXT, "socketpair");
  int r = next(domain, type, protocol, sv);
  for (int i = 0; r == 0 && i < 2; i++) {
    forget_fd(sv[i]);
    timeouts_forget(sv[i]);
  }
  return r;
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static accept4_fn next;
  if (!next) next = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
  int c = rcv_timeout_ns(fd) ? timed_accept4(next, fd, addr, len, flags) : next(fd, addr, len, flags);
  forget_fd(c);
  timeouts_copy(fd, c); /* a connection inherits its listener's timeouts */
  return c;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len) { return accept4(fd, addr, len, 0); }

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  static connect_fn next;
  if (!next) next = (connect_fn)dlsym(RTLD_NEXT, "connect");
  forget_fd(fd);
  return snd_timeout_ns(fd) ? timed_connect(next, fd, addr, len) : next(fd, addr, len);
}