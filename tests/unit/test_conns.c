/* The header deadline (renderer/conns.c) against a real libmicrohttpd
 * daemon in external epoll mode, driven the way the HTTP thread drives it:
 * a client that never finishes its headers is shut down once the deadline
 * has passed, a whole request is answered and not cut, and a kept-alive
 * connection waiting for its next request gets a new deadline. */
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
#include <microhttpd.h>

#include "clock.h"
#include "conns.h"

#define DEADLINE_MS 200

struct fixture {
    struct conns *cs;
    struct MHD_Daemon *d;
    int port;
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **req_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    /* As the renderer does: the first call takes the headers, the second
     * answers (an answer queued at the first call closes the connection). */
    static int first;
    if (!*req_cls) {
        *req_cls = &first;
        conns_headers_done(conn);
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    *req_cls = NULL;
    conns_request_done(cls, conn);
}

static int setup(void **state)
{
    static struct fixture fx;
    fx.cs = conns_new((int64_t)DEADLINE_MS * CLOCK_NS_PER_MS);
    fx.d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_CONNECTION, conns_notify,
                            fx.cs, MHD_OPTION_NOTIFY_COMPLETED, completed, fx.cs, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)30, MHD_OPTION_END);
    assert_non_null(fx.d);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(fx.d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(di);
    fx.port = di->port;
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    MHD_stop_daemon(fx->d);
    conns_free(fx->cs);
    return 0;
}

static int client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Runs MHD and the cut, as api_loop does, for up to ms or until fd has
 * something to read (an answer or its end): how many were cut. */
static unsigned pump(struct fixture *fx, int fd, int ms)
{
    unsigned cut = 0;
    int64_t end = clock_now_ns() + (int64_t)ms * CLOCK_NS_PER_MS;
    while (clock_now_ns() < end) {
        int64_t next;
        cut += conns_cut(fx->cs, clock_now_ns(), &next);
        MHD_run(fx->d);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 5) == 1)
            break;
    }
    MHD_run(fx->d);
    return cut;
}

static void test_slow_headers_are_cut(void **state)
{
    struct fixture *fx = *state;
    int fd = client(fx->port);
    assert_int_equal(send(fd, "GET / HT", 8, 0), 8);
    int64_t start = clock_now_ns();
    assert_int_equal(pump(fx, fd, 50), 0);
    assert_int_equal(conns_waiting(fx->cs), 1);
    int64_t next = 0;
    assert_int_equal(conns_cut(fx->cs, clock_now_ns(), &next), 0);
    assert_true(next > clock_now_ns() && next <= clock_now_ns() + (int64_t)DEADLINE_MS * CLOCK_NS_PER_MS);

    unsigned cut = pump(fx, fd, 5000);
    assert_int_equal(cut, 1);
    assert_true(clock_now_ns() - start >= (int64_t)DEADLINE_MS * CLOCK_NS_PER_MS);
    char buf[64];
    assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0); /* closed, no answer */
    pump(fx, fd, 20);
    assert_int_equal(conns_waiting(fx->cs), 0);
    assert_int_equal(conns_cut(fx->cs, clock_now_ns(), &next), 0);
    assert_int_equal(next, 0);
    close(fd);
}

static void test_whole_request_is_answered_then_idle_is_cut(void **state)
{
    struct fixture *fx = *state;
    int fd = client(fx->port);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    assert_int_equal(pump(fx, fd, 5000), 0);
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
    /* Kept alive: the next request's headers have their own deadline. */
    assert_null(strstr(buf, "Connection: close"));
    assert_int_equal(conns_waiting(fx->cs), 1);
    assert_int_equal(pump(fx, fd, 5000), 1);
    assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slow_headers_are_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_request_is_answered_then_idle_is_cut, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
