/* A launch plan as one block of bytes: what the runtime's Python API compiles in the
 * engine's process, for the front end (csrc/front/create.c) to execute in the runtime's
 * `create` without starting Python (the `prepare` half of runtime/container.py).
 *
 * The block is the struct sj_plan and everything it points to, laid out one after the
 * other, each pointer turned into the offset of what it points to (0: NULL). Unpacking
 * turns the offsets back into pointers in place, after checking that every one lies
 * inside the block and every string ends inside it. The fds of a plan are not carried:
 * they are the executor's to open (each is -1 in an unpacked plan).
 *
 * The block is for the same build: it starts with a magic, a format number and the sizes
 * of the structs, and a block of another layout is refused. */
#ifndef SANGJA_PLANFILE_H
#define SANGJA_PLANFILE_H

#include <stddef.h>

#include "launch.h"

/* The block for `plan` (malloc'd: the caller frees it) and its length. Returns 0, or -1
 * with err filled (out of memory). */
int sj_plan_pack(const struct sj_plan *plan, unsigned char **out, size_t *len,
                 struct sj_error *err);

/* The plan in `block` (of `len` bytes, 8-byte aligned, as malloc gives it), made usable in
 * place: *plan points into the block, which must outlive it. Returns 0, or -1 with err
 * filled (EINVAL: not a plan of this build, or damaged). */
int sj_plan_unpack(unsigned char *block, size_t len, struct sj_plan **plan, struct sj_error *err);

#endif
