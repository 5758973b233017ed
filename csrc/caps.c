/* Dropping privileges, in the order that is safe (init.c, become_user):
 * bounding set first (it needs CAP_SETPCAP), keep capabilities across the
 * uid change, switch groups/gid/uid, (verify the cwd,) stop keeping them,
 * then set the final effective/permitted/inheritable sets and the ambient
 * set.  Nothing is inheritable or ambient unless the config asks for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "init.h"
#include "util.h"

static const char *const cap_names[] = {
    "CAP_CHOWN",           "CAP_DAC_OVERRIDE",     "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID",          "CAP_KILL",             "CAP_SETGID",          "CAP_SETUID",
    "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE",  "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",       "CAP_NET_RAW",          "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",      "CAP_SYS_RAWIO",        "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",        "CAP_SYS_BOOT",        "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",    "CAP_SYS_TIME",         "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
    "CAP_LEASE",           "CAP_AUDIT_WRITE",      "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",        "CAP_SYSLOG",          "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",       "CAP_PERFMON",         "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

/* Name of capability c; buf for numbers this table does not know. */
static const char *cap_name(int c, char *buf, size_t size) {
  if (c >= 0 && (size_t)c < sizeof cap_names / sizeof cap_names[0])
    return cap_names[c];
  snprintf(buf, size, "capability %d", c);
  return buf;
}

/* The highest capability the kernel knows: PR_CAPBSET_READ says EINVAL
 * past it (no /proc needed). */
static int last_cap(void) {
  int c = 0;
  while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
    c++;
  return c;
}

static int lowest_bit(uint64_t set) {
  return set ? __builtin_ctzll(set) : -1;
}

int sj_drop_bounding(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  int last = last_cap();
  for (int c = 0; c <= last; c++) {
    if (plan->cap_bounding & (1ULL << c))
      continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
      char buf[32];
      return sj_fail(err, errno, "drop %s from the bounding set", cap_name(c, buf, sizeof buf));
    }
  }
  return 0;
}

/* Keep the permitted set across the uid change (capset sets it after). */
int sj_set_keepcaps(int on, struct sj_error *err) {
  if (prctl(PR_SET_KEEPCAPS, on, 0, 0, 0) < 0)
    return sj_fail(err, errno, "prctl PR_SET_KEEPCAPS %d", on);
  return 0;
}

int sj_switch_ids(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (sj_setgroups(plan->ngids, plan->additional_gids) < 0) {
    /* A user namespace with setgroups denied cannot clear the list either;
     * that is fine only when none were asked for. */
    if (!(errno == EPERM && ctx->userns && plan->ngids == 0))
      return sj_fail(err, errno, "setgroups");
  }
  if (sj_setresgid(plan->gid, plan->gid, plan->gid) < 0)
    return sj_fail(err, errno, "setresgid %u", (unsigned int)plan->gid);
  if (sj_setresuid(plan->uid, plan->uid, plan->uid) < 0)
    return sj_fail(err, errno, "setresuid %u", (unsigned int)plan->uid);
  return 0;
}

static uint64_t join32(uint32_t lo, uint32_t hi) {
  return (uint64_t)lo | ((uint64_t)hi << 32);
}

/* capset said EPERM: find the set and the capability to blame. */
static int explain_capset(const struct sj_plan *plan, int errnum, struct sj_error *err) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct cur[2];
  memset(cur, 0, sizeof cur);
  if (syscall(SYS_capget, &hdr, cur) < 0)
    return sj_fail(err, errnum, "capset");
  uint64_t permitted = join32(cur[0].permitted, cur[1].permitted);
  uint64_t inheritable = join32(cur[0].inheritable, cur[1].inheritable);
  uint64_t bounding = 0;
  for (int c = 0; c < 64; c++)
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
      bounding |= 1ULL << c;

  const char *set = NULL;
  int c = -1;
  if ((c = lowest_bit(plan->cap_permitted & ~permitted)) >= 0)
    set = "permitted";
  else if ((c = lowest_bit(plan->cap_effective & ~plan->cap_permitted)) >= 0)
    set = "effective";
  else if ((c = lowest_bit(plan->cap_inheritable & ~(inheritable | bounding))) >= 0)
    set = "inheritable";
  if (!set)
    return sj_fail(err, errnum, "capset");
  char buf[32];
  return sj_fail(err, errnum, "capset: %s not available for the %s set", cap_name(c, buf, sizeof buf),
                 set);
}

/* effective/permitted/inheritable, with `extra` in effective and permitted too. */
static int set_capsets(const struct sj_plan *plan, uint64_t extra, struct sj_error *err) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++) {
    data[i].effective = (uint32_t)((plan->cap_effective | extra) >> (32 * i));
    data[i].permitted = (uint32_t)((plan->cap_permitted | extra) >> (32 * i));
    data[i].inheritable = (uint32_t)(plan->cap_inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0)
    return errno == EPERM ? explain_capset(plan, errno, err) : sj_fail(err, errno, "capset");
  return 0;
}

int sj_apply_caps(struct sj_ctx *ctx, uint64_t extra, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (set_capsets(plan, extra, err) < 0)
    return -1;

  /* The kernel raises an ambient capability only if it is both permitted
   * and inheritable; runc warns about the others and goes on (its default
   * spec asks for ambient caps without inheritable ones): skip them too. */
  uint64_t ambient = plan->cap_ambient & plan->cap_permitted & plan->cap_inheritable;
  /* Ambient capabilities need kernel 4.3; without any asked, tolerate that. */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && ambient)
    return sj_fail(err, errno, "clear the ambient capabilities");
  for (int c = 0; c < 64; c++) {
    if (!(ambient & (1ULL << c)))
      continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) {
      char buf[32];
      return sj_fail(err, errno, "raise the ambient capability %s", cap_name(c, buf, sizeof buf));
    }
  }
  return 0;
}

int sj_drop_extra_caps(struct sj_ctx *ctx, struct sj_error *err) {
  return set_capsets(ctx->plan, 0, err);
}
