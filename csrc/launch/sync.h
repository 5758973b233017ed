/* The sync protocol between the caller of sj_spawn and the process it made
 * (the init, or an exec'd process, and the intermediate that may come
 * first): a SOCK_SEQPACKET socket, one struct sj_msg per packet.
 *
 *   sj_spawn()        child created, blocked until the parent sends SJ_MSG_GO
 *   parent            writes uid/gid maps, joins cgroups, then sends GO
 *   child -> parent   SJ_MSG_HOOKS (only if plan->hook_sync): mounts done,
 *                     before pivot_root; waits for SJ_MSG_GO again, then
 *                     runs the createContainer hooks itself
 *   child -> parent   SJ_MSG_SECCOMP (only with SECCOMP_FILTER_FLAG_NEW_LISTENER
 *                     in plan->seccomp_flags): the filter is loaded, its notify
 *                     listener fd travels with the message (SCM_RIGHTS; the
 *                     receiver gets it, CLOEXEC, in msg.value); the child waits
 *                     for SJ_MSG_GO, sent once the parent has passed the fd on
 *   child -> parent   SJ_MSG_READY: every fallible step done, privileges
 *                     dropped; the child now blocks on the exec fifo
 *   child -> parent   SJ_MSG_ERROR at any point: errno + "step: detail",
 *                     then the child exits 1
 *   exec (exec_pidfd >= 0): the same, without HOOKS; after READY the child
 *                     keeps the socket until execve, so the parent then
 *                     receives SJ_MSG_CLOSED (execve done) or SJ_MSG_ERROR
 *                     (execve failed).
 *
 * An intermediate (namespaces joined by path, time offsets, exec) reports
 * the init's pid with SJ_MSG_PID, or its own SJ_MSG_ERROR, and exits.
 */
#ifndef SANGJA_SYNC_H
#define SANGJA_SYNC_H

#include <stdint.h>

#include "launch.h"

enum sj_msg_type {
  SJ_MSG_GO = 1,
  SJ_MSG_HOOKS = 2,
  SJ_MSG_READY = 3,
  SJ_MSG_ERROR = 4,
  SJ_MSG_PID = 5,     /* intermediate -> parent: the init's pid in value */
  SJ_MSG_CLOSED = 6,  /* received only: the peer closed the socket without a
                         message (err ECHILD, text "init exited before it was
                         ready"); never sent */
  SJ_MSG_SECCOMP = 7, /* child -> parent: the seccomp listener fd (SCM_RIGHTS),
                         received in value; the parent answers SJ_MSG_GO */
};

struct sj_msg {
  uint32_t type;
  int32_t err;   /* errno for SJ_MSG_ERROR */
  int64_t value; /* pid for SJ_MSG_PID; the received fd for SJ_MSG_SECCOMP */
  char text[SJ_ERRMSG_MAX];
};

/* Caller side: send one message / receive one message (blocking).  Return 0 or -1 + err;
 * a closed socket is received as SJ_MSG_CLOSED.  An fd that comes with
 * SJ_MSG_SECCOMP is the caller's to close (msg->value); any other is closed. */
int sj_sync_send(int fd, uint32_t type, struct sj_error *err);
int sj_sync_recv(int fd, struct sj_msg *msg, struct sj_error *err);

/* Process side (internal to the launch library). */
#pragma GCC visibility push(hidden)

/* Send one packet (MSG_NOSIGNAL, EINTR retried).  0 or -1 + errno. */
int sj_send_msg(int fd, const struct sj_msg *msg);
/* The same with fd attached (SCM_RIGHTS), an otherwise empty message. */
int sj_send_msg_fd(int sock, uint32_t type, int fd);
/* Report err to the caller (SJ_MSG_ERROR) and _exit(1). */
__attribute__((noreturn)) void sj_child_die(int sync_fd, const struct sj_error *err);

#pragma GCC visibility pop

#endif
