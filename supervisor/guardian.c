/* See guardian.h for why this process exists. It is forked, not exec'd, and
 * does nothing but read its pipe, so it costs one small process. */
#include "guardian.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "procstat.h"

#define GUARDIAN_MAX_GROUPS 1024

struct guardian_proc {
    int pid;
    unsigned long long start;
};

static void guardian_kill_all(const int *groups, int n, const struct guardian_proc *escaped, int nesc)
{
    for (int i = 0; i < n; i++)
        kill(-groups[i], SIGKILL);
    /* Processes that left their group but not their session, and the ones
     * the supervisor saw leave their session too (checked by start time, so
     * a reused pid is left alone). */
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        int pid = atoi(e->d_name);
        struct procstat st;
        if (procstat_read(pid, &st) < 0)
            continue;
        int doomed = 0;
        for (int i = 0; i < n && !doomed; i++)
            doomed = st.sid == groups[i];
        for (int i = 0; i < nesc && !doomed; i++)
            doomed = escaped[i].pid == pid && escaped[i].start == st.start_ticks;
        if (doomed)
            kill(pid, SIGKILL);
    }
    closedir(d);
}

static void guardian_main(int rfd)
{
    int groups[GUARDIAN_MAX_GROUPS];
    int n = 0;
    static struct guardian_proc escaped[GUARDIAN_MAX_GROUPS];
    int nesc = 0;
    char buf[4096];
    size_t have = 0;

    prctl(PR_SET_NAME, "rv-guardian");
    /* A terminal's ^C or a signal to the supervisor's group must not take the
     * guardian away before the pipe says the supervisor is gone. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int fl = fcntl(rfd, F_GETFL);
    if (fl >= 0)
        fcntl(rfd, F_SETFL, fl & ~O_NONBLOCK);

    for (;;) {
        ssize_t r = read(rfd, buf + have, sizeof(buf) - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', (size_t)(buf + have - line)))) {
            *nl = '\0';
            int pgid = atoi(line + 1);
            if (pgid > 1 && line[0] == '+' && n < GUARDIAN_MAX_GROUPS) {
                groups[n++] = pgid;
            } else if (line[0] == 'R') {
                nesc = 0;
            } else if (pgid > 1 && line[0] == '=' && nesc < GUARDIAN_MAX_GROUPS) {
                char *sp = strchr(line, ' ');
                escaped[nesc++] = (struct guardian_proc){ pgid, sp ? strtoull(sp + 1, NULL, 10) : 0 };
            } else if (pgid > 1 && line[0] == '-') {
                for (int i = 0; i < n; i++)
                    if (groups[i] == pgid) {
                        groups[i] = groups[--n];
                        break;
                    }
            }
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
    }
    guardian_kill_all(groups, n, escaped, nesc);
    _exit(0);
}

int guardian_start(struct guardian *g)
{
    int fds[2];
    g->pid = -1;
    g->fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        return -err;
    }
    if (pid == 0) {
        close(fds[1]);
        /* Drop every other descriptor the supervisor had open. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != fds[0])
                close(fd);
        guardian_main(fds[0]);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    g->pid = pid;
    g->fd = fds[1];
    return 0;
}

static void guardian_send(struct guardian *g, char op, int pgid, unsigned long long start)
{
    if (g->fd < 0)
        return;
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "%c%d %llu\n", op, pgid, start);
    /* A full pipe would mean the guardian is stuck; losing a line then is
     * better than stalling the supervisor. */
    (void)!write(g->fd, msg, (size_t)n);
}

void guardian_watch(struct guardian *g, int pgid)
{
    guardian_send(g, '+', pgid, 0);
}

void guardian_forget(struct guardian *g, int pgid)
{
    guardian_send(g, '-', pgid, 0);
}

void guardian_escaped(struct guardian *g, const int *pids, const unsigned long long *starts, size_t n)
{
    guardian_send(g, 'R', 0, 0);
    for (size_t i = 0; i < n && i < GUARDIAN_MAX_GROUPS; i++)
        guardian_send(g, '=', pids[i], starts[i]);
}

void guardian_stop(struct guardian *g)
{
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
}
