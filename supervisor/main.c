/* rendervisor: the one process an operator starts. It reads the config,
 * prepares runtime_dir, becomes a child subreaper and hands over to the
 * supervisor loop. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "supervisor.h"
#include "tls.h"
#include "warnings.h"
#include "xalloc.h"

static void main_usage(FILE *out)
{
    fprintf(out,
            "Usage: rendervisor [--config FILE]\n"
            "       rendervisor --check-config FILE [--print]\n"
            "       rendervisor [--config FILE] --print\n"
            "       rendervisor --version | --help\n"
            "\n"
            "Supervises the rendervisor exporter, the Chromium browsers and the renderer:\n"
            "starts them, measures them from /proc, restarts them when they die or outgrow\n"
            "their memory limit. Without --config the embedded default is used.\n"
            "RENDERVISOR_<SECTION>_<KEY> variables set keys over the file.\n"
            "\n"
            "  -c, --config FILE        read the configuration from FILE\n"
            "  -t, --check-config FILE  check FILE, print what is wrong, exit 0 if it is valid\n"
            "  -p, --print              after the check, print every key's value and where it\n"
            "                           came from (default, FILE:LINE, env VARIABLE)\n"
            "  -V, --version            print the version\n"
            "  -h, --help               print this help\n"
            "\n"
            "Signals: TERM/INT stop every child and exit; HUP re-reads the config.\n");
}

extern char **environ;

/* path NULL: the embedded default; the environment's variables over it. */
static struct config *main_load(const char *path)
{
    char *errors = NULL;
    struct config *cfg = config_load(path, environ, &errors);
    /* The TLS files, as the listeners will read them (common/tls.h). */
    if (cfg && tls_config_check_files(cfg, &errors) < 0) {
        config_free(cfg);
        cfg = NULL;
    }
    if (!cfg) {
        fprintf(stderr, "rendervisor: the configuration is not valid:\n%s", errors);
        if (errors && errors[0] && errors[strlen(errors) - 1] != '\n')
            fputc('\n', stderr);
        free(errors);
    }
    return cfg;
}

/* Who owns runtime_dir and what is in it: the children's user when the
 * supervisor is root and [supervisor] user is set (the exporter binds its
 * sockets there, the browsers their profiles), else the supervisor. */
struct main_owner {
    uid_t uid;
    gid_t gid;
    const char *user; /* NULL: the supervisor itself */
};

static int main_owner(const struct config *cfg, struct main_owner *o)
{
    o->uid = geteuid();
    o->gid = getegid();
    o->user = NULL;
    const char *user = cfg->supervisor.user;
    if (!user || !user[0] || geteuid() != 0)
        return 0; /* not root: the config has checked the user is us */
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_error("the children's user does not exist user=%s", user);
        return -ENOENT;
    }
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
    o->user = user;
    return 0;
}

/* Once runtime_dir is the children's user's, they may rename it and put a
 * link in its place wherever its parent lets them (a sticky /tmp does:
 * the entry is theirs), and every path root builds through runtime_dir
 * would lead where they like. So its parent must be root's, and writable by
 * root alone. */
static int main_runtime_parent(const char *dir, const struct main_owner *o)
{
    char *parent = xstrdup(dir);
    size_t len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    if (slash)
        slash[slash == parent] = '\0';
    struct stat st;
    int rc = stat(parent, &st) < 0 ? -errno : 0;
    if (rc == 0 && (st.st_uid != 0 || (st.st_mode & 022)))
        rc = -EPERM;
    if (rc < 0)
        log_error("runtime_dir's parent must belong to root and be writable by root alone, or the children's "
                  "user could replace runtime_dir by a link path=%s parent=%s user=%s",
                  dir, parent, o->user);
    free(parent);
    return rc;
}

/* runtime_dir holds the sockets: it must be ours, or the children's user's,
 * and closed to others. Opened without following a link and changed through
 * that fd, so nothing can be swapped in between the check and the change. */
static int main_runtime_dir(const char *dir, const struct main_owner *o)
{
    char *path = xstrdup(dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            int err = errno;
            log_error_errno(err, "cannot create directory path=%s", path);
            free(path);
            return -err;
        }
        *p = '/';
    }
    free(path);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int err = errno;
        log_error_errno(err, "cannot create runtime_dir path=%s", dir);
        return -err;
    }
    if (o->user && main_runtime_parent(dir, o) < 0)
        return -EPERM;
    struct stat st;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || (st.st_uid != geteuid() && st.st_uid != o->uid)) {
        if (o->user)
            log_error("runtime_dir is not a directory owned by us or by the children's user path=%s user=%s", dir,
                      o->user);
        else
            log_error("runtime_dir is not a directory owned by us path=%s", dir);
        if (fd >= 0)
            close(fd);
        return -ENOTDIR;
    }
    if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
        int err = errno;
        log_error_errno(err, "cannot make runtime_dir private path=%s", dir);
        close(fd);
        return -err;
    }
    close(fd);
    return 0;
}

/* For main_chown_cb: nftw passes its callback no argument of ours. */
static uid_t main_chown_uid;
static gid_t main_chown_gid;

static int main_chown_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (lchown(path, main_chown_uid, main_chown_gid) < 0 && errno != ENOENT) {
        log_error_errno(errno, "cannot hand runtime_dir over to the children's user path=%s", path);
        return -1;
    }
    return 0;
}

/* Give runtime_dir to the children's user. Done while it still belongs to
 * root and is 0700 (main_runtime_dir made sure), so nobody else can be
 * inside while the tree is walked: what a run as root left there (profiles,
 * sockets) becomes the user's, whose children must empty and replace it.
 * Once it is the user's, root never walks it again. */
static int main_hand_over(const char *dir, const struct main_owner *o)
{
    struct stat st;
    if (!o->user || lstat(dir, &st) < 0 || st.st_uid == o->uid)
        return 0;
    main_chown_uid = o->uid;
    main_chown_gid = o->gid;
    if (nftw(dir, main_chown_cb, 16, FTW_PHYS | FTW_DEPTH) < 0)
        return -EPERM;
    log_info("runtime_dir handed over to the children's user path=%s user=%s", dir, o->user);
    return 0;
}

/* One supervisor per runtime_dir: a second one would fight over the sockets
 * and the browsers' ports. The lock is on runtime_dir itself, not on a file
 * in it: the directory may be the children's user's, and a hard link they
 * left under the lock file's name (O_NOFOLLOW stops only symbolic ones)
 * would have root open and lock a file of root's elsewhere. It lives as
 * long as the process. */
static int main_lock(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        if (err == EWOULDBLOCK)
            log_error("another rendervisor is running with this runtime_dir path=%s", dir);
        else
            log_error_errno(err, "cannot lock runtime_dir path=%s", dir);
        if (fd >= 0)
            close(fd);
        return -err;
    }
    return fd;
}

/* The children need a file to read: the embedded default is written out,
 * theirs to read. A fresh file (O_EXCL, no link followed) renamed into
 * place: whatever the children's user left under either name is replaced,
 * never written through. */
static char *main_write_default(const char *dir, const struct main_owner *o)
{
    char *path = xasprintf("%s/rendervisor.ini", dir);
    char *tmp = xasprintf("%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 && o->user && fchown(fd, o->uid, o->gid) < 0) {
        close(fd);
        fd = -1;
    }
    size_t off = 0;
    while (fd >= 0 && off < config_default_ini_len) {
        ssize_t n = write(fd, config_default_ini + off, config_default_ini_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (fd < 0 || off != config_default_ini_len || close(fd) < 0 || rename(tmp, path) < 0) {
        log_error_errno(errno, "cannot write the default config path=%s", path);
        free(tmp);
        free(path);
        return NULL;
    }
    free(tmp);
    return path;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", required_argument, NULL, 't' },
        { "print", no_argument, NULL, 'p' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_file = NULL;
    const char *check_file = NULL;
    int print = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:t:pVh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_file = optarg; break;
        case 't': check_file = optarg; break;
        case 'p': print = 1; break;
        case 'V': printf("rendervisor %s\n", RENDERVISOR_VERSION); return 0;
        case 'h': main_usage(stdout); return 0;
        default: main_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rendervisor: unexpected argument: %s\n", argv[optind]);
        main_usage(stderr);
        return 2;
    }

    if (check_file && config_file && strcmp(check_file, config_file) != 0) {
        fprintf(stderr, "rendervisor: --config and --check-config name different files\n");
        return 2;
    }
    /* --print alone checks what a start would run: --config's file, or
     * the embedded default, with the environment over it. */
    if (check_file || print) {
        const char *file = check_file ? check_file : config_file;
        const char *shown = file ? file : "(default)";
        struct config *cfg = main_load(file);
        if (!cfg)
            return 1;
        /* Warnings, not errors: the file is valid, and what they are about
         * (who the browsers run as) is for the operator to decide. */
        struct warnings w;
        warnings_collect(&w, cfg, geteuid());
        for (size_t i = 0; i < w.count; i++)
            fprintf(stderr, "%s: warning: %s\n", shown, w.text[i]);
        warnings_fini(&w);
        if (print)
            config_print(cfg, stdout);
        else
            printf("%s: valid\n", shown);
        config_free(cfg);
        return 0;
    }

    struct config *cfg = main_load(config_file);
    if (!cfg)
        return 1;
    log_init("supervisor", cfg->supervisor.log_level, cfg->supervisor.log_format);

    struct main_owner owner;
    if (main_owner(cfg, &owner) < 0 || main_runtime_dir(cfg->supervisor.runtime_dir, &owner) < 0) {
        config_free(cfg);
        return 1;
    }
    int lock = main_lock(cfg->supervisor.runtime_dir);
    if (lock < 0) {
        config_free(cfg);
        return 1;
    }
    /* After the lock: another rendervisor's runtime_dir is left as it is. */
    if (main_hand_over(cfg->supervisor.runtime_dir, &owner) < 0) {
        close(lock);
        config_free(cfg);
        return 1;
    }
    char *path;
    if (config_file) {
        path = realpath(config_file, NULL);
        if (!path)
            path = xstrdup(config_file);
    } else if (!(path = main_write_default(cfg->supervisor.runtime_dir, &owner))) {
        config_free(cfg);
        return 1;
    }

    /* Orphaned grandchildren (Chromium's helpers, a shell's background jobs)
     * are reparented to us, so we reap them and they never linger as zombies. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn_errno(errno, "cannot become a child subreaper");

    log_info("rendervisor starting version=%s config=%s runtime_dir=%s", RENDERVISOR_VERSION, path,
             cfg->supervisor.runtime_dir);
    /* Which keys the environment set: the file alone no longer tells. */
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *section, *name;
        char var[128];
        config_key_name(i, &section, &name);
        config_env_name(section, name, var, sizeof(var));
        if (cfg->sources[i].from == CONFIG_FROM_ENV)
            log_info("config key set by the environment key=%s.%s env=%s", section, name, var);
    }
    struct warnings w;
    warnings_collect(&w, cfg, geteuid());
    for (size_t i = 0; i < w.count; i++)
        log_warn("%s", w.text[i]);
    warnings_fini(&w);
    struct supervisor sv;
    int rc = supervisor_init(&sv, cfg, path, config_file != NULL);
    if (rc == 0)
        rc = supervisor_run(&sv);
    supervisor_fini(&sv);
    close(lock);
    return rc == 0 ? 0 : 1;
}
