/* The `iptables`/`ip6tables` netavark finds first on its PATH when the engine writes the
 * firewall itself (src/sangja/engine/firewall.py): netavark 1.4's iptables driver then
 * believes every rule and chain it asks about exists and every change it makes succeeds,
 * so it writes none, at no cost (the real iptables-nft costs milliseconds per exec, and
 * netavark execs it dozens of times per container).
 *
 * `--version` answers as iptables 1.8 does (the `iptables` crate netavark uses parses
 * "vX.Y.Z" to choose its flags); anything else prints nothing and succeeds.
 *
 * Freestanding, as the exec trampoline (no C library: ../freestanding/start.h): netavark
 * runs it about 30 times per container set-up, all on the way to a running container, and
 * an exec of this program costs 0.15-0.18 ms against 0.45 ms for a static glibc one. */
#include "../freestanding/start.h"

SJ_FREESTANDING_START(stub_main);

static int same(const char *a, const char *b) {
  while (*a && *a == *b)
    a++, b++;
  return *a == *b;
}

static int put(const char *s, long n) {
  while (n > 0) {
    long w = sj_sys3(__NR_write, 1, (long)s, n);
    if (w == -4) /* EINTR */
      continue;
    if (w <= 0)
      return -1;
    s += w, n -= w;
  }
  return 0;
}

__attribute__((noreturn, used)) void stub_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  int rc = 0;
  if (argc > 1 && same(argv[1], "--version")) {
    const char *name = argv[0], *end = argv[0];
    for (; *end; end++)
      if (*end == '/')
        name = end + 1;
    static const char tail[] = " v1.8.9 (nf_tables)\n";
    if (put(name, end - name) < 0 || put(tail, sizeof tail - 1) < 0)
      rc = 1;
  }
  for (;;)
    sj_sys3(__NR_exit_group, rc, 0, 0);
}
