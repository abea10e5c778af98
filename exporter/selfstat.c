/* process_* for the exporter itself, from /proc/self. The families and HELP
 * texts are the ones every Prometheus process collector serves, so
 * dashboards built for them work unchanged. */
#include "selfstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ingest.h"
#include "procstat.h"

static double selfstat_boot_time;
static double selfstat_ticks_per_s = 100;
static double selfstat_page_size = 4096;

int selfstat_init(void)
{
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (tck > 0)
        selfstat_ticks_per_s = (double)tck;
    if (page > 0)
        selfstat_page_size = (double)page;
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -errno;
    char line[256];
    int rc = -ENOENT;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long btime;
        if (sscanf(line, "btime %llu", &btime) == 1) {
            selfstat_boot_time = (double)btime;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static unsigned selfstat_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    /* the directory stream's own fd */
    return n ? n - 1 : 0;
}

static void selfstat_family(struct buf *out, const char *name, const char *type, const char *help, double value)
{
    char num[40];
    ingest_format_value(num, sizeof(num), value);
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name, num);
}

void selfstat_write(struct buf *out)
{
    struct procstat st;
    if (procstat_read(0, &st) < 0)
        return;
    double user = (double)st.utime_ticks / selfstat_ticks_per_s;
    double sys = (double)st.stime_ticks / selfstat_ticks_per_s;
    struct rlimit rl = { 0, 0 };
    getrlimit(RLIMIT_NOFILE, &rl);

    selfstat_family(out, "process_cpu_user_seconds_total", "counter", "Total user CPU time spent in seconds.", user);
    selfstat_family(out, "process_cpu_system_seconds_total", "counter", "Total system CPU time spent in seconds.",
                    sys);
    selfstat_family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                    user + sys);
    selfstat_family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                    selfstat_boot_time + (double)st.start_ticks / selfstat_ticks_per_s);
    selfstat_family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                    (double)st.rss_pages * selfstat_page_size);
    selfstat_family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                    (double)st.vsize_bytes);
    selfstat_family(out, "process_open_fds", "gauge", "Number of open file descriptors.", selfstat_open_fds());
    selfstat_family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                    rl.rlim_cur == RLIM_INFINITY ? 1.8446744073709552e19 : (double)rl.rlim_cur);
}
