/* The `iptables`/`ip6tables` netavark finds first on its PATH when the engine writes the
 * firewall itself (src/sangja/engine/firewall.py): netavark 1.4's iptables driver then
 * believes every rule and chain it asks about exists and every change it makes succeeds,
 * so it writes none, at no cost (the real iptables-nft costs milliseconds per exec, and
 * netavark execs it dozens of times per container).
 *
 * `--version` answers as iptables 1.8 does (the `iptables` crate netavark uses parses
 * "vX.Y.Z" to choose its flags); anything else prints nothing and succeeds.
 *
 * On x86-64 and arm64 it is built without a C library (setup.py: -nostdlib): netavark
 * runs it about 30 times per container set-up, all on the path to a running container,
 * and an exec of this 9 kB program costs 180 us against 450 us for a static glibc one. */

#if defined(SANGJA_STUB_FREESTANDING)

#if defined(__x86_64__)
#define SYS_WRITE      1
#define SYS_EXIT_GROUP 231
static long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
/* the kernel's initial stack: argc, argv[0..argc-1], NULL, envp... */
__asm__(".text\n.globl _start\n_start:\n"
        "  xor %ebp, %ebp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call stub_main\n  hlt\n");
#elif defined(__aarch64__)
#define SYS_WRITE      64
#define SYS_EXIT_GROUP 94
static long sys3(long n, long a, long b, long c) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
__asm__(".text\n.globl _start\n_start:\n"
        "  mov x29, #0\n  mov x0, sp\n  bl stub_main\n  brk #0\n");
#else
#error "no freestanding start for this architecture (setup.py builds it with libc)"
#endif

static unsigned long len(const char *s) {
  const char *p = s;
  while (*p)
    p++;
  return (unsigned long)(p - s);
}

static int same(const char *a, const char *b) {
  while (*a && *a == *b)
    a++, b++;
  return *a == *b;
}

static int put(const char *s, unsigned long n) {
  while (n) {
    long w = sys3(SYS_WRITE, 1, (long)s, (long)n);
    if (w == -4) /* EINTR */
      continue;
    if (w <= 0)
      return -1;
    s += w, n -= (unsigned long)w;
  }
  return 0;
}

__attribute__((noreturn, used)) void stub_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  int rc = 0;
  if (argc > 1 && same(argv[1], "--version")) {
    const char *name = argv[0];
    for (const char *p = argv[0]; *p; p++)
      if (*p == '/')
        name = p + 1;
    static const char tail[] = " v1.8.9 (nf_tables)\n";
    if (put(name, len(name)) < 0 || put(tail, sizeof tail - 1) < 0)
      rc = 1;
  }
  for (;;)
    sys3(SYS_EXIT_GROUP, rc, 0, 0);
}

#else /* with the C library */

#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    static const char tail[] = " v1.8.9 (nf_tables)\n";
    if (write(1, name, strlen(name)) < 0 || write(1, tail, sizeof tail - 1) < 0)
      return 1;
  }
  return 0;
}

#endif
