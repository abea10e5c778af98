/* fork + exec for the supervisor's children. Everything a child must not
 * inherit (blocked signals, the supervisor's fds) is undone here, between
 * fork and exec, so the rest of the supervisor never has to think about it. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int spawn_unlink_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc < 0 && errno != ENOENT ? -1 : 0;
}

int spawn_remove_tree(const char *path)
{
    if (nftw(path, spawn_unlink_cb, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* Become [supervisor] user, for good: its supplementary groups, its group,
 * then its uid (after which nothing else could change), and the HOME, USER
 * and LOGNAME that login and systemd give it. The name is looked up here, at
 * every start, so a user deleted since the config was read fails this child
 * loudly instead of leaving it root. */
static int spawn_become(const struct child_spec *spec)
{
    errno = 0;
    struct passwd *pw = getpwnam(spec->user);
    if (!pw) {
        int err = errno;
        dprintf(STDERR_FILENO, "rendervisor: cannot run child=%s as user=%s: %s\n", spec->name, spec->user,
                err && err != ENOENT && err != ESRCH ? strerror(err) : "no such user");
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        dprintf(STDERR_FILENO, "rendervisor: cannot run child=%s as user=%s: %s\n", spec->name, spec->user,
                strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        dprintf(STDERR_FILENO, "rendervisor: child=%s could become root again after switching to user=%s\n",
                spec->name, spec->user);
        return -1;
    }
    setenv("HOME", pw->pw_dir, 1);
    setenv("USER", pw->pw_name, 1);
    setenv("LOGNAME", pw->pw_name, 1);
    return 0;
}

int spawn_remove_fresh_dir(const struct child_spec *spec)
{
    if (!spec->user || geteuid() != 0)
        return spawn_remove_tree(spec->fresh_dir);
    /* Root must not walk a tree its user can change under it (a directory
     * swapped for a link while it is walked would take root elsewhere): the
     * walk is the user's, in a child of ours that becomes them first. */
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        _exit(spawn_become(spec) < 0 ? 126 : spawn_remove_tree(spec->fresh_dir) < 0 ? 1 : 0);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

extern char **environ;

/* The browsers read no config: the RENDERVISOR_ variables (a token among
 * them, maybe) would only be one more place to read it from. */
static void spawn_drop_config_env(void)
{
    size_t i = 0;
    while (environ[i]) {
        const char *eq = strchr(environ[i], '=');
        char name[256];
        size_t len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        if (strncmp(environ[i], "RENDERVISOR_", 12) != 0 || len >= sizeof(name)) {
            i++;
            continue;
        }
        memcpy(name, environ[i], len);
        name[len] = '\0';
        if (unsetenv(name) < 0)
            i++;
        /* else environ[i] is the next variable now */
    }
}

/* Runs in the child after fork; never returns. Only async-signal-safe calls
 * matter little here (the supervisor is single-threaded), but errors must end
 * the child with a message on its stderr, which the supervisor logs. */
static void spawn_exec(const struct child_spec *spec, pid_t parent, int out_w, int err_w, int cdp_in, int cdp_out)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    /* The renderer and the exporter take SIGHUP (a reload passed on) once
     * they have blocked it; ignored until then, one sent in between is
     * lost instead of ending them (an ignored signal stays ignored across
     * exec; a blocked one is still queued for sigwait and signalfd). */
    if (spec->role == SPEC_ROLE_RENDERER || spec->role == SPEC_ROLE_EXPORTER)
        signal(SIGHUP, SIG_IGN);
    if (spec->role == SPEC_ROLE_BROWSER)
        spawn_drop_config_env();

    setsid();
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
        dup2(err_w, STDERR_FILENO) < 0)
        _exit(126);
    if (cdp_in >= 0) {
        /* Out of the way first: either pipe end may itself be fd 3 or 4.
         * dup2 leaves the copies without close-on-exec; nothing else is. */
        int in = fcntl(cdp_in, F_DUPFD_CLOEXEC, 10), out = fcntl(cdp_out, F_DUPFD_CLOEXEC, 10);
        if (in < 0 || out < 0 || dup2(in, 3) < 0 || dup2(out, 4) < 0) {
            dprintf(STDERR_FILENO, "rendervisor: cannot give child=%s its DevTools pipes: %s\n", spec->name,
                    strerror(errno));
            _exit(126);
        }
    }

    /* Before PR_SET_PDEATHSIG: a change of uid or gid clears it. */
    if (spec->user && geteuid() == 0 && spawn_become(spec) < 0)
        _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The supervisor may have died before prctl: then nobody would kill us. */
    if (getppid() != parent)
        _exit(1);

    if (spec->fresh_dir) {
        if (spawn_remove_tree(spec->fresh_dir) < 0 || mkdir(spec->fresh_dir, 0700) < 0) {
            dprintf(STDERR_FILENO, "rendervisor: cannot prepare %s: %s\n", spec->fresh_dir, strerror(errno));
            _exit(126);
        }
    }
    execvp(spec->command.argv[0], spec->command.argv);
    dprintf(STDERR_FILENO, "rendervisor: cannot run %s: %s\n", spec->command.argv[0], strerror(errno));
    _exit(127);
}

static int spawn_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    /* Only our end is non-blocking: a child writing to a full pipe should
     * wait, not see EAGAIN. */
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        return -err;
    }
    return 0;
}

static void spawn_close_pair(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

int spawn_child(const struct child_spec *spec, struct spawn_result *out)
{
    int outp[2], errp[2];
    /* The browser reads commands from cmdp[0] and writes to evtp[1]. Both
     * sides block: the renderer sets its ends non-blocking itself. */
    int cmdp[2] = { -1, -1 }, evtp[2] = { -1, -1 };
    int rc = spawn_pipe(outp);
    if (rc < 0)
        return rc;
    rc = spawn_pipe(errp);
    if (rc < 0) {
        close(outp[0]);
        close(outp[1]);
        return rc;
    }
    if (spec->devtools_pipe && (pipe2(cmdp, O_CLOEXEC) < 0 || pipe2(evtp, O_CLOEXEC) < 0)) {
        rc = -errno;
        spawn_close_pair(cmdp);
        spawn_close_pair(outp);
        spawn_close_pair(errp);
        return rc;
    }

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(outp[0]);
        close(outp[1]);
        close(errp[0]);
        close(errp[1]);
        spawn_close_pair(cmdp);
        spawn_close_pair(evtp);
        return rc;
    }
    if (pid == 0)
        spawn_exec(spec, parent, outp[1], errp[1], cmdp[0], evtp[1]);

    close(outp[1]);
    close(errp[1]);
    if (cmdp[0] >= 0) {
        close(cmdp[0]);
        close(evtp[1]);
    }
    /* The child cannot be reaped before we wait for it, so its pid is ours
     * to turn into a pidfd without a race. */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        rc = -errno;
        kill(pid, SIGKILL);
        close(outp[0]);
        close(errp[0]);
        if (cmdp[1] >= 0) {
            close(cmdp[1]);
            close(evtp[0]);
        }
        return rc;
    }
    out->pid = pid;
    out->cdp_w = cmdp[1];
    out->cdp_r = evtp[0];
    out->pidfd = pidfd;
    out->out_fd = outp[0];
    out->err_fd = errp[0];
    return 0;
}
