/* Health probes: the status-line parser, the listener-to-address mapping,
 * and whole probes against real sockets on 127.0.0.1 (a listener that
 * answers, one that never does, and a port nothing listens on). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe.h"

static int status_of(const char *s)
{
    return probe_status(s, strlen(s));
}

static void test_status_line(void **state)
{
    (void)state;
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\n"), 200);
    assert_int_equal(status_of("HTTP/1.0 503 Service Unavailable\r\n"), 503);
    assert_int_equal(status_of("HTTP/1.1 404\r\n"), 404);
    /* Not all there yet. */
    assert_int_equal(status_of(""), -EAGAIN);
    assert_int_equal(status_of("HTT"), -EAGAIN);
    assert_int_equal(status_of("HTTP/1.1 20"), -EAGAIN);
    assert_int_equal(status_of("HTTP/1.1 200"), -EAGAIN);
    /* Not HTTP, or not a status. */
    assert_int_equal(status_of("SSH-2.0-OpenSSH\r\n"), -EBADMSG);
    assert_int_equal(status_of("HTTP/2 200 OK\r\n"), -EBADMSG);
    assert_int_equal(status_of("HTTP/1.1 2x0 OK\r\n"), -EBADMSG);
    assert_int_equal(status_of("HTTP/1.1 099 Low\r\n"), -EBADMSG);
    assert_int_equal(status_of("HTTP/1.1 600 High\r\n"), -EBADMSG);
    assert_int_equal(status_of("HTTP/1.1 2000 OK\r\n"), -EBADMSG);
    assert_int_equal(status_of("HTTP/1.9 200 OK\r\n"), -EBADMSG);
}

static void test_addr_from_listen(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char text[INET6_ADDRSTRLEN];
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

    assert_int_equal(probe_addr_from_listen("0.0.0.0:8081", &ss, &len), 0);
    assert_int_equal(v4->sin_family, AF_INET);
    assert_int_equal(ntohs(v4->sin_port), 8081);
    assert_string_equal(inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)), "127.0.0.1");
    assert_int_equal(len, sizeof(struct sockaddr_in));

    assert_int_equal(probe_addr_from_listen("192.0.2.7:9222", &ss, &len), 0);
    assert_string_equal(inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)), "192.0.2.7");
    assert_int_equal(probe_addr_from_listen("localhost:80", &ss, &len), 0);
    assert_string_equal(inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)), "127.0.0.1");

    assert_int_equal(probe_addr_from_listen("[::]:8081", &ss, &len), 0);
    assert_int_equal(v6->sin6_family, AF_INET6);
    assert_string_equal(inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text)), "::1");
    assert_int_equal(ntohs(v6->sin6_port), 8081);
    assert_int_equal(probe_addr_from_listen("[2001:db8::1]:1", &ss, &len), 0);
    assert_string_equal(inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text)), "2001:db8::1");

    const char *bad[] = { "", "8081", ":8081", "host:8081", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536",
                          "1.2.3.4:80x", "[::1]8081", "[::1:8081", "[]:80", "[zz]:80" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(probe_addr_from_listen(bad[i], &ss, &len), -EINVAL);
}

/* Drives p until it ends (or 2 s pass): its result. */
static int drive(struct probe *p, int server, const char *answer)
{
    int client = -1;
    for (int i = 0; i < 200; i++) {
        if (server >= 0 && client < 0) {
            struct pollfd a = { .fd = server, .events = POLLIN };
            if (poll(&a, 1, 0) == 1)
                client = accept(server, NULL, NULL);
        }
        if (client >= 0 && answer) {
            char req[256];
            struct pollfd r = { .fd = client, .events = POLLIN };
            if (poll(&r, 1, 0) == 1 && recv(client, req, sizeof(req), 0) > 0) {
                assert_non_null(strstr(req, "GET /healthz HTTP/1.1\r\n"));
                assert_int_equal(send(client, answer, strlen(answer), MSG_NOSIGNAL), (ssize_t)strlen(answer));
                answer = NULL;
            }
        }
        struct pollfd w = { .fd = p->fd, .events = POLLIN | POLLOUT };
        if (poll(&w, 1, 10) == 1) {
            int rc = probe_ready(p);
            if (rc != 0) {
                if (client >= 0)
                    close(client);
                return rc;
            }
        }
    }
    if (client >= 0)
        close(client);
    return 0; /* still waiting: the caller's deadline would fail it */
}

static int listener(struct sockaddr_storage *ss, socklen_t *len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof(*a);
    assert_int_equal(bind(fd, (struct sockaddr *)a, *len), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)a, len), 0);
    return fd;
}

static void test_real_probes(void **state)
{
    (void)state;
    struct probe p;
    probe_init(&p);
    snprintf(p.path, sizeof(p.path), "/healthz");

    /* An answer, even a 503, is life. */
    int server = listener(&p.addr, &p.addrlen);
    assert_int_equal(probe_start(&p), 0);
    assert_int_equal(drive(&p, server, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"), 1);
    assert_int_equal(p.fd, -1);

    /* Accepted (by the kernel) but never answered: still waiting. */
    assert_int_equal(probe_start(&p), 0);
    assert_int_equal(drive(&p, -1, NULL), 0);
    assert_true(p.fd >= 0);
    probe_close(&p);
    assert_int_equal(p.fd, -1);
    close(accept(server, NULL, NULL)); /* its connection, left in the queue */

    /* A 500 is the child saying it is broken: a failure. */
    assert_int_equal(probe_start(&p), 0);
    assert_int_equal(drive(&p, server, "HTTP/1.1 500 Internal Server Error\r\n\r\n"), -EPROTO);
    assert_int_equal(p.fd, -1);

    /* Something that is not HTTP. */
    assert_int_equal(probe_start(&p), 0);
    assert_int_equal(drive(&p, server, "SSH-2.0-OpenSSH_9.2\r\n"), -EBADMSG);

    /* Nothing listens any more: refused. */
    close(server);
    assert_int_equal(probe_start(&p), 0);
    assert_int_equal(drive(&p, -1, NULL), -ECONNREFUSED);
    assert_int_equal(p.fd, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_addr_from_listen),
        cmocka_unit_test(test_real_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
