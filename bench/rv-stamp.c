/* A child for the relaunch benchmark: appends "pid monotonic_ns" to the file
 * named by its first argument the moment it runs, then waits to be killed.
 * Further arguments (the supervisor appends --config FILE) are ignored. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const char *path = argc > 1 ? argv[1] : NULL;
    if (path && path[0] != '-') {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dprintf(fd, "%d %lld\n", (int)getpid(), (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
            close(fd);
        }
    }
    for (;;)
        pause();
}
