/* sangja-logwriter: a container's log with rotation (`--log-opt max-size=S max-file=N`).
 *
 *   sangja-logwriter FIFO LOG MAX_SIZE MAX_FILE PIDFILE
 *
 * conmon 2.1.6 writes the k8s-file log itself and, at --log-size-max, only starts it again
 * (the old content is lost); it cannot keep older files.  So for max-file > 1 the engine
 * gives conmon a FIFO as its log path, and this program reads the records conmon writes
 * there and appends them to LOG.  Before a record would take LOG past MAX_SIZE it rotates:
 * LOG.(N-2) -> LOG.(N-1) ... LOG.1 -> LOG.2, LOG -> LOG.1, a new empty LOG.  Records are
 * never split across files (each ends with a newline: conmon ends a partial one too), nor
 * are the parts of one line, unless the file would grow past MAX_SIZE by more than
 * min(MAX_SIZE, 64 KiB) (see put).
 *
 * It starts before conmon: it makes the FIFO, forks and the first process exits once the
 * second wrote PIDFILE ("pid:start time", as the engine names processes), so the engine
 * waits only for that.  The second opens the FIFO (blocking until conmon opens it too),
 * takes an exclusive lock on FIFO.lock (the writer of the previous run of the container
 * may still be draining its FIFO: the two never write LOG at once), and copies until
 * conmon closes the FIFO.  It writes synchronously: when the disk is slower than the
 * container, conmon blocks on the full FIFO and the container on its full pipe, so
 * nothing is lost.  Readers (engine/logs.py) take a shared lock on LOG while they open
 * the set of files; a rotation takes an exclusive one, so a reader never sees a set that
 * is half rotated.  A write error is reported on stderr and the data dropped (conmon
 * must never block for ever, nor get EPIPE).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

static const char *log_path;
static long long max_size;
static int max_file;
static int log_fd = -1;
static long long log_size; /* bytes in LOG (since the last try to rotate, if one failed) */
static int write_failed;

static void fail(const char *what, const char *path) {
  fprintf(stderr, "sangja-logwriter: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

static void warn_once(const char *what) {
  if (!write_failed)
    fprintf(stderr, "sangja-logwriter: %s %s: %s (dropping log data)\n", what, log_path,
            strerror(errno));
  write_failed = 1;
}

static char *numbered(int i) {
  static char buf[2][PATH_MAX];
  static int which;
  char *b = buf[which ^= 1];
  if (i == 0)
    snprintf(b, PATH_MAX, "%s", log_path);
  else if (i < 0)
    snprintf(b, PATH_MAX, "%s.next", log_path);
  else
    snprintf(b, PATH_MAX, "%s.%d", log_path, i);
  return b;
}

static int open_log(const char *path, int flags) {
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | flags, 0600);
}

/* LOG becomes LOG.1 (and each LOG.i LOG.i+1, the oldest dropped), a new LOG takes its
 * place.  LOG always exists: the new file is made aside and renamed over it, after LOG.1
 * was made a second name of the old one.  If that fails (said on stderr), LOG goes on
 * and the next try comes after another max-size. */
static int rotate(void) {
  int fd = open_log(numbered(-1), O_TRUNC);
  if (fd < 0) {
    warn_once("cannot rotate");
    log_size = 0;
    return 0;
  }
  flock(log_fd, LOCK_EX); /* readers opening the set wait (they hold it shortly) */
  for (int i = max_file - 1; i >= 2; i--)
    if (rename(numbered(i - 1), numbered(i)) < 0 && errno != ENOENT)
      warn_once("cannot rotate");
  if (max_file == 2 && unlink(numbered(1)) < 0 && errno != ENOENT)
    warn_once("cannot rotate");
  if (link(log_path, numbered(1)) < 0 || rename(numbered(-1), log_path) < 0) {
    warn_once("cannot rotate");
    unlink(numbered(-1));
    close(fd);
    flock(log_fd, LOCK_UN);
    log_size = 0;
    return 0;
  }
  close(log_fd); /* drops the lock */
  log_fd = fd;
  log_size = 0;
  return 1;
}

static void write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(log_fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      warn_once("cannot write");
      return;
    }
    p += w;
    n -= (size_t)w;
    log_size += w;
  }
}

/* A record is "TIME STREAM TAG TEXT\n", TIME 35 bytes, TAG F (it ends a line) or P (a part
 * of one: conmon read the line in two pieces).  open_part[stream]: the stream's last
 * record was a P, its line goes on in the next record of that stream. */
#define TS_LEN 35
static int open_part[2];

static void note(const char *r, size_t len) {
  if (len < TS_LEN + 10 || r[TS_LEN] != ' ')
    return;
  int stream = memcmp(r + TS_LEN + 1, "stderr", 6) == 0;
  open_part[stream] = r[TS_LEN + 8] == 'P';
}

/* Whole records, rotating before one that would take the file past max-size (a record
 * longer than that gets a file of its own).  A line conmon cut in parts (it reads 8 KiB
 * at a time, and the other stream's records may come between the parts) is not split
 * between two files unless that would take the file `slack` past max-size: a reader of
 * the oldest file then does not start in the middle of a line. */
static long long slack;

static void put(const char *p, size_t n) {
  size_t start = 0, at = 0; /* [start, at): taken for the current file, not written yet */
  while (at < n) {
    const char *nl = memchr(p + at, '\n', n - at);
    size_t end = nl ? (size_t)(nl - p) + 1 : n;
    long long after = log_size + (long long)(end - start);
    int in_line = open_part[0] || open_part[1];
    if (after > max_size && (log_size > 0 || at > start) &&
        !(in_line && after <= max_size + slack)) {
      write_all(p + start, at - start);
      start = at;
      if (rotate())
        continue; /* the same record, for the new file */
    }
    note(p + at, end - at);
    at = end;
  }
  write_all(p + start, at - start);
}

static void copy(int in) {
  static char buf[BUF_SIZE];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(in, buf + have, sizeof buf - have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    have += (size_t)r;
    char *last = memrchr(buf, '\n', have);
    size_t whole = last ? (size_t)(last - buf) + 1 : (have == sizeof buf ? have : 0);
    put(buf, whole);
    memmove(buf, buf + whole, have - whole);
    have -= whole;
  }
  put(buf, have); /* conmon ends every record with a newline: normally nothing */
}

static long long start_time(void) {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0)
    close(fd);
  if (n <= 0)
    return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* comm may hold spaces: fields start after the last ')' */
  for (int field = 2; p && field < 22; field++)
    p = strchr(p + 1, ' ');
  return p ? atoll(p + 1) : -1;
}

static void write_pidfile(const char *path) {
  char tmp[PATH_MAX], text[64];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int len = snprintf(text, sizeof text, "%d:%lld\n", (int)getpid(), start_time());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    fail("cannot write", tmp);
  if (write(fd, text, (size_t)len) != len || close(fd) < 0)
    fail("cannot write", tmp);
  if (rename(tmp, path) < 0)
    fail("cannot write", path);
}

static long long number(const char *s, long long lo, const char *what) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || end == s || v < lo) {
    fprintf(stderr, "sangja-logwriter: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: sangja-logwriter FIFO LOG MAX_SIZE MAX_FILE PIDFILE\n");
    return 2;
  }
  const char *fifo = argv[1];
  log_path = argv[2];
  max_size = number(argv[3], 1, "max size");
  max_file = (int)number(argv[4], 2, "max file count");
  slack = max_size < 64 * 1024 ? max_size : 64 * 1024;
  if (max_file > 1000 || strlen(log_path) + 16 > PATH_MAX) {
    fprintf(stderr, "sangja-logwriter: bad max file count or log path\n");
    return 2;
  }
  if (unlink(fifo) < 0 && errno != ENOENT)
    fail("cannot replace", fifo);
  if (mkfifo(fifo, 0600) < 0)
    fail("cannot make", fifo);

  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0)
    fail("pipe", NULL);
  pid_t pid = fork();
  if (pid < 0)
    fail("fork", NULL);
  if (pid > 0) { /* the first process: done once the second named itself */
    char c;
    close(ready[1]);
    ssize_t r = read(ready[0], &c, 1);
    return r == 1 && c == 0 ? 0 : 1;
  }
  close(ready[0]);
  setsid();           /* out of the caller's session: a terminal's signals are not ours */
  if (chdir("/") < 0) /* no directory of the caller's held (the paths are absolute) */
    fail("cannot enter", "/");
  signal(SIGPIPE, SIG_IGN);
  write_pidfile(argv[5]);
  char ok = 0;
  if (write(ready[1], &ok, 1) != 1)
    return 1;
  close(ready[1]);

  int in = open(fifo, O_RDONLY | O_CLOEXEC); /* waits for conmon */
  if (in < 0)
    fail("cannot open", fifo);
  char lock_path[PATH_MAX];
  snprintf(lock_path, sizeof lock_path, "%s.lock", fifo);
  int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0)
    fail("cannot open", lock_path);
  while (flock(lock, LOCK_EX) < 0)
    if (errno != EINTR)
      fail("cannot lock", lock_path);
  log_fd = open_log(log_path, 0);
  if (log_fd < 0)
    fail("cannot open", log_path);
  struct stat st;
  if (fstat(log_fd, &st) < 0)
    fail("cannot stat", log_path);
  log_size = st.st_size;
  copy(in);
  return write_failed ? 1 : 0;
}
