/* A small real child for the integration tests: holds MIB MiB of touched,
 * private memory, optionally in each of N forked processes, and then waits.
 *   rv-alloc MIB [PROCESSES] [ignored arguments...]
 * Extra arguments are accepted and ignored, so the supervisor can append
 * --config or --remote-debugging-port to it like to any child. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hold(long mib)
{
    size_t bytes = (size_t)mib << 20;
    /* volatile: the stores must happen even though nothing reads them */
    volatile char *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "rv-alloc: cannot allocate %ld MiB\n", mib);
        exit(1);
    }
    /* Touch every page so it is resident, with data that cannot be merged. */
    for (size_t i = 0; i < bytes; i += 4096)
        p[i] = (char)(i >> 12) | 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: rv-alloc MIB [PROCESSES]\n");
        return 2;
    }
    long mib = strtol(argv[1], NULL, 10);
    long procs = argc > 2 && argv[2][0] != '-' ? strtol(argv[2], NULL, 10) : 1;
    for (long i = 1; i < procs; i++) {
        pid_t pid = fork();
        if (pid == 0)
            break;
    }
    hold(mib);
    printf("rv-alloc: holding %ld MiB pid=%d\n", mib, (int)getpid());
    fflush(stdout);
    for (;;)
        pause();
}
