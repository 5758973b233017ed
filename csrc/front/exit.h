/* The front end's ways out (exit.c): to the Python CLI, or an error message. */
#ifndef SJ_FRONT_EXIT_H
#define SJ_FRONT_EXIT_H

#include "out.h"

/* What the ways out need: argv to hand over unchanged, the --log to write errors to. */
void sj_exit_init(char **argv, struct sj_log *log);

/* exec the Python CLI (`sangja-py` beside our binary) with argv unchanged. */
__attribute__((noreturn)) void sj_hand_off(void);

/* `sangja: msg` on stderr and an error line to --log; exit 1 (the Python CLI's). */
__attribute__((noreturn, format(printf, 1, 2))) void sj_die(const char *fmt, ...);

/* A warning line to --log (stderr without one), as the runtime's Log.warn. */
__attribute__((format(printf, 1, 2))) void sj_warn(const char *fmt, ...);

#endif
