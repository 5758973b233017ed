/* sangja's exec trampoline: the program the container's init (an exec'd
 * process, a hook the init runs) executes last, and which executes the
 * container's program.
 *
 * Why: until its execve the init is a copy of the runtime's Python process,
 * so /proc/self/exe is the host's interpreter.  The kernel resolves the
 * interpreter of the program being executed ("#!/proc/self/exe", an ELF
 * PT_INTERP, binfmt_misc) while /proc/self/exe still names the execing
 * process's binary: a container whose program names /proc/self/exe would
 * run the host's interpreter inside it, which could then open it for
 * writing (CVE-2019-5736).  The init therefore execs this program from a
 * sealed memfd first (execveat), and this program execs the real one: by
 * then /proc/self/exe is that sealed memfd, which nothing can write.
 *
 *   argv: [path, report, argv0, argv1, ...], envp: the program's
 *   report: "-" nobody to tell; otherwise a mode and an fd:
 *     e<fd>  the errno, as a native int (a hook's error pipe)
 *     m<fd>  a struct sj_msg SJ_MSG_ERROR with the text (the exec sync socket)
 *     t<fd>  a text line (stderr)
 *   The report fd is made close-on-exec first: success closes it.
 *   Started any other way (as an interpreter: "#!/proc/self/exe") it refuses.
 *
 * Freestanding: no libc, no allocation, raw syscalls (_start below), so the
 * binary is a few KiB and its execve costs next to nothing.
 */
#include <stddef.h>
#include <stdint.h>

#include "../freestanding/start.h"
#include "../launch/sync.h"

#define T_FD_CLOEXEC 1
#define T_F_SETFD    2

SJ_FREESTANDING_START(tramp_main);

/* The compiler may call these for struct copies and zeroing; static: they are
 * this program's own (its calls bind to them), no library's. */
__attribute__((used)) static void *memset(void *s, int c, size_t n) {
  volatile unsigned char *p = s;
  while (n--)
    *p++ = (unsigned char)c;
  return s;
}

__attribute__((used)) static void *memcpy(void *d, const void *s, size_t n) {
  volatile unsigned char *q = d;
  const unsigned char *p = s;
  while (n--)
    *q++ = *p++;
  return d;
}

__attribute__((noreturn)) static void die(int code) {
  for (;;)
    sj_sys3(__NR_exit_group, code, 0, 0);
}

/* Go's texts for execve's errors (what runc prints, and engines match). */
static const char *errtext(long e) {
  switch (e) {
  case 1:
    return "operation not permitted";
  case 2:
    return "no such file or directory";
  case 5:
    return "input/output error";
  case 7:
    return "argument list too long";
  case 8:
    return "exec format error";
  case 11:
    return "resource temporarily unavailable";
  case 12:
    return "cannot allocate memory";
  case 13:
    return "permission denied";
  case 14:
    return "bad address";
  case 20:
    return "not a directory";
  case 21:
    return "is a directory";
  case 22:
    return "invalid argument";
  case 23:
    return "too many open files in system";
  case 24:
    return "too many open files";
  case 26:
    return "text file busy";
  case 36:
    return "file name too long";
  case 40:
    return "too many levels of symbolic links";
  case 80:
    return "accessing a corrupted shared library";
  }
  return NULL;
}

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s) {
  while (*s && b->len + 1 < b->cap)
    b->p[b->len++] = *s++;
  b->p[b->len] = '\0';
}

static void put_num(struct buf *b, long v) {
  char digits[24];
  int n = 0;
  unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
  do
    digits[n++] = (char)('0' + u % 10);
  while ((u /= 10) && n < (int)sizeof digits);
  if (v < 0)
    put(b, "-");
  char one[2] = {0, 0};
  while (n--) {
    one[0] = digits[n];
    put(b, one);
  }
}

/* "e12" -> mode 'e', fd 12; "-" -> mode '-'.  0, or -1 if it is not that. */
static int parse_report(const char *s, char *mode, long *fd) {
  if (s[0] == '-' && s[1] == '\0') {
    *mode = '-';
    *fd = -1;
    return 0;
  }
  if (s[0] != 'e' && s[0] != 'm' && s[0] != 't')
    return -1;
  *mode = s[0];
  long v = 0;
  const char *p = s + 1;
  if (!*p)
    return -1;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || v > 1000000)
      return -1;
    v = v * 10 + (*p - '0');
  }
  *fd = v;
  return 0;
}

static void write_all(long fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    long n = sj_sys3(__NR_write, fd, (long)p, (long)len);
    if (n == -4) /* EINTR */
      continue;
    if (n <= 0)
      return;
    p += n;
    len -= (size_t)n;
  }
}

static void report(char mode, long fd, const char *argv0, long e) {
  if (mode == 'e') {
    int v = (int)e;
    write_all(fd, &v, sizeof v);
    return;
  }
  struct sj_msg msg;
  memset(&msg, 0, sizeof msg);
  struct buf b = {msg.text, 0, sizeof msg.text};
  put(&b, "exec: \"");
  put(&b, argv0);
  put(&b, "\": ");
  const char *t = errtext(e);
  if (t) {
    put(&b, t);
  } else {
    put(&b, "errno ");
    put_num(&b, e);
  }
  if (mode == 'm') {
    msg.type = SJ_MSG_ERROR;
    msg.err = (int32_t)e;
    write_all(fd, &msg, sizeof msg); /* one packet on the SOCK_SEQPACKET socket */
    return;
  }
  put(&b, "\n");
  write_all(fd, b.p, b.len);
}

__attribute__((noreturn, used)) void tramp_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  char mode;
  long fd;
  if (argc < 3 || parse_report(argv[1], &mode, &fd) < 0) {
    static const char no[] = "sangja exec trampoline: not a command\n";
    write_all(2, no, sizeof no - 1);
    die(127);
  }
  if (fd > 2)
    sj_sys3(__NR_fcntl, fd, T_F_SETFD, T_FD_CLOEXEC);
  long rc = sj_sys3(__NR_execve, (long)argv[0], (long)(argv + 2), (long)envp);
  if (mode != '-')
    report(mode, fd, argv[2], -rc);
  die(127);
}
