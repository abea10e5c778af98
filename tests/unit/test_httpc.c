/* The HTTP client against real sockets: a listening socket in the test
 * plays the server, answering in pieces, badly, too much, or not to the
 * end, and the client is stepped the way a loop would step it. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "httpc.h"

struct peer {
    int lfd;  /* listening */
    int cfd;  /* the client's end */
    int sfd;  /* the server's end */
    unsigned port;
    char path[108];
};

static unsigned listen_loopback(int *lfd)
{
    *lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*lfd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(*lfd, 4), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(*lfd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

/* The client connects and the server accepts: nothing is sent yet. */
static void peer_open(struct peer *p)
{
    p->port = listen_loopback(&p->lfd);
    p->cfd = httpc_connect_loopback(p->port);
    assert_true(p->cfd >= 0);
    p->sfd = accept(p->lfd, NULL, NULL);
    assert_true(p->sfd >= 0);
}

static void peer_close(struct peer *p)
{
    close(p->cfd);
    if (p->sfd >= 0)
        close(p->sfd);
    close(p->lfd);
}

/* Step until the client waits or ends, as a loop would on readiness. */
static int step(struct httpc *c, int fd)
{
    struct pollfd pf = { .fd = fd, .events = (short)httpc_events(c) };
    assert_true(poll(&pf, 1, 2000) >= 0);
    return httpc_step(c, fd);
}

static void server_send(struct peer *p, const char *text)
{
    size_t len = strlen(text);
    assert_int_equal(send(p->sfd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* The server reads the request and checks it is the GET we mean. */
static void server_read_request(struct peer *p, const char *host)
{
    char want[256], got[256];
    snprintf(want, sizeof(want), "GET /json/version HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    size_t len = 0;
    while (len < strlen(want)) {
        ssize_t n = recv(p->sfd, got + len, sizeof(got) - 1 - len, 0);
        assert_true(n > 0);
        len += (size_t)n;
    }
    got[len] = '\0';
    assert_string_equal(got, want);
}

/* A client connected and its request read, waiting for the answer. */
static void start(struct peer *p, struct httpc *c, size_t max)
{
    peer_open(p);
    httpc_init(c, "127.0.0.1", "/json/version", max);
    assert_int_equal(httpc_events(c), POLLOUT);
    assert_int_equal(step(c, p->cfd), -EAGAIN);
    assert_int_equal(httpc_events(c), POLLIN);
    server_read_request(p, "127.0.0.1");
}

static void finish(struct peer *p, struct httpc *c)
{
    httpc_fini(c);
    peer_close(p);
}

static void test_content_length(void **state)
{
    (void)state;
    struct peer p;
    struct httpc c;
    start(&p, &c, 4096);
    /* The head a byte at a time: nothing is decided before its end. */
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 10\r\n\r\n";
    for (const char *q = head; *q; q++) {
        char one[2] = { *q, '\0' };
        server_send(&p, one);
        assert_int_equal(step(&c, p.cfd), -EAGAIN);
    }
    server_send(&p, "{\"a\":");
    assert_int_equal(step(&c, p.cfd), -EAGAIN);
    /* Complete at Content-Length, with the connection still open, and
     * what comes after it is not read as body. */
    server_send(&p, "\"b\"}\nGARBAGE");
    assert_int_equal(step(&c, p.cfd), 0);
    assert_int_equal(c.status, 200);
    size_t len;
    const char *body = httpc_body(&c, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(body, "{\"a\":\"b\"}\n", 10);
    /* Done stays done. */
    assert_int_equal(httpc_step(&c, p.cfd), 0);
    char *owned = httpc_steal_body(&c, &len);
    assert_int_equal(len, 10);
    assert_string_equal(owned, "{\"a\":\"b\"}\n");
    free(owned);
    finish(&p, &c);
}

static void test_close_delimited(void **state)
{
    (void)state;
    struct peer p;
    struct httpc c;
    start(&p, &c, 1 << 20);
    server_send(&p, "HTTP/1.0 404 Not Found\r\nServer: test\r\n\r\nnot ");
    assert_int_equal(step(&c, p.cfd), -EAGAIN);
    server_send(&p, "here");
    assert_int_equal(step(&c, p.cfd), -EAGAIN);
    close(p.sfd);
    p.sfd = -1;
    /* Any status is an answer: the caller judges it. */
    assert_int_equal(step(&c, p.cfd), 0);
    assert_int_equal(c.status, 404);
    size_t len;
    char *owned = httpc_steal_body(&c, &len);
    assert_string_equal(owned, "not here");
    assert_int_equal(len, 8);
    free(owned);
    finish(&p, &c);
}

/* A body larger than a socket buffer, read over many steps. */
static void test_large_body(void **state)
{
    (void)state;
    struct peer p;
    struct httpc c;
    size_t size = 4 << 20;
    start(&p, &c, size + 100);
    char head[64];
    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", size);
    server_send(&p, head);
    char *body = malloc(size);
    for (size_t i = 0; i < size; i++)
        body[i] = (char)('a' + i % 26);
    size_t sent = 0;
    int rc = -EAGAIN, steps = 0;
    while (rc == -EAGAIN) {
        if (sent < size) {
            ssize_t n = send(p.sfd, body + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            assert_true(n > 0 || errno == EAGAIN);
            if (n > 0)
                sent += (size_t)n;
        }
        rc = step(&c, p.cfd);
        steps++;
    }
    assert_int_equal(rc, 0);
    assert_true(steps > 1);
    size_t len;
    const char *got = httpc_body(&c, &len);
    assert_int_equal(len, size);
    assert_memory_equal(got, body, size);
    free(body);
    finish(&p, &c);
}

/* The server stops mid-answer: in the head, or short of Content-Length. */
static void test_cut_off(void **state)
{
    (void)state;
    struct peer p;
    struct httpc c;
    start(&p, &c, 4096);
    server_send(&p, "HTTP/1.1 200 OK\r\nContent-Len");
    assert_int_equal(step(&c, p.cfd), -EAGAIN);
    close(p.sfd);
    p.sfd = -1;
    assert_int_equal(step(&c, p.cfd), -EBADMSG);
    assert_non_null(strstr(c.why, "before the end of the head"));
    assert_int_equal(httpc_step(&c, p.cfd), -EBADMSG);
    finish(&p, &c);

    start(&p, &c, 4096);
    server_send(&p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd");
    assert_int_equal(step(&c, p.cfd), -EAGAIN);
    close(p.sfd);
    p.sfd = -1;
    assert_int_equal(step(&c, p.cfd), -EBADMSG);
    assert_string_equal(c.why, "closed after 4 of 10 body bytes");
    size_t len;
    httpc_body(&c, &len);
    assert_int_equal(len, 0);
    finish(&p, &c);

    /* Nothing at all. */
    start(&p, &c, 4096);
    close(p.sfd);
    p.sfd = -1;
    assert_int_equal(step(&c, p.cfd), -EBADMSG);
    assert_string_equal(c.why, "closed after 0 bytes, before the end of the head");
    finish(&p, &c);
}

static void expect_bad(const char *answer, int err, const char *why)
{
    struct peer p;
    struct httpc c;
    start(&p, &c, 4096);
    server_send(&p, answer);
    close(p.sfd);
    p.sfd = -1;
    int rc = step(&c, p.cfd);
    if (rc != err || !strstr(c.why, why))
        fail_msg("answer \"%s\": rc=%d why=\"%s\", expected %d \"%s\"", answer, rc, c.why, err, why);
    finish(&p, &c);
}

static void test_bad_answers(void **state)
{
    (void)state;
    const char *status = "not an HTTP/1.x status line";
    expect_bad("SSH-2.0-OpenSSH_9.2\r\n\r\n", -EBADMSG, status);
    expect_bad("HTTP/2 200 OK\r\n\r\n", -EBADMSG, status);
    expect_bad("HTTP/1.1 20 OK\r\n\r\n", -EBADMSG, status);
    expect_bad("HTTP/1.1 2000 OK\r\n\r\n", -EBADMSG, status);
    expect_bad("HTTP/1.1 2x0 OK\r\n\r\n", -EBADMSG, status);
    expect_bad("http/1.1 200 OK\r\n\r\n", -EBADMSG, status);
    expect_bad("HTTP/1.1 100 Continue\r\n\r\n", -EBADMSG, "status 100: no final answer");
    expect_bad("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", -EBADMSG, "a header line without a name and a colon");
    expect_bad("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", -EBADMSG, "a header line without a name");
    expect_bad("HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n", -EBADMSG, "a header line without a name");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", -EBADMSG, "Content-Length: not a number");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", -EBADMSG, "Content-Length: not a number");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", -EBADMSG, "Content-Length: not a number");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", -EBADMSG,
               "Content-Length: not a number");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", -EBADMSG,
               "Content-Length: two different values");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", -EPROTONOSUPPORT,
               "Transfer-Encoding");
    /* The same value twice is one value. */
    struct peer p;
    struct httpc c;
    start(&p, &c, 4096);
    server_send(&p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length:  2 \r\n\r\nok");
    assert_int_equal(step(&c, p.cfd), 0);
    size_t len;
    assert_memory_equal(httpc_body(&c, &len), "ok", 2);
    assert_int_equal(len, 2);
    finish(&p, &c);
}

static void test_oversized(void **state)
{
    (void)state;
    char big[512];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct peer p;
    struct httpc c;
    /* A close-delimited body past the limit. */
    start(&p, &c, 128);
    server_send(&p, "HTTP/1.1 200 OK\r\n\r\n");
    server_send(&p, big);
    assert_int_equal(step(&c, p.cfd), -EMSGSIZE);
    assert_string_equal(c.why, "an answer of more than 128 bytes");
    finish(&p, &c);
    /* A head that never ends. */
    start(&p, &c, 128);
    server_send(&p, "HTTP/1.1 200 OK\r\nX-Long: ");
    server_send(&p, big);
    assert_int_equal(step(&c, p.cfd), -EMSGSIZE);
    finish(&p, &c);
    /* A Content-Length past it is refused before the body is read. */
    start(&p, &c, 128);
    server_send(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    assert_int_equal(step(&c, p.cfd), -EMSGSIZE);
    assert_non_null(strstr(c.why, "Content-Length: 1000 bytes"));
    finish(&p, &c);
    /* Exactly at the limit is fine. */
    start(&p, &c, 19 + 4);
    server_send(&p, "HTTP/1.1 200 OK\r\n\r\nabcd");
    close(p.sfd);
    p.sfd = -1;
    assert_int_equal(step(&c, p.cfd), 0);
    finish(&p, &c);
}

static void test_refused(void **state)
{
    (void)state;
    int lfd;
    unsigned port = listen_loopback(&lfd);
    close(lfd); /* nobody listens there now */
    int fd = httpc_connect_loopback(port);
    if (fd == -ECONNREFUSED)
        return; /* refused at once: also right */
    assert_true(fd >= 0);
    struct httpc c;
    httpc_init(&c, "127.0.0.1", "/json/version", 4096);
    assert_int_equal(step(&c, fd), -ECONNREFUSED);
    assert_non_null(strstr(c.why, "cannot connect"));
    httpc_fini(&c);
    close(fd);
    assert_int_equal(httpc_connect_loopback(0), -EINVAL);
    assert_int_equal(httpc_connect_loopback(65536), -EINVAL);
}

static void test_unix(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_httpc.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/exporter.sock", dir);
    assert_int_equal(httpc_connect_unix(sa.sun_path), -ENOENT);
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(httpc_connect_unix(longpath), -ENAMETOOLONG);

    struct peer p;
    p.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(p.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p.lfd, 4), 0);
    p.cfd = httpc_connect_unix(sa.sun_path);
    assert_true(p.cfd >= 0);
    p.sfd = accept(p.lfd, NULL, NULL);
    struct httpc c;
    httpc_init(&c, "localhost", "/json/version", 4096);
    assert_int_equal(step(&c, p.cfd), -EAGAIN);
    server_read_request(&p, "localhost");
    server_send(&p, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    assert_int_equal(step(&c, p.cfd), 0);
    assert_int_equal(c.status, 200);
    finish(&p, &c);
    unlink(sa.sun_path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_large_body),
        cmocka_unit_test(test_cut_off),
        cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_unix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
