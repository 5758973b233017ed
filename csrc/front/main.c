/* `sangja`: the front end. It parses runc's global flags and the verb as the Python CLI does
 * (sangja/cli/main.py: `--flag v`, `--flag=v`, Go's `-flag`), and runs `state`, `start`,
 * `kill` and `delete` itself when nothing in them needs Python: no hooks, the cgroupfs
 * drivers, no mounts of the host's to release, a container not paused or being created.
 * Everything else, and any case it would answer with an error before it has changed
 * anything, it hands to the Python CLI (`sangja-py` beside it) with argv unchanged, which
 * then answers exactly as it always has: flags it does not know, a container that does not
 * exist, a wrong state. SANGJA_PYTHON=1 hands every call over (the tests run both ways).
 * `create` it runs itself for a container the engine prepared (create.c).
 * Of the engine's words it answers one: the monitor's exit command when nothing is left
 * for it (container_cleanup below).
 *
 * The state dir is read, locked, judged and removed by csrc/state/, the code the Python
 * runtime runs too. Errors it must report itself (after it has acted) are worded as the
 * Python runtime's, on stderr as `sangja: msg` and to --log. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "exit.h"
#include "out.h"
#include "state/state.h"
#include "verbs.h"

struct flag {
  const char *name;
  const char *key;
  char kind; /* 'v' a value, 'b' a boolean, 'p' Python's: hand off */
};

/* --systemd-cgroup, --rootless, --criu: taken and not used by these verbs (the systemd
 * driver is chosen at create; a container's record says which it has, and one of its
 * cgroups is handed off), as by the Python CLI. */
static const struct flag GLOBAL[] = {
    {"--root", "root", 'v'},
    {"--log", "log", 'v'},
    {"--log-format", "log_format", 'v'},
    {"--debug", "debug", 'b'},
    {"--systemd-cgroup", "systemd_cgroup", 'b'},
    {"--rootless", "rootless", 'v'},
    {"--criu", "criu", 'v'},
    {"--version", 0, 'p'},
    {"-v", 0, 'p'},
    {"--help", 0, 'p'},
    {"-h", 0, 'p'},
    {0, 0, 0},
};
static const struct flag NONE[] = {{0, 0, 0}};
static const struct flag KILL[] = {{"--all", "all", 'b'}, {"-a", "all", 'b'}, {0, 0, 0}};
static const struct flag LIST[] = {{"--format", "format", 'v'},
                                   {"-f", "format", 'v'},
                                   {"--quiet", "quiet", 'b'},
                                   {"-q", "quiet", 'b'},
                                   {0, 0, 0}};
static const struct flag PS[] = {{"--format", "format", 'v'}, {"-f", "format", 'v'}, {0, 0, 0}};
static const struct flag CLEANUP[] = {
    {"--run", "run", 'v'}, {"--unless-alive", "unless_alive", 'v'}, {0, 0, 0}};
/* create: what conmon gives the runtime (the rest: Python's) */
static const struct flag CREATE[] = {{"--bundle", "bundle", 'v'},
                                     {"-b", "bundle", 'v'},
                                     {"--pid-file", "pid_file", 'v'},
                                     {"--console-socket", "console_socket", 'v'},
                                     {0, 0, 0}};
static const struct flag DELETE[] = {{"--force", "force", 'b'}, {"-f", "force", 'b'}, {0, 0, 0}};

static const struct flag *lookup(const struct flag *t, const char *name, size_t len) {
  for (; t->name; t++)
    if (strlen(t->name) == len && !strncmp(t->name, name, len))
      return t;
  return NULL;
}

/* Parse argv[from..] by `table` into opts (key -> value; "" for a true boolean, NULL
 * for false) and positionals, as cli/main.py's parse(); anything it would refuse, or that
 * only Python handles, is handed off. Returns the index past what was read. */
#define MAX_OPTS 12
struct opts {
  const char *key[MAX_OPTS];
  const char *val[MAX_OPTS];
  int n;
  const char *pos[4];
  int npos;
};

static void set_opt(struct opts *o, const char *key, const char *val) {
  for (int i = 0; i < o->n; i++)
    if (!strcmp(o->key[i], key)) {
      o->val[i] = val;
      return;
    }
  if (o->n == MAX_OPTS)
    sj_hand_off();
  o->key[o->n] = key;
  o->val[o->n++] = val;
}

static const char *sj_opt(const struct opts *o, const char *key) {
  for (int i = 0; i < o->n; i++)
    if (!strcmp(o->key[i], key))
      return o->val[i];
  return NULL;
}

static int parse(int argc, char **argv, int i, const struct flag *table, int stop, struct opts *o) {
  while (i < argc) {
    const char *a = argv[i++];
    if (!strcmp(a, "--")) {
      while (i < argc) {
        if (o->npos == 4)
          sj_hand_off();
        o->pos[o->npos++] = argv[i++];
      }
      break;
    }
    if (a[0] != '-' || !strcmp(a, "-")) {
      if (o->npos == 4)
        sj_hand_off();
      o->pos[o->npos++] = a;
      if (stop)
        return i;
      continue;
    }
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const struct flag *f = lookup(table, a, len);
    if (!f && a[1] != '-' && len > 2) { /* Go's flag package: -bundle == --bundle */
      char name[64];
      if (len + 2 > sizeof name)
        sj_hand_off();
      name[0] = '-';
      memcpy(name + 1, a, len);
      f = lookup(table, name, len + 1);
    }
    if (!f || f->kind == 'p')
      sj_hand_off();
    if (f->kind == 'b') {
      const char *v = "";
      if (eq) {
        if (!strcasecmp(eq + 1, "true") || !strcmp(eq + 1, "1"))
          v = "";
        else if (!strcasecmp(eq + 1, "false") || !strcmp(eq + 1, "0"))
          v = NULL;
        else
          sj_hand_off();
      }
      set_opt(o, f->key, v);
      continue;
    }
    const char *v;
    if (eq) {
      v = eq + 1;
    } else {
      if (i >= argc)
        sj_hand_off();
      v = argv[i++];
    }
    set_opt(o, f->key, v);
  }
  return i;
}

static int all_digits(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

/* Is the process "PID:START" names alive: /proc/PID/stat not a zombie, its start time
 * (field 22) the same text? (cli/containers.py container_cleanup's check.) */
static int waiter_alive(const char *waiter) {
  const char *colon = strchr(waiter, ':');
  if (!colon || colon - waiter > 19)
    return 0;
  char pid[20], now[32];
  memcpy(pid, waiter, (size_t)(colon - waiter));
  pid[colon - waiter] = 0;
  if (!all_digits(pid))
    return 0;
  long long start = sj_proc_start_time(strtoll(pid, NULL, 10));
  if (start < 0)
    return 0; /* gone, or a zombie */
  snprintf(now, sizeof now, "%lld", start);
  return !strcmp(now, colon + 1); /* else another process has that pid now */
}

/* Is a live command handling the end of run `run` of container `id` (it records it and
 * tears the run down, and nothing is left for the exit command: engine/containers.py
 * `_handling`, `stop` of a container no policy restarts and that is not --rm)? Its note:
 * `monitor/handled` in the container's directory under $SANGJA_ROOT (the engine gives
 * conmon that variable): "RUN PID:START". */
static int run_handled(const char *id, const char *run) {
  const char *root = getenv("SANGJA_ROOT");
  if (!root || root[0] != '/' || strlen(id) != 64 || !all_digits(run) || strlen(run) > 20)
    return 0;
  for (const char *c = id; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
      return 0;
  char path[PATH_MAX], buf[64];
  if (snprintf(path, sizeof path, "%s/containers/%s/monitor/handled", root, id) >= (int)sizeof path)
    return 0;
  if (sj_read_short(path, O_NOFOLLOW, buf, sizeof buf) <= 0)
    return 0;
  char *sp = strchr(buf, ' ');
  if (!sp)
    return 0;
  *sp = 0;
  return !strcmp(buf, run) && waiter_alive(sp + 1);
}

/* `container cleanup [--run N] [--unless-alive PID:START] ID`: conmon's exit command.
 * Nothing is left for it while the foreground run it names lives (that CLI waits for the
 * container and removes it itself), nor while a `stop` of this run lives (it records the
 * end and tears the run down): answered here, without starting Python beside the CLI
 * that does the work.
 * Anything else is Python's, argv unchanged. */
static int container_cleanup(int argc, char **argv, int i) {
  struct opts o = {0};
  parse(argc, argv, i, CLEANUP, 0, &o);
  if (o.npos != 1)
    sj_hand_off();
  const char *waiter = sj_opt(&o, "unless_alive");
  if (waiter && waiter_alive(waiter))
    return 0;
  const char *run = sj_opt(&o, "run");
  if (run && run_handled(o.pos[0], run))
    return 0;
  sj_hand_off();
}

int main(int argc, char **argv) {
  struct sj_log log = {-1, 0, 0};
  sj_exit_init(argv, &log);
  const char *force_py = getenv("SANGJA_PYTHON");
  if (force_py && *force_py && strcmp(force_py, "0"))
    sj_hand_off();
  struct opts g = {0}, o = {0};
  int i = parse(argc, argv, 1, GLOBAL, 1, &g);
  if (g.npos == 0)
    sj_hand_off(); /* usage */
  const char *cmd = g.pos[0];
  if (!strcmp(cmd, "container") && i < argc && !strcmp(argv[i], "cleanup"))
    return container_cleanup(argc, argv, i + 1);
  const struct flag *table;
  int nmax = 1;
  if (!strcmp(cmd, "state") || !strcmp(cmd, "start"))
    table = NONE;
  else if (!strcmp(cmd, "kill"))
    table = KILL, nmax = 2;
  else if (!strcmp(cmd, "delete"))
    table = DELETE;
  else if (!strcmp(cmd, "create"))
    table = CREATE;
  else if (!strcmp(cmd, "list"))
    table = LIST, nmax = 4; /* its arguments are not looked at */
  else if (!strcmp(cmd, "ps"))
    table = PS, nmax = 1; /* ID, then ps's own arguments (not used by --format json) */
  else
    sj_hand_off();
  parse(argc, argv, i, table, table == PS, &o);
  const char *format = sj_opt(&o, "format");
  if (table == LIST || table == PS) {
    if (format && strcmp(format, "table") && strcmp(format, "json"))
      sj_hand_off();
  }
  if (table == PS && !(format && !strcmp(format, "json")))
    sj_hand_off(); /* ps's table runs the ps program: Python's */
  if (table != LIST && (o.npos < 1 || o.npos > nmax || !sj_state_valid_id(o.pos[0])))
    sj_hand_off();

  const char *fmt = sj_opt(&g, "log_format");
  if (fmt && strcmp(fmt, "text") && strcmp(fmt, "json"))
    sj_hand_off();
  log.json = fmt && !strcmp(fmt, "json");
  log.debug = sj_opt(&g, "debug") != NULL;
  const char *logpath = sj_opt(&g, "log");
  if (logpath && *logpath) { /* opened now, as runc: a log that cannot be written is an error */
    log.fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log.fd < 0)
      sj_hand_off();
  }
  const char *root = sj_opt(&g, "root");
  if (!root || !*root)
    root = "/run/sangja";
  struct sj_verb v = {.root = root, .id = o.npos ? o.pos[0] : NULL};
  v.json = format && !strcmp(format, "json");
  if (table == LIST) {
    v.quiet = sj_opt(&o, "quiet") != NULL;
    return sj_verb_list(&v);
  }
  if (table == PS)
    return sj_verb_ps(&v);
  if (table == CREATE) {
    v.bundle = sj_opt(&o, "bundle");
    v.pid_file = sj_opt(&o, "pid_file");
    v.console_socket = sj_opt(&o, "console_socket");
    if (sj_opt(&g, "systemd_cgroup"))
      sj_hand_off();
    return sj_verb_create(&v, log.fd);
  }
  if (!strcmp(cmd, "state"))
    return sj_verb_state(&v);
  if (!strcmp(cmd, "start"))
    return sj_verb_start(&v);
  if (!strcmp(cmd, "kill")) {
    v.signal = o.npos > 1 ? o.pos[1] : "SIGTERM";
    v.all = sj_opt(&o, "all") != NULL;
    return sj_verb_kill(&v);
  }
  v.force = sj_opt(&o, "force") != NULL;
  return sj_verb_delete(&v);
}
