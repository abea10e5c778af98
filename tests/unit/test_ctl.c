/* Control datagrams: the line parser, and a real exchange on Unix datagram
 * sockets that carries the sender's pid. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "net.h"

static void test_parse(void **state)
{
    (void)state;
    unsigned n = 99;
    assert_int_equal(ctl_parse("drain 0", "drain", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ctl_parse("drain 15\n", "drain", &n), 0);
    assert_int_equal(n, 15);
    assert_int_equal(ctl_parse("drained 3\n", "drained", &n), 0);
    assert_int_equal(n, 3);
    /* The supervisor's figure for the renderer: KiB, up to 4 TiB. */
    assert_int_equal(ctl_parse("memory_kib 524288\n", "memory_kib", &n), 0);
    assert_int_equal(n, 524288);
    assert_int_equal(ctl_parse("memory_kib 4294967295\n", "memory_kib", &n), 0);
    assert_int_equal(n, 4294967295u);
    const char *bad[] = { "", "drain", "drain ", "drain x", "drain 1x", "drain -1", "drain 1 2", "drain 4294967296",
                          "drain 99999999999999999999",
                          "drained 1", "drain\t1", "DRAIN 1", " drain 1", "drain 1\n\n" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ctl_parse(bad[i], "drain", &n), -EINVAL);
}

static void test_parse2(void **state)
{
    (void)state;
    unsigned a = 99, b = 99;
    assert_int_equal(ctl_parse2("pipes 0 1", CTL_PIPES, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(ctl_parse2("pipes 15 4294967295\n", CTL_PIPES, &a, &b), 0);
    assert_int_equal(a, 15);
    assert_int_equal(b, 4294967295u);
    const char *bad[] = { "", "pipes", "pipes ", "pipes 1", "pipes 1 ", "pipes 1  2", "pipes 1 2 3", "pipes x 2",
                          "pipes 1 x", "pipes 1 4294967296", "pipes -1 2", "pipes 1 2\n\n", "pipes\t1 2",
                          "pipes 1\t2", "PIPES 1 2", "pipe 1 2", "drain 1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ctl_parse2(bad[i], CTL_PIPES, &a, &b), -EINVAL);
    /* the one-number verbs do not take two */
    unsigned n;
    assert_int_equal(ctl_parse("pipes 1 2", CTL_PIPES, &n), -EINVAL);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A pipe whose write end went (with every copy of it) reads as EOF. */
static int is_eof(int fd)
{
    char c;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return read(fd, &c, 1) == 0;
}

/* "pipes N G" with two fds, over real Unix datagram sockets: both arrive,
 * close-on-exec, and work; fds sent with a line that is not taken, or a
 * line too long, are closed, so none is left behind. */
static void test_pipes_handover(void **state)
{
    (void)state;
    char dir[] = "/tmp/rv-ctl-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], from[128];
    snprintf(path, sizeof(path), "%s/%s", dir, CTL_RENDERER);
    snprintf(from, sizeof(from), "%s/%s", dir, CTL_SUPERVISOR);
    int rx = ctl_open(path);
    int tx = ctl_open(from); /* the supervisor sends from its own bound socket */
    assert_true(rx >= 0 && tx >= 0);
    int before = open_fds();

    int cmd[2], evt[2]; /* the browser would read cmd[0], write evt[1] */
    assert_int_equal(pipe2(cmd, O_CLOEXEC), 0);
    assert_int_equal(pipe2(evt, O_CLOEXEC), 0);
    int ours[2] = { cmd[1], evt[0] };
    assert_int_equal(ctl_send_fds(tx, path, CTL_PIPES " 1 7\n", ours, 2), 0);
    /* the sender keeps its copies; here they go, so only the received ones remain */
    close(cmd[1]);
    close(evt[0]);

    char line[CTL_LINE_MAX];
    pid_t pid = 0;
    int fds[CTL_FDS_MAX] = { -1, -1 };
    size_t nfds = 9;
    assert_int_equal(ctl_recv_fds(rx, line, sizeof(line), &pid, fds, CTL_FDS_MAX, &nfds), 10);
    assert_string_equal(line, "pipes 1 7\n");
    assert_int_equal(pid, getpid());
    assert_int_equal(nfds, 2);
    unsigned index, gen;
    assert_int_equal(ctl_parse2(line, CTL_PIPES, &index, &gen), 0);
    assert_int_equal(index, 1);
    assert_int_equal(gen, 7);
    for (int i = 0; i < 2; i++)
        assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    /* a command reaches the browser's end; its reply reaches ours */
    char buf[16];
    assert_int_equal(write(fds[0], "{\"id\":1}", 9), 9);
    assert_int_equal(read(cmd[0], buf, sizeof(buf)), 9);
    assert_memory_equal(buf, "{\"id\":1}", 9);
    assert_int_equal(write(evt[1], "ok", 3), 3);
    assert_int_equal(read(fds[1], buf, sizeof(buf)), 3);
    assert_string_equal(buf, "ok");
    close(fds[0]);
    close(fds[1]);
    assert_true(is_eof(cmd[0])); /* no other copy of the write end is left */
    close(cmd[0]);
    close(evt[1]);
    assert_int_equal(open_fds(), before);

    /* A line the receiver does not take fds with: ctl_recv closes them. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    int two[2] = { p[1], p[1] };
    assert_int_equal(ctl_send_fds(tx, path, "drain 1\n", two, 2), 0);
    close(p[1]);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), 8);
    assert_string_equal(line, "drain 1\n");
    assert_true(is_eof(p[0]));
    close(p[0]);
    assert_int_equal(open_fds(), before);

    /* Room for fewer than came: the rest are closed. */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    int both[2] = { p[0], p[1] };
    assert_int_equal(ctl_send_fds(tx, path, CTL_PIPES " 0 1\n", both, 2), 0);
    close(p[1]);
    assert_int_equal(ctl_recv_fds(rx, line, sizeof(line), &pid, fds, 1, &nfds), 10);
    assert_int_equal(nfds, 1);
    close(fds[0]);
    assert_true(is_eof(p[0]));
    close(p[0]);
    assert_int_equal(open_fds(), before);

    /* A line too long: refused whole, its fds closed. */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    char big[CTL_LINE_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ctl_send_fds(tx, path, big, &p[1], 1), 0);
    close(p[1]);
    assert_int_equal(ctl_recv_fds(rx, line, sizeof(line), &pid, fds, CTL_FDS_MAX, &nfds), -EMSGSIZE);
    assert_int_equal(nfds, 0);
    assert_true(is_eof(p[0]));
    close(p[0]);
    assert_int_equal(open_fds(), before);

    /* More than a line may carry is refused by the sender. */
    int three[3] = { rx, rx, rx };
    assert_int_equal(ctl_send_fds(tx, path, "x\n", three, 3), -EINVAL);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EAGAIN);

    close(rx);
    close(tx);
    unlink(path);
    unlink(from);
    rmdir(dir);
}

static void test_probe_line(void **state)
{
    (void)state;
    char line[CTL_LINE_MAX];
    unsigned seq = 0, ms = 0;
    assert_int_equal(ctl_probe_format(line, sizeof(line), 17, 3000), 0);
    assert_string_equal(line, "probe 17 3000\n");
    assert_int_equal(ctl_probe_parse(line, &seq, &ms), 0);
    assert_int_equal(seq, 17);
    assert_int_equal(ms, 3000);
    assert_int_equal(ctl_probe_format(line, sizeof(line), UINT32_MAX, UINT32_MAX), 0);
    assert_true(strlen(line) < CTL_LINE_MAX);
    assert_int_equal(ctl_probe_parse(line, &seq, &ms), 0);
    assert_int_equal(seq, UINT32_MAX);
    assert_int_equal(ms, UINT32_MAX);
    assert_int_equal(ctl_probe_parse("probe 1 0", &seq, &ms), 0);
    const char *bad[] = { "", "probe", "probe 1", "probe 1 ", "probe  1 2", "probe 1 2 3", "probe x 2",
                          "probe 1 4294967296", "probe 1 2\n\n", "PROBE 1 2", "probe 1\t2", "probe -1 2",
                          "drain 1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ctl_probe_parse(bad[i], &seq, &ms), -EINVAL);
}

static void test_health_line(void **state)
{
    (void)state;
    char line[CTL_LINE_MAX];
    struct ctl_health h = { .seq = 5, .nbrowsers = 3, .browsers = "us-" }, back;
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), 0);
    assert_string_equal(line, "alive 5 us-\n");
    assert_int_equal(ctl_health_parse(line, &back), 0);
    assert_int_equal(back.seq, 5);
    assert_false(back.stalled);
    assert_int_equal(back.nbrowsers, 3);
    assert_string_equal(back.browsers, "us-");

    h = (struct ctl_health){ .seq = 6, .stalled = 1 };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), 0);
    assert_string_equal(line, "stalled 6\n");
    assert_int_equal(ctl_health_parse(line, &back), 0);
    assert_int_equal(back.seq, 6);
    assert_true(back.stalled);
    assert_int_equal(back.nbrowsers, 0);

    /* The longest line: the largest number and every browser. */
    h = (struct ctl_health){ .seq = UINT32_MAX, .nbrowsers = CTL_BROWSERS_MAX };
    memset(h.browsers, CTL_BROWSER_SILENT, CTL_BROWSERS_MAX);
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), 0);
    assert_true(strlen(line) < CTL_LINE_MAX);
    assert_int_equal(ctl_health_parse(line, &back), 0);
    assert_int_equal(back.nbrowsers, CTL_BROWSERS_MAX);

    /* What the formatter refuses. */
    h = (struct ctl_health){ .seq = 1, .nbrowsers = CTL_BROWSERS_MAX + 1 };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), -EINVAL);
    h = (struct ctl_health){ .seq = 1, .nbrowsers = 0 };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), -EINVAL);
    h = (struct ctl_health){ .seq = 1, .nbrowsers = 2, .browsers = "ux" };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), -EINVAL);

    const char *bad[] = { "", "alive", "alive 1", "alive 1 ", "alive 1 ux", "alive x u", "alive 1 u u",
                          "alive 4294967296 u", "alive 1 uuuuuuuuuuuuuuuuu", "stalled", "stalled 1 u",
                          "stalled x", "ALIVE 1 u", "alive 1 u\n\n", "drained 1", "probe 1 2" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ctl_health_parse(bad[i], &back), -EINVAL);
}

static void test_exchange(void **state)
{
    (void)state;
    char dir[] = "/tmp/rv-ctl-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, CTL_RENDERER);

    int rx = ctl_open(path);
    assert_true(rx >= 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char line[CTL_LINE_MAX];
    pid_t pid = 0;
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EAGAIN);

    int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(ctl_send(tx, path, "drain 1\n"), 0);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), 8);
    assert_string_equal(line, "drain 1\n");
    assert_int_equal(pid, getpid()); /* the kernel says who sent it */

    /* Too long for a control line: refused as a whole, not cut. */
    char big[CTL_LINE_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ctl_send(tx, path, big), 0);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EMSGSIZE);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EAGAIN);

    /* Nobody there. */
    close(rx);
    unlink(path);
    assert_int_equal(ctl_send(tx, path, "drain 1\n"), -ENOENT);
    close(tx);
    rmdir(dir);
}

/* A file of someone else's, which a link in the socket directory points at. */
static void make_victim(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "precious\n", 9), 9);
    close(fd);
    assert_int_equal(chmod(path, 0644), 0);
}

static void assert_victim_intact(const char *path, uid_t uid, gid_t gid)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_uid, uid);
    assert_int_equal(st.st_gid, gid);
    char got[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, got, sizeof(got) - 1), 9);
    close(fd);
    assert_string_equal(got, "precious\n");
}

/* A link at a socket's path: bind refuses it (it never replaces or follows
 * anything but a socket), and the file it points at keeps its owner, mode
 * and content, also under a umask that would let a chmod through. */
static void test_open_leaves_a_link_alone(void **state)
{
    (void)state;
    char dir[] = "/tmp/rv-ctl-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], victim[128], dangling[128];
    snprintf(path, sizeof(path), "%s/%s", dir, CTL_SUPERVISOR);
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    snprintf(dangling, sizeof(dangling), "%s/nothing", dir);
    make_victim(victim);

    assert_int_equal(symlink(victim, path), 0);
    mode_t old = umask(0);
    assert_int_equal(ctl_open(path), -EEXIST);
    umask(old);
    assert_victim_intact(victim, getuid(), getgid());
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* not ours to remove */

    /* a dangling link: nothing is made where it points */
    unlink(path);
    assert_int_equal(symlink(dangling, path), 0);
    assert_int_equal(ctl_open(path), -EEXIST);
    assert_int_equal(lstat(dangling, &st), -1);

    /* a stale socket is replaced, with the mode asked for whatever the umask */
    unlink(path);
    int stale = ctl_open(path);
    assert_true(stale >= 0);
    close(stale);
    old = umask(0);
    int rx = ctl_open(path);
    umask(old);
    assert_true(rx >= 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    close(rx);

    unlink(path);
    unlink(victim);
    rmdir(dir);
}

/* ctl_send to a link (even one to a live socket), to a file that is no
 * socket, to a directory: refused with its own errno, nothing sent. */
static void test_send_refuses_what_is_not_a_socket(void **state)
{
    (void)state;
    char dir[] = "/tmp/rv-ctl-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char real[128], path[128];
    snprintf(real, sizeof(real), "%s/real.ctl", dir);
    snprintf(path, sizeof(path), "%s/%s", dir, CTL_RENDERER);
    int rx = ctl_open(real);
    assert_true(rx >= 0);
    int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char line[CTL_LINE_MAX];
    pid_t pid;

    assert_int_equal(symlink(real, path), 0);
    assert_int_equal(ctl_send(tx, path, "drain 1\n"), -ELOOP);
    assert_string_equal(net_unix_peer_refusal(-ELOOP), "a symbolic link is in the socket's place");
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EAGAIN);
    unlink(path);

    make_victim(path);
    assert_int_equal(ctl_send(tx, path, "drain 1\n"), -ENOTSOCK);
    assert_string_equal(net_unix_peer_refusal(-ENOTSOCK), "what is at the path is not a socket");
    assert_victim_intact(path, getuid(), getgid());
    unlink(path);

    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(ctl_send(tx, path, "drain 1\n"), -ENOTSOCK);
    rmdir(path);

    /* the socket itself still takes it */
    assert_int_equal(ctl_send(tx, real, "drain 2\n"), 0);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), 8);
    assert_string_equal(line, "drain 2\n");
    assert_null(net_unix_peer_refusal(-ENOENT));

    close(tx);
    close(rx);
    unlink(real);
    rmdir(dir);
}

/* As root: a socket made as another user's from the start (fsuid), with
 * root's file system rights back afterwards; and root refuses to send to a
 * socket in that user's directory that is not theirs. Skipped unprivileged. */
static void test_open_as_another_user(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    const uid_t uid = 65534;
    const gid_t gid = 65534;
    char dir[] = "/tmp/rv-ctl-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chown(dir, uid, gid), 0);
    char path[128], roots[128], probe[128];
    snprintf(path, sizeof(path), "%s/%s", dir, CTL_SUPERVISOR);
    snprintf(roots, sizeof(roots), "%s/roots.ctl", dir);
    snprintf(probe, sizeof(probe), "%s/probe", dir);

    mode_t old = umask(0);
    int rx = ctl_open_as(path, uid, gid);
    umask(old);
    assert_true(rx >= 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_uid, uid);
    assert_int_equal(st.st_gid, gid);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* root's fsuid is back: a file made now is root's */
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_uid, 0);
    close(fd);

    int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char line[CTL_LINE_MAX];
    pid_t pid;
    assert_int_equal(ctl_send(tx, path, "drained 1\n"), 0);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), 10);

    /* root's own socket in the user's directory: not where root sends */
    int other = ctl_open(roots);
    assert_true(other >= 0);
    assert_int_equal(ctl_send(tx, roots, "drain 1\n"), -EPERM);
    assert_int_equal(ctl_recv(other, line, sizeof(line), &pid), -EAGAIN);

    close(tx);
    close(other);
    close(rx);
    unlink(probe);
    unlink(roots);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_probe_line),
        cmocka_unit_test(test_health_line),
        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_open_leaves_a_link_alone),
        cmocka_unit_test(test_send_refuses_what_is_not_a_socket),
        cmocka_unit_test(test_open_as_another_user),
        cmocka_unit_test(test_parse2),
        cmocka_unit_test(test_pipes_handover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
