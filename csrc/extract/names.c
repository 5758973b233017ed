/* The set of names this layer has created, keyed by (directory, name): a
 * hit means "may exist" and forces the careful path (drain the writers,
 * look); a miss lets a new name go straight to creation.
 */
#include <stdlib.h>

#include "internal.h"

uint64_t sjx_name_key(uint64_t dir_id, const char *name) {
  uint64_t h = 0xcbf29ce484222325ULL ^ dir_id; /* FNV-1a over the name */
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  h ^= h >> 29;
  return h | 1; /* 0 marks an empty slot */
}

int sjx_names_has(const struct sjx_ctx *c, uint64_t key) {
  if (!c->names_cap)
    return 0;
  for (size_t i = key & (c->names_cap - 1);; i = (i + 1) & (c->names_cap - 1)) {
    if (c->names[i] == key)
      return 1;
    if (!c->names[i])
      return 0;
  }
}

int sjx_names_add(struct sjx_ctx *c, uint64_t key) {
  if (2 * (c->names_len + 1) > c->names_cap) {
    size_t cap = c->names_cap ? c->names_cap * 2 : 4096;
    uint64_t *n = calloc(cap, sizeof *n);
    if (!n)
      return -1;
    for (size_t i = 0; i < c->names_cap; i++) {
      uint64_t k = c->names[i];
      if (!k)
        continue;
      size_t j = k & (cap - 1);
      while (n[j])
        j = (j + 1) & (cap - 1);
      n[j] = k;
    }
    free(c->names);
    c->names = n;
    c->names_cap = cap;
  }
  size_t i = key & (c->names_cap - 1);
  while (c->names[i] && c->names[i] != key)
    i = (i + 1) & (c->names_cap - 1);
  if (!c->names[i]) {
    c->names[i] = key;
    c->names_len++;
  }
  return 0;
}
