/* A probe the security tests put in a container's rootfs (built static by
 * tests/seckit.py): it makes the calls an attacker (or a program) in the
 * container would make, and prints what the kernel answered.
 *
 *   probe sys NAME [ARG...]    one raw syscall: "NAME = RET" or "NAME = -1 errno N"
 *                              ARG: a number (0x.., -1), s:TEXT (a string), or
 *                              b:N (a zeroed buffer of N bytes)
 *   probe trap NAME [ARG...]   the same with a SIGSYS handler: "trapped NAME" if
 *                              the call raised SIGSYS, then the call's result
 *   probe caps-raise           capset: every capability in every set, and each
 *                              ambient raise; prints what the kernel said
 *   probe mknod PATH MAJ MIN   a character device node
 *   probe open-write PATH      open(PATH, O_WRONLY): "ok" or "errno N"
 *   probe dumpable             prctl(PR_GET_DUMPABLE)
 *   probe status               the Uid, Cap*, NoNewPrivs and Seccomp lines of
 *                              /proc/self/status (for a setuid or file-caps copy)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const struct {
  const char *name;
  long nr;
} calls[] = {
    {"unshare", SYS_unshare},       {"mount", SYS_mount},
    {"umount2", SYS_umount2},       {"keyctl", SYS_keyctl},
    {"add_key", SYS_add_key},       {"clone3", SYS_clone3},
    {"personality", SYS_personality}, {"socket", SYS_socket},
    {"umask", SYS_umask},           {"getppid", SYS_getppid},
    {"mkdirat", SYS_mkdirat},       {"uname", SYS_uname},
    {"chroot", SYS_chroot},         {"setns", SYS_setns},
    {"ptrace", SYS_ptrace},         {"bpf", SYS_bpf},
    {"reboot", SYS_reboot},         {"init_module", SYS_init_module},
    {"sethostname", SYS_sethostname}, {"getpid", SYS_getpid},
    {"kcmp", SYS_kcmp},             {"syslog", SYS_syslog},
    {"pivot_root", SYS_pivot_root}, {"open_tree", SYS_open_tree},
    {"fsopen", SYS_fsopen},         {"mknodat", SYS_mknodat},
    {"openat", SYS_openat},         {"getpriority", SYS_getpriority},
    {"acct", SYS_acct},             {"swapon", SYS_swapon},
    {"getcwd", SYS_getcwd},         {"faccessat", SYS_faccessat},
    {"faccessat2", SYS_faccessat2}, {"openat2", SYS_openat2},
    {"close_range", SYS_close_range},
};

static long lookup(const char *name) {
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
    if (strcmp(calls[i].name, name) == 0)
      return calls[i].nr;
  fprintf(stderr, "probe: unknown call %s\n", name);
  exit(2);
}

static long arg(const char *s) {
  if (strncmp(s, "s:", 2) == 0)
    return (long)(s + 2);
  if (strncmp(s, "b:", 2) == 0)
    return (long)calloc(1, strtoul(s + 2, NULL, 0));
  return (long)strtoull(s, NULL, 0);
}

static volatile sig_atomic_t trapped;

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  trapped = 1;
}

static int do_sys(int argc, char **argv, int trap) {
  if (argc < 1)
    return 2;
  long a[6] = {0};
  for (int i = 1; i < argc && i <= 6; i++)
    a[i - 1] = arg(argv[i]);
  if (trap) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
  }
  errno = 0;
  long rc = syscall(lookup(argv[0]), a[0], a[1], a[2], a[3], a[4], a[5]);
  int e = errno;
  if (trapped)
    printf("trapped %s\n", argv[0]);
  if (rc == -1)
    printf("%s = -1 errno %d\n", argv[0], e);
  else
    printf("%s = %ld\n", argv[0], rc);
  return 0;
}

static int caps_raise(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0xff, sizeof data);
  if (syscall(SYS_capset, &hdr, data) < 0)
    printf("capset all = -1 errno %d\n", errno);
  else
    printf("capset all = 0\n");
  int raised = 0;
  for (int c = 0; c < 64; c++)
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) == 0)
      raised++;
  printf("ambient raised %d\n", raised);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 2)
    return 2;
  const char *cmd = argv[1];
  if (strcmp(cmd, "sys") == 0)
    return do_sys(argc - 2, argv + 2, 0);
  if (strcmp(cmd, "trap") == 0)
    return do_sys(argc - 2, argv + 2, 1);
  if (strcmp(cmd, "caps-raise") == 0)
    return caps_raise();
  if (strcmp(cmd, "mknod") == 0 && argc == 5) {
    dev_t dev = makedev(strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
    if (mknod(argv[2], S_IFCHR | 0600, dev) < 0)
      printf("mknod = -1 errno %d\n", errno);
    else
      printf("mknod = 0\n");
    return 0;
  }
  if (strcmp(cmd, "open-write") == 0 && argc == 3) {
    int fd = open(argv[2], O_WRONLY | O_NOCTTY);
    if (fd < 0)
      printf("open = -1 errno %d\n", errno);
    else
      printf("open = ok\n");
    return 0;
  }
  if (strcmp(cmd, "status") == 0) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
      if (strncmp(line, "Uid:", 4) == 0 || strncmp(line, "Cap", 3) == 0 ||
          strncmp(line, "NoNewPrivs:", 11) == 0 || strncmp(line, "Seccomp:", 8) == 0)
        fputs(line, stdout);
    return 0;
  }
  if (strcmp(cmd, "dumpable") == 0) {
    printf("dumpable = %d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    return 0;
  }
  fprintf(stderr, "probe: unknown command %s\n", cmd);
  return 2;
}
