/* Sends ingest datagrams as fast as the exporter takes them, for the
 * exporter benchmark: `ingest_flood SOCKET SECONDS [LINES_PER_DATAGRAM]`.
 * Blocking sends, so the rate measured is the exporter's, not the drop rate.
 * Prints the lines sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double flood_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ingest_flood SOCKET SECONDS [LINES_PER_DATAGRAM]\n");
        return 2;
    }
    double seconds = atof(argv[2]);
    int per = argc > 3 ? atoi(argv[3]) : 50;
    static const char *const steps[] = { "launch", "newPage", "prepare", "navigate", "panelsRendered", "screenshot" };
    char buf[65536];
    size_t len = 0;
    for (int i = 0; i < per; i++) {
        int n;
        if (i % 3 == 0)
            n = snprintf(buf + len, sizeof(buf) - len,
                         "grafana_image_renderer_step_duration_seconds{step=\"%s\"} 0.%03d\n", steps[i % 6], i);
        else if (i % 3 == 1)
            n = snprintf(buf + len, sizeof(buf) - len,
                         "grafana_image_renderer_service_http_request_duration_seconds{status_code=\"200\"} 0.%03d\n", i);
        else
            n = snprintf(buf + len, sizeof(buf) - len, "grafana_image_renderer_http_request_in_flight %d\n", i);
        if (n < 0 || (size_t)n >= sizeof(buf) - len)
            break;
        len += (size_t)n;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("ingest_flood: connect");
        return 1;
    }
    unsigned long long datagrams = 0;
    double end = flood_now() + seconds;
    while (flood_now() < end) {
        if (send(fd, buf, len, 0) < 0) {
            perror("ingest_flood: send");
            return 1;
        }
        datagrams++;
    }
    printf("%llu\n", datagrams * (unsigned long long)per);
    close(fd);
    return 0;
}
