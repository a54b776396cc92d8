/*
 * Single-threaded epoll TCP echo server: the C baseline of bench/peers (the floor a server in C
 * reaches with the same kernel calls). One 64 KiB read per readiness, written back at once; what
 * the peer's window does not take waits in the connection's own buffer, and reading that
 * connection stops until it is sent. Prints its port on stdout; exits when stdin closes.
 *
 *   cc -O2 -o c-echo-server c-echo-server.c
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_BYTES (64 * 1024)
#define EVENTS 256

struct connection {
  int fd;
  size_t pending; /* bytes in buffer not yet sent back */
  size_t sent;
  char buffer[BUFFER_BYTES];
};

static int epoll_fd;

static void watch(struct connection *c, unsigned events, int op) {
  struct epoll_event event = {.events = events, .data.ptr = c};
  epoll_ctl(epoll_fd, op, c->fd, &event);
}

static void drop(struct connection *c) {
  close(c->fd);
  free(c);
}

/* Sends what waits; 1 when all of it went, 0 when the window is full, -1 on failure. */
static int flush(struct connection *c) {
  while (c->sent < c->pending) {
    ssize_t n = send(c->fd, c->buffer + c->sent, c->pending - c->sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->sent += (size_t)n;
  }
  c->pending = c->sent = 0;
  return 1;
}

static void on_event(struct connection *c, unsigned events) {
  if (c->pending > 0) {
    int flushed = flush(c);
    if (flushed < 0) return drop(c);
    if (flushed == 0) return;
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
    if (!(events & EPOLLIN)) return;
  }
  ssize_t n = recv(c->fd, c->buffer, BUFFER_BYTES, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN)) return drop(c);
  if (n < 0) return;
  c->pending = (size_t)n;
  int flushed = flush(c);
  if (flushed < 0) return drop(c);
  if (flushed == 0) watch(c, EPOLLOUT, EPOLL_CTL_MOD);
}

int main(void) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t length = sizeof address;
  if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
    perror("listen");
    return 1;
  }
  getsockname(listener, (struct sockaddr *)&address, &length);
  printf("%d\n", ntohs(address.sin_port));
  fflush(stdout);

  epoll_fd = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);
  static int stdin_marker;
  event.data.ptr = &stdin_marker;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &event);

  struct epoll_event events[EVENTS];
  for (;;) {
    int ready = epoll_wait(epoll_fd, events, EVENTS, -1);
    for (int i = 0; i < ready; i++) {
      void *what = events[i].data.ptr;
      if (what == &stdin_marker) {
        char scratch[256];
        if (read(STDIN_FILENO, scratch, sizeof scratch) <= 0) return 0;
      } else if (what == NULL) {
        int fd;
        while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct connection *c = malloc(sizeof *c);
          c->fd = fd;
          c->pending = c->sent = 0;
          watch(c, EPOLLIN, EPOLL_CTL_ADD);
        }
      } else {
        on_event(what, events[i].events);
      }
    }
  }
}
