/* What a program built without a C library needs first (csrc/sangja-exec/ and
 * csrc/iptables-stub/, built with setup.py's FREESTANDING_FLAGS): its entry point and a
 * raw system call.  Both are programs the kernel execs often on a hot path, where a
 * C library's start-up would be most of their cost.
 *
 * SJ_FREESTANDING_START(fn) defines _start, which calls `void fn(long *sp)` with the
 * kernel's initial stack (argc, argv[0..argc-1], NULL, envp..., NULL); fn never returns.
 * sj_sys3(nr, a, b, c) is the system call `nr` (asm/unistd.h's __NR_*) with up to three
 * arguments; it returns the kernel's result (-errno on failure). */
#ifndef SJ_FREESTANDING_START_H
#define SJ_FREESTANDING_START_H

#include <asm/unistd.h>

#if defined(__x86_64__)
#define SJ_FREESTANDING_START(fn)                                                                  \
  __asm__(".text\n"                                                                                \
          ".globl _start\n"                                                                        \
          ".type _start,@function\n"                                                               \
          "_start:\n"                                                                              \
          "  xor %ebp, %ebp\n"                                                                     \
          "  mov %rsp, %rdi\n"                                                                     \
          "  and $-16, %rsp\n"                                                                     \
          "  call " #fn "\n"                                                                       \
          "  hlt\n")

static inline long sj_sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
#elif defined(__aarch64__)
#define SJ_FREESTANDING_START(fn)                                                                  \
  __asm__(".text\n"                                                                                \
          ".globl _start\n"                                                                        \
          ".type _start,%function\n"                                                               \
          "_start:\n"                                                                              \
          "  mov x29, #0\n"                                                                        \
          "  mov x30, #0\n"                                                                        \
          "  mov x0, sp\n"                                                                         \
          "  bl " #fn "\n"                                                                         \
          "  brk #0\n")

static inline long sj_sys3(long n, long a, long b, long c) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
#else
#error "sangja's freestanding programs know x86_64 and aarch64"
#endif

#endif
