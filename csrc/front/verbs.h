/* The verbs the front end runs itself (verbs.c), and what main.c gives them. */
#ifndef SJ_FRONT_VERBS_H
#define SJ_FRONT_VERBS_H

struct sj_verb {
  const char *root, *id;
  const char *signal;                             /* kill */
  int all;                                        /* kill --all */
  int force;                                      /* delete --force */
  int json;                                       /* list, ps: --format json */
  int quiet;                                      /* list -q */
  const char *bundle, *pid_file, *console_socket; /* create */
};

/* Each returns the exit code, or hands off to Python (sj_hand_off) where it would only
 * report an error before acting, or meets what only Python does. */
int sj_verb_state(const struct sj_verb *v);
int sj_verb_start(const struct sj_verb *v);
int sj_verb_kill(const struct sj_verb *v);
int sj_verb_delete(const struct sj_verb *v);
int sj_verb_list(const struct sj_verb *v);
int sj_verb_ps(const struct sj_verb *v); /* --format json only */
/* create.c: a container the engine prepared (its state dir holds launch.plan); `log_fd`:
 * --log, -1 for none. */
int sj_verb_create(const struct sj_verb *v, int log_fd);

#endif
