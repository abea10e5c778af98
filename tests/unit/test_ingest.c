/* The ingest line writer and the non-blocking sender. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ingest.h"

static struct ingest_buf buf;

static void assert_buf_is(const char *text)
{
    assert_int_equal(buf.len, strlen(text));
    assert_memory_equal(buf.data, text, buf.len);
}

static void test_value_formats(void **state)
{
    (void)state;
    char s[40];
    ingest_format_value(s, sizeof(s), 0);
    assert_string_equal(s, "0");
    ingest_format_value(s, sizeof(s), 3);
    assert_string_equal(s, "3");
    ingest_format_value(s, sizeof(s), -42);
    assert_string_equal(s, "-42");
    ingest_format_value(s, sizeof(s), 0.532);
    assert_string_equal(s, "0.532");
    ingest_format_value(s, sizeof(s), 0.1);
    assert_string_equal(s, "0.1");
    ingest_format_value(s, sizeof(s), 104857600);
    assert_string_equal(s, "104857600");
    ingest_format_value(s, sizeof(s), 1e300);
    assert_string_equal(s, "1e+300");
    ingest_format_value(s, sizeof(s), INFINITY);
    assert_string_equal(s, "+Inf");
    ingest_format_value(s, sizeof(s), -INFINITY);
    assert_string_equal(s, "-Inf");
    ingest_format_value(s, sizeof(s), NAN);
    assert_string_equal(s, "NaN");
    /* every value reads back exactly */
    double vals[] = { 1.0 / 3, 2.0 / 3, 1e-9, 123456.789, 1.7976931348623157e308, 5e-324 };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        ingest_format_value(s, sizeof(s), vals[i]);
        assert_true(strtod(s, NULL) == vals[i]);
    }
}

static void test_line_without_labels(void **state)
{
    (void)state;
    ingest_buf_reset(&buf);
    assert_int_equal(ingest_buf_line(&buf, "grafana_image_renderer_http_request_in_flight", NULL, 3), 0);
    assert_buf_is("grafana_image_renderer_http_request_in_flight 3\n");
    ingest_buf_fini(&buf);
}

static void test_line_with_labels(void **state)
{
    (void)state;
    ingest_buf_reset(&buf);
    const char *l1[] = { "step", "navigate", NULL };
    const char *l2[] = { "child", "browser-0", "mode", "user", NULL };
    assert_int_equal(ingest_buf_line(&buf, "grafana_image_renderer_step_duration_seconds", l1, 0.532), 0);
    assert_int_equal(ingest_buf_line(&buf, "rendervisor_child_cpu_seconds_total", l2, 1.25), 0);
    assert_buf_is("grafana_image_renderer_step_duration_seconds{step=\"navigate\"} 0.532\n"
                        "rendervisor_child_cpu_seconds_total{child=\"browser-0\",mode=\"user\"} 1.25\n");
    ingest_buf_fini(&buf);
}

static void test_label_escaping(void **state)
{
    (void)state;
    ingest_buf_reset(&buf);
    const char *l[] = { "version", "a\\b\"c\nd", NULL };
    assert_int_equal(ingest_buf_line(&buf, "x", l, 1), 0);
    assert_buf_is("x{version=\"a\\\\b\\\"c\\nd\"} 1\n");
    ingest_buf_fini(&buf);
}

static void test_line_too_long(void **state)
{
    (void)state;
    ingest_buf_reset(&buf);
    char big[INGEST_MAX_LINE + 10];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *l[] = { "version", big, NULL };
    assert_int_equal(ingest_buf_line(&buf, "x", l, 1), -ENOSPC);
    assert_int_equal(buf.len, 0);
    assert_true(buf.overflow);
    ingest_buf_fini(&buf);
}

/* A sender never builds a datagram the exporter would refuse lines of. */
static void test_line_count_capped(void **state)
{
    (void)state;
    ingest_buf_reset(&buf);
    for (int i = 0; i < INGEST_MAX_LINES; i++)
        assert_int_equal(ingest_buf_line(&buf, "x", NULL, 1), 0);
    size_t len = buf.len;
    assert_int_equal(buf.lines, INGEST_MAX_LINES);
    assert_false(buf.overflow);
    assert_int_equal(ingest_buf_line(&buf, "x", NULL, 1), -ENOSPC);
    assert_true(buf.overflow);
    assert_int_equal(buf.len, len);
    ingest_buf_reset(&buf);
    assert_int_equal(buf.lines, 0);
    assert_int_equal(ingest_buf_line(&buf, "x", NULL, 1), 0);
    ingest_buf_fini(&buf);
}

static void test_buffer_full_keeps_whole_lines(void **state)
{
    (void)state;
    ingest_buf_reset(&buf);
    const char *l[] = { "child", "browser-0", NULL };
    int rc = 0, lines = 0;
    while ((rc = ingest_buf_line(&buf, "rendervisor_child_resident_memory_bytes", l, 123456789)) == 0)
        lines++;
    assert_int_equal(rc, -ENOSPC);
    assert_true(buf.overflow);
    size_t one = strlen("rendervisor_child_resident_memory_bytes{child=\"browser-0\"} 123456789\n");
    assert_int_equal(buf.len, one * (size_t)lines);
    assert_true(buf.len <= INGEST_MAX_DATAGRAM);
    assert_true(buf.size <= INGEST_MAX_DATAGRAM);
    assert_true(buf.len + one > INGEST_MAX_DATAGRAM); /* full up to the datagram limit */
    assert_int_equal(buf.data[buf.len - 1], '\n');
    ingest_buf_fini(&buf);
}

/* A buffer holds what its lines need, not the datagram limit, and keeps
 * its storage across resets. */
static void test_buffer_sized_to_its_lines(void **state)
{
    (void)state;
    struct ingest_buf b;
    ingest_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.size, 0);
    const char *l[] = { "step", "navigate", NULL };
    assert_int_equal(ingest_buf_line(&b, "grafana_image_renderer_step_duration_seconds", l, 0.5), 0);
    assert_true(b.size >= b.len && b.size <= 1024);
    for (int i = 0; i < 40; i++)
        assert_int_equal(ingest_buf_line(&b, "grafana_image_renderer_step_duration_seconds", l, 0.5), 0);
    size_t size = b.size;
    assert_true(b.size >= b.len && b.size < 2 * b.len + 512);
    ingest_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.size, size);
    assert_int_equal(ingest_buf_line(&b, "x", NULL, 1), 0);
    assert_memory_equal(b.data, "x 1\n", 4);
    ingest_buf_fini(&b);
    assert_null(b.data);
}

/* A fresh directory for a test's sockets, and the sender's path in it. */
struct sock_dir {
    char dir[32];
    char path[128];
};

static void sock_dir_make(struct sock_dir *d)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/rv-ingest-XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->path, sizeof(d->path), "%s/ingest.sock", d->dir);
}

/* Removes the path and the directory, which must hold nothing else. */
static void sock_dir_remove(struct sock_dir *d)
{
    unlink(d->path);
    assert_int_equal(rmdir(d->dir), 0);
}

static int bind_dgram(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* One line, one datagram, formatted on the stack; a line too long is not
 * sent and not counted as dropped. */
static void test_send_line(void **state)
{
    (void)state;
    struct sock_dir d;
    sock_dir_make(&d);
    struct ingest_sender s;
    assert_int_equal(ingest_sender_init(&s, d.path), 0);
    const char *l[] = { "version", "HeadlessChrome/1\"2", NULL };
    assert_int_not_equal(ingest_send_line(&s, "grafana_image_renderer_browser_info", l, 1), 0);
    assert_int_equal(s.dropped, 1);

    int rx = bind_dgram(d.path);
    assert_int_equal(ingest_send_line(&s, "grafana_image_renderer_browser_info", l, 1), 0);
    char got[256];
    const char *want = "grafana_image_renderer_browser_info{version=\"HeadlessChrome/1\\\"2\"} 1\n";
    ssize_t n = recv(rx, got, sizeof(got), MSG_DONTWAIT);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, strlen(want));

    char big[INGEST_MAX_LINE + 10];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *lb[] = { "version", big, NULL };
    assert_int_equal(ingest_send_line(&s, "x", lb, 1), -ENOSPC);
    assert_int_equal(recv(rx, got, sizeof(got), MSG_DONTWAIT), -1);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.dropped, 1);

    close(rx);
    sock_dir_remove(&d);
    ingest_sender_fini(&s);
}

static void test_send_never_blocks(void **state)
{
    (void)state;
    struct sock_dir d;
    sock_dir_make(&d);

    struct ingest_sender s;
    assert_int_equal(ingest_sender_init(&s, d.path), 0);
    ingest_buf_reset(&buf);
    ingest_buf_line(&buf, "x", NULL, 1);

    /* nobody listening: dropped and counted, not an error that stops us */
    assert_int_not_equal(ingest_send(&s, &buf), 0);
    assert_int_equal(s.dropped, 1);

    int rfd = bind_dgram(d.path);
    assert_int_equal(ingest_send(&s, &buf), 0);
    char got[64];
    ssize_t n = recv(rfd, got, sizeof(got), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(got, "x 1\n", 4);

    /* fill the receiver's queue: the sender returns at once with a drop */
    unsigned long long before = s.dropped;
    int full = 0;
    for (int i = 0; i < 100000 && !full; i++)
        full = ingest_send(&s, &buf) == -EAGAIN;
    assert_true(full);
    assert_int_equal(s.dropped, before + 1);

    close(rfd);
    sock_dir_remove(&d);
    ingest_sender_fini(&s);
    ingest_buf_fini(&buf);
}

/* The sender never follows a link at its path, and a socket it is
 * connected to stays its receiver until that one goes; then it finds the
 * new one at the path. */
static void test_sender_refuses_a_link_and_follows_a_restart(void **state)
{
    (void)state;
    struct sock_dir d;
    sock_dir_make(&d);
    const char *path = d.path;
    char real[128], file[128];
    snprintf(real, sizeof(real), "%s/elsewhere.sock", d.dir);
    snprintf(file, sizeof(file), "%s/file", d.dir);
    struct ingest_sender s;
    assert_int_equal(ingest_sender_init(&s, path), 0);
    ingest_buf_reset(&buf);
    ingest_buf_line(&buf, "x", NULL, 1);
    char got[64];

    int elsewhere = bind_dgram(real);
    assert_int_equal(symlink(real, path), 0);
    assert_int_equal(ingest_send(&s, &buf), -ELOOP);
    assert_int_equal(s.dropped, 1);
    assert_int_equal(recv(elsewhere, got, sizeof(got), MSG_DONTWAIT), -1);
    unlink(path);

    FILE *f = fopen(file, "w");
    fclose(f);
    assert_int_equal(rename(file, path), 0);
    assert_int_equal(ingest_send(&s, &buf), -ENOTSOCK);
    assert_int_equal(s.dropped, 2);
    unlink(path);

    int rx = bind_dgram(path);
    assert_int_equal(ingest_send(&s, &buf), 0);
    assert_int_equal(recv(rx, got, sizeof(got), 0), 4);
    /* a link put at the path now changes nothing for the connected sender */
    assert_int_equal(rename(path, file), 0);
    assert_int_equal(symlink(real, path), 0);
    assert_int_equal(ingest_send(&s, &buf), 0);
    assert_int_equal(recv(rx, got, sizeof(got), 0), 4);
    assert_int_equal(recv(elsewhere, got, sizeof(got), MSG_DONTWAIT), -1);

    /* the receiver restarts: a new socket at the path, found at once */
    close(rx);
    unlink(file);
    unlink(path);
    rx = bind_dgram(path);
    assert_int_equal(ingest_send(&s, &buf), 0);
    assert_int_equal(recv(rx, got, sizeof(got), MSG_DONTWAIT), 4);
    assert_memory_equal(got, "x 1\n", 4);
    assert_int_equal(s.sent, 3);
    assert_int_equal(s.dropped, 2);

    close(rx);
    close(elsewhere);
    unlink(real);
    sock_dir_remove(&d);
    ingest_sender_fini(&s);
    ingest_buf_fini(&buf);
}

static void test_sender_path_too_long(void **state)
{
    (void)state;
    char path[200];
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    struct ingest_sender s;
    assert_int_equal(ingest_sender_init(&s, path), -ENAMETOOLONG);
    ingest_sender_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_formats),
        cmocka_unit_test(test_line_without_labels),
        cmocka_unit_test(test_line_with_labels),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_line_count_capped),
        cmocka_unit_test(test_buffer_full_keeps_whole_lines),
        cmocka_unit_test(test_buffer_sized_to_its_lines),
        cmocka_unit_test(test_send_line),
        cmocka_unit_test(test_send_never_blocks),
        cmocka_unit_test(test_sender_refuses_a_link_and_follows_a_restart),
        cmocka_unit_test(test_sender_path_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
