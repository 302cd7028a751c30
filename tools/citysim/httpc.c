/* httpc — HTTP/1.1 over plain sockets with keep-alive; see httpc.h. */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024)

struct httpc {
    char host[256];
    char port[8];
    char *bearer;
    int fd; /* -1 when not connected */
    buf in; /* bytes read but not yet consumed (pipelined leftovers) */
};

int httpc_open(const char *url, httpc **out, char *err, size_t errlen)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        snprintf(err, errlen, "url must start with http:// (got '%s')", url);
        return -1;
    }
    p += 7;
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof((httpc *)0)->host) {
        snprintf(err, errlen, "no host in url '%s'", url);
        return -1;
    }
    httpc *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(c->host, p, hl);
    p += hl;
    snprintf(c->port, sizeof c->port, "80");
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf(err, errlen, "bad port in url '%s'", url);
            free(c);
            return -1;
        }
        snprintf(c->port, sizeof c->port, "%ld", port);
    }
    c->fd = -1;
    buf_init(&c->in);
    *out = c;
    return 0;
}

static void disconnect(httpc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_reset(&c->in);
}

void httpc_free(httpc *c)
{
    if (!c)
        return;
    disconnect(c);
    buf_free(&c->in);
    free(c->bearer);
    free(c);
}

int httpc_set_bearer(httpc *c, const char *token)
{
    free(c->bearer);
    c->bearer = token ? strdup(token) : NULL;
    return token && !c->bearer ? -1 : 0;
}

void httpc_response_free(struct httpc_response *r)
{
    buf_free(&r->body);
}

static int dial(httpc *c, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s:%s: %s", c->host, c->port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "connect %s:%s: %s", c->host, c->port, strerror(saved));
        return -1;
    }
    int one = 1;
    struct timeval tv = {.tv_sec = HTTPC_TIMEOUT_S};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    c->fd = fd;
    return 0;
}

static int io_error(const char *what, int e, char *err, size_t errlen)
{
    if (e == EINTR)
        snprintf(err, errlen, "interrupted");
    else if (e == EAGAIN || e == EWOULDBLOCK)
        snprintf(err, errlen, "%s: timed out after %d s", what, HTTPC_TIMEOUT_S);
    else
        snprintf(err, errlen, "%s: %s", what, e ? strerror(e) : "connection closed");
    return -1;
}

static int send_all(httpc *c, const buf *head, const char *body, size_t len, char *err, size_t errlen)
{
    struct iovec iov[2] = {{head->data, head->len}, {(void *)body, body ? len : 0}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    size_t left = head->len + (body ? len : 0);
    while (left > 0) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0)
            return io_error("send", errno, err, errlen);
        left -= (size_t)n;
        while (msg.msg_iovlen > 0 && (size_t)n >= msg.msg_iov->iov_len) {
            n -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
            msg.msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Reads more bytes into c->in; 0, or -1 (closed: err says so). */
static int fill(httpc *c, char *err, size_t errlen)
{
    char *at = buf_reserve(&c->in, 64 * 1024);
    if (!at)
        return snprintf(err, errlen, "out of memory"), -1;
    ssize_t n = recv(c->fd, at, 64 * 1024, 0);
    if (n <= 0)
        return io_error("recv", n < 0 ? errno : 0, err, errlen);
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = 0;
    return 0;
}

/* Drops the first n bytes of c->in. */
static void consume(httpc *c, size_t n)
{
    memmove(c->in.data, c->in.data + n, c->in.len - n + 1);
    c->in.len -= n;
}

/* Moves n body bytes from the connection into out. */
static int read_exact(httpc *c, size_t n, buf *out, char *err, size_t errlen)
{
    while (c->in.len < n)
        if (fill(c, err, errlen) != 0)
            return -1;
    buf_append(out, c->in.data, n);
    consume(c, n);
    return buf_ok(out) ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

/* A line ending in CRLF at the start of c->in, read whole; returns its length
 * without the CRLF, the line being NUL-terminated in place. */
static long read_line(httpc *c, char *err, size_t errlen)
{
    char *eol;
    while (!(eol = strstr(c->in.data ? c->in.data : "", "\r\n"))) {
        if (c->in.len > HEAD_MAX)
            return snprintf(err, errlen, "line longer than %d bytes", HEAD_MAX), -1;
        if (fill(c, err, errlen) != 0)
            return -1;
    }
    *eol = 0;
    return eol - c->in.data;
}

static int read_chunked(httpc *c, buf *out, char *err, size_t errlen)
{
    for (;;) {
        long n = read_line(c, err, errlen);
        if (n < 0)
            return -1;
        char *end;
        unsigned long size = strtoul(c->in.data, &end, 16);
        if (end == c->in.data)
            return snprintf(err, errlen, "bad chunk size"), -1;
        consume(c, (size_t)n + 2);
        if (size == 0)
            break;
        if (read_exact(c, size, out, err, errlen) != 0)
            return -1;
        if ((n = read_line(c, err, errlen)) != 0)
            return n < 0 ? -1 : (snprintf(err, errlen, "chunk not followed by CRLF"), -1);
        consume(c, 2);
    }
    long n; /* trailers, up to the empty line */
    while ((n = read_line(c, err, errlen)) > 0)
        consume(c, (size_t)n + 2);
    if (n < 0)
        return -1;
    consume(c, 2);
    return 0;
}

struct head {
    long content_length; /* -1: none */
    int chunked, close;
};

static void parse_header(char *line, struct head *h, struct httpc_response *r)
{
    char *colon = strchr(line, ':');
    if (!colon)
        return;
    *colon = 0;
    char *v = colon + 1;
    v += strspn(v, " \t");
    if (!strcasecmp(line, "Content-Length"))
        h->content_length = strtol(v, NULL, 10);
    else if (!strcasecmp(line, "Transfer-Encoding"))
        h->chunked = strcasestr(v, "chunked") != NULL;
    else if (!strcasecmp(line, "Connection"))
        h->close = strcasestr(v, "close") != NULL;
    else if (!strcasecmp(line, "Retry-After"))
        r->retry_after = atoi(v);
}

/* Reads one answer; *got_bytes tells whether any byte of it arrived. */
static int read_response(httpc *c, const char *method, struct httpc_response *r, int *got_bytes, char *err,
                         size_t errlen)
{
    struct head h = {.content_length = -1};
    if (c->in.len == 0 && fill(c, err, errlen) != 0)
        return -1;
    *got_bytes = 1;
    long n = read_line(c, err, errlen);
    if (n < 0)
        return -1;
    if (sscanf(c->in.data, "HTTP/1.%*d %d", &r->status) != 1)
        return snprintf(err, errlen, "not an HTTP answer"), -1;
    consume(c, (size_t)n + 2);
    while ((n = read_line(c, err, errlen)) > 0) {
        parse_header(c->in.data, &h, r);
        consume(c, (size_t)n + 2);
    }
    if (n < 0)
        return -1;
    consume(c, 2);
    int rc = 0;
    if (!strcmp(method, "HEAD") || r->status == 204 || r->status == 304)
        ;
    else if (h.chunked)
        rc = read_chunked(c, &r->body, err, errlen);
    else if (h.content_length >= 0)
        rc = read_exact(c, (size_t)h.content_length, &r->body, err, errlen);
    else { /* delimited by close */
        while (fill(c, err, errlen) == 0)
            ;
        buf_append(&r->body, c->in.data, c->in.len);
        h.close = 1;
    }
    if (rc == 0 && h.close)
        disconnect(c);
    buf_append(&r->body, "", 0); /* always a string, also when empty */
    return rc;
}

int httpc_request(httpc *c, const char *method, const char *path, const char *content_type,
                  const char *body, size_t body_len, struct httpc_response *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    buf head;
    buf_init(&head);
    buf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: citysim\r\nAccept: application/json\r\n",
               method, path, c->host, c->port);
    if (c->bearer)
        buf_printf(&head, "Authorization: Bearer %s\r\n", c->bearer);
    if (body) {
        buf_printf(&head, "Content-Type: %s\r\nContent-Length: %zu\r\n", content_type, body_len);
    }
    buf_puts(&head, "\r\n");
    int rc = -1;
    if (!buf_ok(&head)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = c->fd >= 0, got = 0;
        if (!reused && dial(c, err, errlen) != 0)
            goto out;
        r->status = 0;
        r->retry_after = -1;
        buf_reset(&r->body);
        if (send_all(c, &head, body, body_len, err, errlen) == 0 &&
            read_response(c, method, r, &got, err, errlen) == 0) {
            rc = 0;
            goto out;
        }
        disconnect(c);
        if (!reused || got || !strcmp(err, "interrupted"))
            goto out; /* only a stale kept-alive socket earns a second try */
    }
out:
    buf_free(&head);
    return rc;
}
