/* A launch plan as one block of bytes (planfile.h). One walk over the plan serves both
 * ways, so that packing and unpacking cannot disagree on what a plan points to: packing
 * copies each pointee to the end of the block and leaves its offset in the pointer's
 * place; unpacking checks each offset and turns it back into a pointer. Slots are named
 * by their offset in the block, as the block moves while it grows. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "planfile.h"

#define PLAN_MAGIC  0x4e414c50414a5353ULL /* "SSJAPLAN" */
#define PLAN_FORMAT 1

struct header {
  uint64_t magic;
  uint32_t format;
  uint32_t plan_size, mount_size, device_size, hook_size;
  uint32_t pad;
  uint64_t len; /* the whole block */
};

/* The plan follows the header, 8-byte aligned. */
#define PLAN_AT ((sizeof(struct header) + 7) & ~(size_t)7)

struct walk {
  int pack;
  unsigned char *buf;
  size_t len, cap;
  int bad; /* pack: out of memory; unpack: an offset outside the block */
};

static void *at(struct walk *w, size_t off) {
  return w->buf + off;
}

/* pack: append n bytes (8-byte aligned) and return their offset; 0 if out of memory. */
static size_t append(struct walk *w, const void *src, size_t n) {
  size_t off = (w->len + 7) & ~(size_t)7;
  if (off + n > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < off + n)
      cap *= 2;
    unsigned char *b = realloc(w->buf, cap);
    if (!b) {
      w->bad = ENOMEM;
      return 0;
    }
    w->buf = b;
    w->cap = cap;
  }
  memset(w->buf + w->len, 0, off - w->len);
  memcpy(w->buf + off, src, n);
  w->len = off + n;
  return off;
}

/* The pointer slot at `slot` to `n` bytes (a counted array): packed, the bytes are copied
 * and the slot gets their offset; unpacked, the offset is checked. Returns the offset of
 * the bytes in the block (0: NULL or failed). */
static size_t w_bytes(struct walk *w, size_t slot, size_t n) {
  if (w->bad)
    return 0;
  if (w->pack) {
    const void *p = *(const void **)at(w, slot);
    if (!p)
      return 0;
    size_t off = append(w, p, n);
    *(uintptr_t *)at(w, slot) = off;
    return off;
  }
  uintptr_t off = *(uintptr_t *)at(w, slot);
  if (!off)
    return 0;
  if (off < PLAN_AT || off > w->len || n > w->len - off || off % 8) {
    w->bad = EINVAL;
    return 0;
  }
  *(void **)at(w, slot) = w->buf + off;
  return off;
}

/* A string slot: its bytes and the NUL. */
static void w_str(struct walk *w, size_t slot) {
  if (w->bad)
    return;
  if (w->pack) {
    const char *s = *(const char **)at(w, slot);
    if (s)
      w_bytes(w, slot, strlen(s) + 1);
    return;
  }
  uintptr_t off = *(uintptr_t *)at(w, slot);
  if (!off)
    return;
  if (off < PLAN_AT || off >= w->len || !memchr(w->buf + off, 0, w->len - off)) {
    w->bad = EINVAL;
    return;
  }
  *(void **)at(w, slot) = w->buf + off;
}

/* An array of n string pointers (n: its count), or of a NULL-terminated one (n < 0). */
static void w_strv(struct walk *w, size_t slot, long n) {
  if (w->bad)
    return;
  if (n < 0) { /* count up to the NULL */
    n = 0;
    if (w->pack) {
      const char *const *v = *(const char *const **)at(w, slot);
      if (!v)
        return;
      while (v[n])
        n++;
    } else {
      uintptr_t off = *(uintptr_t *)at(w, slot);
      if (!off)
        return;
      for (;; n++) {
        if (off < PLAN_AT || off % 8 || off > w->len ||
            (size_t)(n + 1) * sizeof(uintptr_t) > w->len - off) {
          w->bad = EINVAL;
          return;
        }
        if (!*(uintptr_t *)at(w, off + (size_t)n * sizeof(uintptr_t)))
          break;
      }
    }
    n++; /* the NULL goes along */
  }
  size_t off = w_bytes(w, slot, (size_t)n * sizeof(char *));
  if (!off)
    return;
  for (long i = 0; i < n; i++)
    w_str(w, off + (size_t)i * sizeof(char *));
}

#define SLOT(base, type, field) ((base) + offsetof(type, field))

static void w_hooks(struct walk *w, size_t slot, size_t n) {
  size_t off = w_bytes(w, slot, n * sizeof(struct sj_hook));
  for (size_t i = 0; off && i < n; i++) {
    size_t e = off + i * sizeof(struct sj_hook);
    w_str(w, SLOT(e, struct sj_hook, path));
    w_strv(w, SLOT(e, struct sj_hook, argv), -1);
    w_strv(w, SLOT(e, struct sj_hook, envp), -1);
  }
}

/* Every pointer of the plan at PLAN_AT, and of what they point to. */
static void walk_plan(struct walk *w) {
  const size_t P = PLAN_AT;
  struct sj_plan *p = at(w, P);
  /* counts are read again after each step: the block may have moved */
#define PL ((struct sj_plan *)at(w, P))
  size_t off = w_bytes(w, SLOT(P, struct sj_plan, joins), p->njoins * sizeof(struct sj_nsjoin));
  for (size_t i = 0; off && i < PL->njoins; i++)
    w_str(w, SLOT(off + i * sizeof(struct sj_nsjoin), struct sj_nsjoin, path));
  w_str(w, SLOT(P, struct sj_plan, timens_offsets));
  w_str(w, SLOT(P, struct sj_plan, rootfs));
  off = w_bytes(w, SLOT(P, struct sj_plan, mounts), PL->nmounts * sizeof(struct sj_mount));
  for (size_t i = 0; off && i < PL->nmounts; i++) {
    size_t e = off + i * sizeof(struct sj_mount);
    w_str(w, SLOT(e, struct sj_mount, source));
    w_str(w, SLOT(e, struct sj_mount, target));
    w_str(w, SLOT(e, struct sj_mount, fstype));
    w_str(w, SLOT(e, struct sj_mount, data));
  }
  off = w_bytes(w, SLOT(P, struct sj_plan, devices), PL->ndevices * sizeof(struct sj_device));
  for (size_t i = 0; off && i < PL->ndevices; i++)
    w_str(w, SLOT(off + i * sizeof(struct sj_device), struct sj_device, path));
  w_strv(w, SLOT(P, struct sj_plan, masked_paths), (long)PL->nmasked);
  w_strv(w, SLOT(P, struct sj_plan, readonly_paths), (long)PL->nreadonly);
  w_str(w, SLOT(P, struct sj_plan, hostname));
  w_str(w, SLOT(P, struct sj_plan, domainname));
  off = w_bytes(w, SLOT(P, struct sj_plan, sysctls), PL->nsysctls * sizeof(struct sj_sysctl));
  for (size_t i = 0; off && i < PL->nsysctls; i++) {
    w_str(w, SLOT(off + i * sizeof(struct sj_sysctl), struct sj_sysctl, path));
    w_str(w, SLOT(off + i * sizeof(struct sj_sysctl), struct sj_sysctl, value));
  }
  w_bytes(w, SLOT(P, struct sj_plan, rlimits), PL->nrlimits * sizeof(struct sj_rlimit));
  w_bytes(w, SLOT(P, struct sj_plan, additional_gids), PL->ngids * sizeof(gid_t));
  w_str(w, SLOT(P, struct sj_plan, cwd));
  w_strv(w, SLOT(P, struct sj_plan, argv), -1);
  w_strv(w, SLOT(P, struct sj_plan, envp), -1);
  w_str(w, SLOT(P, struct sj_plan, path_env));
  w_strv(w, SLOT(P, struct sj_plan, cgroup_join), (long)PL->ncgroup_join);
  w_str(w, SLOT(P, struct sj_plan, session_keyring));
  w_hooks(w, SLOT(P, struct sj_plan, create_container_hooks), PL->ncreate_container_hooks);
  w_hooks(w, SLOT(P, struct sj_plan, start_container_hooks), PL->nstart_container_hooks);
  w_str(w, SLOT(P, struct sj_plan, hook_state));
  w_str(w, SLOT(P, struct sj_plan, apparmor_profile));
  w_str(w, SLOT(P, struct sj_plan, selinux_label));
  w_bytes(w, SLOT(P, struct sj_plan, seccomp_bpf), PL->seccomp_len);
#undef PL
}

/* The fds of a plan are the executor's: none is carried. */
static void clear_fds(struct sj_plan *p) {
  p->exec_fifo_fd = p->console_fd = p->log_fd = p->cgroup_fd = -1;
  p->exec_pidfd = p->exec_root_fd = -1;
  p->stdio_fds[0] = p->stdio_fds[1] = p->stdio_fds[2] = -1;
}

static void fill_header(struct header *h, size_t len) {
  memset(h, 0, sizeof *h);
  h->magic = PLAN_MAGIC;
  h->format = PLAN_FORMAT;
  h->plan_size = sizeof(struct sj_plan);
  h->mount_size = sizeof(struct sj_mount);
  h->device_size = sizeof(struct sj_device);
  h->hook_size = sizeof(struct sj_hook);
  h->len = len;
}

int sj_plan_pack(const struct sj_plan *plan, unsigned char **out, size_t *len,
                 struct sj_error *err) {
  struct walk w = {.pack = 1};
  struct header h;
  fill_header(&h, 0);
  append(&w, &h, sizeof h);
  if (!w.bad && append(&w, plan, sizeof *plan) != PLAN_AT)
    w.bad = w.bad ? w.bad : EINVAL;
  if (!w.bad) {
    clear_fds(at(&w, PLAN_AT));
    walk_plan(&w);
  }
  for (size_t i = 0; !w.bad && i < plan->nmounts; i++)
    if (plan->mounts[i].tree_fd >= 0) /* an fd made for this process only */
      w.bad = EINVAL;
  if (w.bad) {
    free(w.buf);
    return sj_failx(err, w.bad, "pack the launch plan: %s",
                    w.bad == ENOMEM ? "out of memory" : "it holds an fd");
  }
  fill_header(at(&w, 0), w.len);
  *out = w.buf;
  *len = w.len;
  return 0;
}

int sj_plan_unpack(unsigned char *block, size_t len, struct sj_plan **plan, struct sj_error *err) {
  struct header h, want;
  if (len < PLAN_AT + sizeof(struct sj_plan) || (uintptr_t)block % 8)
    return sj_failx(err, EINVAL, "launch plan: truncated (%zu bytes)", len);
  memcpy(&h, block, sizeof h);
  fill_header(&want, len);
  if (memcmp(&h, &want, sizeof h))
    return sj_failx(err, EINVAL, "launch plan: not one of this build's, or damaged");
  const struct sj_plan *q = (const void *)(block + PLAN_AT);
  const size_t counts[] = {q->njoins,
                           q->nmounts,
                           q->ndevices,
                           q->nmasked,
                           q->nreadonly,
                           q->nsysctls,
                           q->nrlimits,
                           q->ngids,
                           q->ncgroup_join,
                           q->seccomp_len,
                           q->ncreate_container_hooks,
                           q->nstart_container_hooks};
  for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
    if (counts[i] > len) /* each element takes a byte at least: no product can wrap */
      return sj_failx(err, EINVAL, "launch plan: damaged (a count past its end)");
  struct walk w = {.pack = 0, .buf = block, .len = len};
  walk_plan(&w);
  if (w.bad)
    return sj_failx(err, EINVAL, "launch plan: damaged (a pointer outside it)");
  struct sj_plan *p = at(&w, PLAN_AT);
  clear_fds(p);
  for (size_t i = 0; i < p->nmounts; i++)
    ((struct sj_mount *)p->mounts)[i].tree_fd = -1;
  *plan = p;
  return 0;
}
