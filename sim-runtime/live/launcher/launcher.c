// livesim-launcher: the command of a live component's own container on Kubernetes (live.image). It
// waits in that container until the sim-runtime, in another container of the same pod, hands it a
// program to start, starts it there, and reports its pid and, later, how it ended. Statically
// linked: it runs in any image, with or without a libc of its own (launcher.ts builds it).
//
//   livesim-launcher DIR
//
// The handshake, all in DIR (a directory on a volume both containers mount; launcher.ts is the other
// side):
//   1. It creates DIR (and its parents), writes DIR/launcher.pid (its own pid, for the runtime's messages) and makes
//      the FIFO DIR/request, then opens the FIFO for reading: that waits until the runtime opens it
//      for writing.
//   2. The runtime writes one request and closes the FIFO: "livesim-launch/1", the working
//      directory, the log file, the number of arguments, the arguments, the number of environment
//      entries, the entries (NAME=value), each ending in a NUL byte.
//      The program's environment is the request's entries over the launcher's own (the image's ENV
//      and what the pod sets), so that the image's PATH and the like stay.
//   3. It forks. The child leads a new session and process group (as the runtime's own live programs
//      do: a signals cell stops and continues that group), appends stdout and stderr to the log file,
//      takes /dev/null as stdin, changes to the working directory and execs the program, looked up on
//      the request's PATH. Once the child has exec'd (or failed to), the parent writes its pid to
//      DIR/pid.
//   4. When the program ends, it writes DIR/status ("exit CODE" or "signal NUMBER") and exits with
//      CODE, or 128 + NUMBER. SIGTERM, SIGINT and SIGHUP that it receives meanwhile (the kubelet
//      stopping the container) go to the program's process group.
// Files appear whole (written to a temporary name, then renamed). A bad request, or a program that
// cannot be executed (status "exit 127", the reason in the log), ends it with a message on stderr.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAGIC "livesim-launch/1"
#define MAX_REQUEST (16 << 20)
#define MAX_ITEMS 65536

static volatile sig_atomic_t child_pgid;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("livesim-launcher: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(125);
}

static char *join(const char *dir, const char *name) {
  char *p;
  if (asprintf(&p, "%s/%s", dir, name) < 0) die("out of memory");
  return p;
}

// Write `text` to DIR/NAME through DIR/.NAME.tmp and rename(2), so the reader never sees half of it.
static void publish(const char *dir, const char *name, const char *text) {
  char *tmp, *dst = join(dir, name);
  if (asprintf(&tmp, "%s/.%s.tmp", dir, name) < 0) die("out of memory");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", tmp, strerror(errno));
  size_t n = strlen(text);
  if (write(fd, text, n) != (ssize_t)n || close(fd) != 0) die("%s: %s", tmp, strerror(errno));
  if (rename(tmp, dst) != 0) die("rename %s: %s", dst, strerror(errno));
  free(tmp);
  free(dst);
}

static void forward(int sig) {
  if (child_pgid > 0) kill(-child_pgid, sig);
}

// The next NUL-terminated field of the request at *pos, or a message and exit.
static char *field(char *buf, size_t len, size_t *pos, const char *what) {
  if (*pos >= len) die("request: no %s", what);
  char *s = buf + *pos;
  char *end = memchr(s, '\0', len - *pos);
  if (!end) die("request: %s does not end in a NUL byte", what);
  *pos = (size_t)(end - buf) + 1;
  return s;
}

static size_t count(char *buf, size_t len, size_t *pos, const char *what) {
  char *s = field(buf, len, pos, what), *end;
  errno = 0;
  unsigned long n = strtoul(s, &end, 10);
  if (errno || end == s || *end || n > MAX_ITEMS) die("request: bad %s %s", what, s);
  return n;
}

int main(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '\0') {
    fprintf(stderr, "usage: livesim-launcher DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  // mkdir -p: DIR is below the pod's work directory, which the runtime may not have made yet.
  char *parents = strdup(dir);
  if (!parents) die("out of memory");
  for (char *p = parents + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(parents, 0755) != 0 && errno != EEXIST) die("mkdir %s: %s", parents, strerror(errno));
    *p = '/';
  }
  free(parents);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("mkdir %s: %s", dir, strerror(errno));
  char self[32];
  snprintf(self, sizeof self, "%d\n", (int)getpid());
  publish(dir, "launcher.pid", self);

  char *fifo = join(dir, "request");
  struct stat st;
  if (lstat(fifo, &st) == 0) {
    if (!S_ISFIFO(st.st_mode)) die("%s exists and is not a FIFO", fifo);
  } else if (mkfifo(fifo, 0600) != 0) {
    die("mkfifo %s: %s", fifo, strerror(errno));
  }
  int fd;
  do fd = open(fifo, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) die("open %s: %s", fifo, strerror(errno));

  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) die("out of memory");
  for (;;) {
    if (len == cap) {
      if (cap >= MAX_REQUEST) die("request larger than %d bytes", MAX_REQUEST);
      cap *= 2;
      if (!(buf = realloc(buf, cap))) die("out of memory");
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("read %s: %s", fifo, strerror(errno));
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  unlink(fifo);

  size_t pos = 0;
  if (strcmp(field(buf, len, &pos, "version"), MAGIC) != 0) die("request: expected version %s", MAGIC);
  char *cwd = field(buf, len, &pos, "working directory");
  char *log = field(buf, len, &pos, "log file");
  size_t nargs = count(buf, len, &pos, "argument count");
  if (nargs == 0) die("request: no program");
  char **args = calloc(nargs + 1, sizeof *args);
  for (size_t i = 0; i < nargs; i++) args[i] = field(buf, len, &pos, "argument");
  size_t nenv = count(buf, len, &pos, "environment count");
  size_t nown = 0;
  while (environ[nown]) nown++;
  char **env = calloc(nenv + nown + 1, sizeof *env);
  if (!args || !env) die("out of memory");
  for (size_t i = 0; i < nenv; i++) {
    env[i] = field(buf, len, &pos, "environment entry");
    if (!strchr(env[i], '=')) die("request: environment entry without '='");
  }
  if (pos != len) die("request: %zu bytes after its end", len - pos);
  // The container's own environment (the image's ENV) under the request's.
  size_t n = nenv;
  for (size_t i = 0; i < nown; i++) {
    size_t name = strcspn(environ[i], "=");
    int overridden = 0;
    for (size_t j = 0; j < nenv && !overridden; j++) overridden = strncmp(env[j], environ[i], name + 1) == 0;
    if (!overridden) env[n++] = environ[i];
  }

  struct sigaction sa = {0};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  // Closed by the child's exec (or exit): the parent publishes the pid only then, so the runtime never
  // sees a pid that is not yet the program's, nor one outside its own process group.
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) != 0) die("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    close(gate[0]);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    setsid();
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0) {
      fprintf(stderr, "livesim-launcher: log %s: %s\n", log, strerror(errno));
      _exit(127);
    }
    dup2(out, 1);
    dup2(out, 2);
    if (in >= 0) dup2(in, 0);
    if (chdir(cwd) != 0) {
      fprintf(stderr, "livesim-launcher: working directory %s: %s\n", cwd, strerror(errno));
      _exit(127);
    }
    // execvp looks the program up on PATH of `environ`: the request's.
    environ = env;
    execvp(args[0], args);
    fprintf(stderr, "livesim-launcher: cannot execute %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(gate[1]);
  char c;
  while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
  }
  close(gate[0]);
  child_pgid = pid;
  char text[32];
  snprintf(text, sizeof text, "%d\n", (int)pid);
  publish(dir, "pid", text);

  int status;
  pid_t w;
  do w = waitpid(pid, &status, 0);
  while (w < 0 && errno == EINTR);
  if (w < 0) die("waitpid: %s", strerror(errno));
  if (WIFSIGNALED(status)) {
    snprintf(text, sizeof text, "signal %d\n", WTERMSIG(status));
    publish(dir, "status", text);
    return 128 + WTERMSIG(status);
  }
  snprintf(text, sizeof text, "exit %d\n", WEXITSTATUS(status));
  publish(dir, "status", text);
  return WEXITSTATUS(status);
}
