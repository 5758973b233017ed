/* The sync socket, both ends: the caller's send and receive (the binding
 * calls them), and the process side's packets.  The protocol: sync.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "sync.h"

int sj_send_msg(int fd, const struct sj_msg *msg) {
  for (;;) {
    ssize_t n = send(fd, msg, sizeof *msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if ((size_t)n != sizeof *msg) {
      errno = EMSGSIZE;
      return -1;
    }
    return 0;
  }
}

int sj_sync_send(int fd, uint32_t type, struct sj_error *err) {
  struct sj_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = type;
  if (sj_send_msg(fd, &msg) < 0)
    return sj_fail(err, errno, "send to init");
  return 0;
}

int sj_sync_recv(int fd, struct sj_msg *msg, struct sj_error *err) {
  memset(msg, 0, sizeof *msg);
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = msg, .iov_len = sizeof *msg};
  struct msghdr mh;
  ssize_t n;
  do {
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno != ECONNRESET)
    return sj_fail(err, errno, "receive from init");
  int passed = -1;
  for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len >= CMSG_LEN(sizeof(int)) && passed < 0)
      memcpy(&passed, CMSG_DATA(c), sizeof passed);
  if (n <= 0) {
    /* The peer is gone without saying why (killed, or the parent of an
     * intermediate exited; for exec after READY: execve succeeded). */
    msg->type = SJ_MSG_CLOSED;
    msg->err = ECHILD;
    snprintf(msg->text, sizeof msg->text, "init exited before it was ready");
    return 0;
  }
  msg->text[sizeof msg->text - 1] = '\0';
  if (msg->type == SJ_MSG_SECCOMP) {
    if (passed < 0)
      return sj_failx(err, EPROTO, "the seccomp listener fd did not arrive");
    msg->value = passed;
  } else if (passed >= 0) {
    close(passed); /* nothing else carries an fd */
  }
  return 0;
}

/* Child side: one message with an fd attached (SCM_RIGHTS). */
int sj_send_msg_fd(int sock, uint32_t type, int fd) {
  struct sj_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = type;
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = &msg, .iov_len = sizeof msg};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do
    n = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : 0;
}

void sj_child_die(int sync_fd, const struct sj_error *err) {
  struct sj_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = SJ_MSG_ERROR;
  msg.err = err->err;
  snprintf(msg.text, sizeof msg.text, "%s", err->msg);
  sj_send_msg(sync_fd, &msg);
  _exit(1);
}
