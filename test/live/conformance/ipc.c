/* Timeouts of waits for signals, messages and socket buffers: sigtimedwait, mq_timedreceive
   (an absolute CLOCK_REALTIME deadline), SO_RCVTIMEO on a recv and SO_SNDTIMEO on a send into a
   full socket buffer. The kernel counts all of them on the real clock. */
#include "check.h"
#include <fcntl.h>
#include <mqueue.h>
#include <sys/socket.h>

/* n waits of d by `once` (d), each of which must fail with `expected` in errno. */
static void waits(const char *call, long long d, int n, int (*once)(long long), int expected) {
  long long t0 = mono();
  for (int i = 0; i < n; i++) {
    errno = 0;
    int r = once(d);
    if (r != -1 || errno != expected) { result(call, n * d, mono() - t0, n, unless(0, "wait %d returned %d (%s)", i + 1, r, ERRNO_TEXT)); return; }
  }
  result(call, n * d, mono() - t0, n, NULL);
}

static int once_sigtimedwait(long long d) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_BLOCK, &s, NULL);
  struct timespec t = ts_ns(d);
  return sigtimedwait(&s, NULL, &t);
}
static void do_sigtimedwait(const char *call, long long d, int n) { waits(call, d, n, once_sigtimedwait, EAGAIN); }

static mqd_t queue; /* empty */
static int once_mq_timedreceive(long long d) {
  char msg[64];
  struct timespec t = after(CLOCK_REALTIME, d);
  return (int)mq_timedreceive(queue, msg, sizeof msg, NULL, &t);
}
static void do_mq_timedreceive(const char *call, long long d, int n) {
  char name[64];
  snprintf(name, sizeof name, "/livesim-conformance-%d", (int)getpid());
  struct mq_attr attr = { .mq_maxmsg = 1, .mq_msgsize = 64 };
  queue = mq_open(name, O_CREAT | O_RDWR, 0600, &attr);
  if (queue == (mqd_t)-1) { failed(call, "mq_open"); return; }
  mq_unlink(name);
  waits(call, d, n, once_mq_timedreceive, ETIMEDOUT);
}

static int sock[2]; /* a socket pair whose other end neither writes nor reads */
static int set_timeout(int opt, long long d) { struct timeval t = tv_ns(d); return setsockopt(sock[0], SOL_SOCKET, opt, &t, sizeof t); }
static int once_recv(long long d) {
  char b[16];
  set_timeout(SO_RCVTIMEO, d);
  return (int)recv(sock[0], b, sizeof b, 0);
}
static int once_send(long long d) {
  static char b[65536];
  set_timeout(SO_SNDTIMEO, d);
  return (int)send(sock[0], b, sizeof b, 0);
}
static void do_recv(const char *call, long long d, int n) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sock) != 0) { failed(call, "socketpair"); return; }
  waits(call, d, n, once_recv, EAGAIN);
}
/* The send buffer is filled first (non-blocking), so the timed send can only wait. */
static void do_send(const char *call, long long d, int n) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sock) != 0) { failed(call, "socketpair"); return; }
  static char b[65536];
  fcntl(sock[0], F_SETFL, O_NONBLOCK);
  while (send(sock[0], b, sizeof b, 0) > 0 || send(sock[0], b, 1, 0) > 0) {}
  fcntl(sock[0], F_SETFL, 0);
  waits(call, d, n, once_send, EAGAIN);
}

int main(void) {
  check("sigtimedwait", do_sigtimedwait, 100 * MS, 1);
  check("sigtimedwait x5", do_sigtimedwait, 30 * MS, 5);
  check("mq_timedreceive", do_mq_timedreceive, 100 * MS, 1);
  check("recv(SO_RCVTIMEO)", do_recv, 100 * MS, 1);
  check("recv(SO_RCVTIMEO) x5", do_recv, 30 * MS, 5);
  check("send(SO_SNDTIMEO)", do_send, 100 * MS, 1);
  return 0;
}
