/* Writer threads.  Creating an inode is the expensive part of unpacking on
 * a disk file system (ext4 spends its time finding a free inode), so the
 * driver hands regular files and symlinks - content included - to a few
 * threads while it goes on parsing.  Ordering is the driver's business:
 * it only submits names it knows are new (see the name set in
 * names.c), and drains the queue before anything that depends on
 * an earlier job (a hardlink, replacing a name, the final directory pass).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_JOBS         2048
#define MAX_QUEUED_BYTES (32u << 20)
#define MAX_JOB_BYTES    (1u << 20) /* bigger files are written by the driver itself */

struct sjx_pool {
  struct sjx_ctx *c;
  pthread_t *threads;
  int n;
  pthread_mutex_t lock;
  pthread_cond_t cv_job;  /* a job was queued, or stop */
  pthread_cond_t cv_done; /* a job finished */
  struct sjx_job *head, *tail;
  size_t jobs;  /* queued + running */
  size_t bytes; /* their content */
  int stop;
};

static void fail_from(struct sjx_ctx *c, const struct sj_extract_error *e) {
  pthread_mutex_lock(&c->err_lock);
  if (!c->failed) {
    c->werr = *e;
    __atomic_store_n(&c->failed, 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&c->err_lock);
}

size_t sjx_pool_max_job_bytes(void) {
  return MAX_JOB_BYTES;
}

static void job_free(struct sjx_job *j) {
  sjx_dir_unref(j->dir);
  free(j);
}

static void *worker_main(void *arg) {
  struct sjx_pool *p = arg;
  struct sj_extract_error err;
  pthread_setname_np(pthread_self(), "sj-write");
  for (;;) {
    pthread_mutex_lock(&p->lock);
    while (!p->head && !p->stop)
      pthread_cond_wait(&p->cv_job, &p->lock);
    struct sjx_job *j = p->head;
    if (!j) {
      pthread_mutex_unlock(&p->lock);
      break;
    }
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    pthread_mutex_unlock(&p->lock);

    size_t size = j->size;
    if (!__atomic_load_n(&p->c->failed, __ATOMIC_RELAXED)) {
      err.err = 0;
      err.msg[0] = 0;
      err.entry[0] = 0;
      if (sjx_write_job(p->c, j, &err) < 0)
        fail_from(p->c, &err);
    }
    job_free(j);

    pthread_mutex_lock(&p->lock);
    p->jobs--;
    p->bytes -= size;
    pthread_cond_broadcast(&p->cv_done);
    pthread_mutex_unlock(&p->lock);
  }
  return NULL;
}

struct sjx_pool *sjx_pool_new(struct sjx_ctx *c, int nthreads) {
  struct sjx_pool *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->c = c;
  p->threads = calloc((size_t)nthreads, sizeof *p->threads);
  if (!p->threads) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cv_job, NULL);
  pthread_cond_init(&p->cv_done, NULL);

  sigset_t all, old; /* the threads take no signals */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < nthreads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker_main, p))
      break;
    p->n++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!p->n) {
    sjx_pool_free(p);
    return NULL;
  }
  return p;
}

int sjx_pool_submit(struct sjx_pool *p, struct sjx_job *j) {
  pthread_mutex_lock(&p->lock);
  while (p->jobs && (p->jobs >= MAX_JOBS || p->bytes + j->size > MAX_QUEUED_BYTES) &&
         !__atomic_load_n(&p->c->failed, __ATOMIC_RELAXED))
    pthread_cond_wait(&p->cv_done, &p->lock);
  if (__atomic_load_n(&p->c->failed, __ATOMIC_RELAXED)) {
    pthread_mutex_unlock(&p->lock);
    job_free(j);
    return -1;
  }
  j->next = NULL;
  if (p->tail)
    p->tail->next = j;
  else
    p->head = j;
  p->tail = j;
  p->jobs++;
  p->bytes += j->size;
  pthread_cond_signal(&p->cv_job);
  pthread_mutex_unlock(&p->lock);
  return 0;
}

int sjx_pool_drain(struct sjx_pool *p) {
  pthread_mutex_lock(&p->lock);
  while (p->jobs)
    pthread_cond_wait(&p->cv_done, &p->lock);
  pthread_mutex_unlock(&p->lock);
  return __atomic_load_n(&p->c->failed, __ATOMIC_RELAXED) ? -1 : 0;
}

void sjx_pool_free(struct sjx_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  struct sjx_job *left = p->head; /* after a failure: not worth writing */
  p->head = p->tail = NULL;
  p->stop = 1;
  pthread_cond_broadcast(&p->cv_job);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->n; i++)
    pthread_join(p->threads[i], NULL);
  while (left) {
    struct sjx_job *j = left;
    left = j->next;
    job_free(j);
  }
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cv_job);
  pthread_cond_destroy(&p->cv_done);
  free(p->threads);
  free(p);
}

/* After a drain or submit failed: the writer's error becomes ours. */
int sjx_writer_failed(struct sjx_ctx *c) {
  pthread_mutex_lock(&c->err_lock);
  if (!c->err->msg[0])
    *c->err = c->werr;
  pthread_mutex_unlock(&c->err_lock);
  return -1;
}

int sjx_drain(struct sjx_ctx *c) {
  if (c->pool && sjx_pool_drain(c->pool) < 0)
    return sjx_writer_failed(c);
  return 0;
}
