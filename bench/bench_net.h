/* bench_net — what the benchmark clients (loadgen.c, history_load.c, mqttpub.c) share: a
 * monotonic clock, dying on a failed system call, a growing text buffer and a
 * blocking TCP connection. Header-only, because each tool is one .c file that
 * its script compiles on its own. */
#ifndef CB_BENCH_NET_H
#define CB_BENCH_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static inline void die(const char *what)
{
    perror(what);
    exit(2);
}

/* A NUL-terminated text that grows; p is owned by whoever holds the struct. */
struct text {
    char *p;
    size_t len, cap;
};

/* Room for n more bytes and the NUL. */
static inline void text_reserve(struct text *t, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        if (!(t->p = realloc(t->p, t->cap)))
            die("realloc");
    }
}

static inline void text_add(struct text *t, const char *s, size_t n)
{
    text_reserve(t, n);
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

/* A connected socket to host (IPv4 text):port; dies if the system refuses,
 * returns -1 if host is not an IPv4 address. */
static inline int bench_connect(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect");
    int one = 1; /* as libpq and Go's net/http do: a request's last segment goes at once */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

#endif
