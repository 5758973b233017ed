/* Errors of the launch path: errno + a text naming the step that failed
 * (struct sj_error, launch.h), made without allocating: safe in the forked
 * child.  Errno texts are Go's (runc's) lower-case ones: engines match
 * "permission denied", "no such file or directory" to choose their exit
 * codes (126, 127).
 */
#ifndef SANGJA_ERROR_H
#define SANGJA_ERROR_H

#include <stddef.h>

#include "launch.h"

#pragma GCC visibility push(hidden)

/* Fill err with "<formatted step>: <errno text>" and errnum.
 * Returns -1 so callers can `return sj_fail(...)`. */
int sj_fail(struct sj_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same without the errno text: the text is complete as given. */
int sj_failx(struct sj_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Untranslated description of an errno value; never NULL, never allocates. */
const char *sj_strerror(int errnum);
/* The same as Go prints it ("No such file" -> "no such file"), into buf. */
const char *sj_errno_text(int errnum, char *buf, size_t size);

#pragma GCC visibility pop

#endif
