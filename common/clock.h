/* Monotonic and wall-clock time as plain integers, so deadlines are arithmetic. */
#ifndef RV_CLOCK_H
#define RV_CLOCK_H

#include <stdint.h>

#define CLOCK_NS_PER_MS 1000000LL
#define CLOCK_NS_PER_S 1000000000LL

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t clock_now_ns(void);
/* CLOCK_REALTIME in seconds since the epoch, with fractions. */
double clock_wall_s(void);

#endif
