/* sink — the ceiling of the HTTP transport for bench/ingest.sh: a server that
 * reads each request whole (headers, then Content-Length bytes of body) and
 * answers a fixed 200 {"accepted": N}, doing nothing else. loadgen against it
 * measures what one machine's sockets and the client cost; citybrain's rate
 * divided by it is the share left after parsing, the WAL and the state.
 *
 * One thread per connection, blocking sockets: like loadgen, simple and fair
 * at the handful of connections the benchmark opens.
 *
 * usage: sink [-a N]     binds 127.0.0.1 on a free port, prints "port=P", serves
 * until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

static char reply[256];
static size_t reply_len;

/* Content-Length of the NUL-terminated header block, 0 when absent. */
static size_t content_length(const char *head)
{
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            return strtoul(p + 17, NULL, 10);
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(BUF_SIZE + 1);
    size_t have = 0;
    while (buf) {
        char *end;
        buf[have] = 0;
        while (!(end = strstr(buf, "\r\n\r\n"))) { /* headers */
            ssize_t n = have < BUF_SIZE ? recv(fd, buf + have, BUF_SIZE - have, 0) : -1;
            if (n <= 0)
                goto out;
            have += (size_t)n;
            buf[have] = 0;
        }
        size_t head = (size_t)(end + 4 - buf), body = content_length(buf);
        size_t got = have - head < body ? have - head : body;
        while (got < body) { /* body: read and drop */
            ssize_t n = recv(fd, buf, BUF_SIZE < body - got ? BUF_SIZE : body - got, 0);
            if (n <= 0)
                goto out;
            got += (size_t)n;
        }
        size_t used = head + body < have ? head + body : have, rest = have - used;
        memmove(buf, buf + used, rest); /* a pipelined next request */
        have = rest;
        if (send(fd, reply, reply_len, MSG_NOSIGNAL) != (ssize_t)reply_len)
            goto out;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    long accepted = 5000;
    if (argc == 3 && !strcmp(argv[1], "-a"))
        accepted = atol(argv[2]);
    else if (argc != 1) {
        fprintf(stderr, "usage: sink [-a N]\n");
        return 2;
    }
    char body[64];
    int blen = snprintf(body, sizeof body, "{\"accepted\":%ld,\"rejected\":0,\"errors\":[]}", accepted);
    reply_len = (size_t)snprintf(reply, sizeof reply,
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                                 blen, body);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sa;
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 128) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &slen) != 0) {
        perror("sink");
        return 1;
    }
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            perror("accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) != 0)
            close(fd);
        else
            pthread_detach(t);
    }
}
