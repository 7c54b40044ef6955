// Guest clock probe, compiled static on the host and uploaded (ClockTests).
//   clock-probe res            prints the resolution of CLOCK_MONOTONIC in ns
//   clock-probe load SECONDS   one spinning thread pinned to each online CPU, each checking that CLOCK_MONOTONIC
//                              never goes below the largest value any thread has seen; meanwhile the main thread
//                              prints "T <CLOCK_REALTIME ns>" every 100 ms (the host timestamps each line as it
//                              arrives); ends with "checks N backwards N worst_ns N cpus N".
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t last_seen;
static volatile int stop;
static int64_t total_checks, total_backwards, worst_ns;

static int64_t now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void *spin(void *arg) {
    long cpu = (long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
    int64_t checks = 0, backwards = 0, worst = 0;
    while (!stop) {
        // Read the global maximum first, then the clock: a clock read after another thread published a larger value
        // must not be smaller than it.
        int64_t seen = __atomic_load_n(&last_seen, __ATOMIC_SEQ_CST);
        int64_t now = now_ns(CLOCK_MONOTONIC);
        checks++;
        if (now < seen) {
            backwards++;
            if (seen - now > worst) worst = seen - now;
        }
        while (now > seen && !__atomic_compare_exchange_n(&last_seen, &seen, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        }
    }
    __atomic_add_fetch(&total_checks, checks, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&total_backwards, backwards, __ATOMIC_SEQ_CST);
    int64_t w = __atomic_load_n(&worst_ns, __ATOMIC_SEQ_CST);
    while (worst > w && !__atomic_compare_exchange_n(&worst_ns, &w, worst, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "res") == 0) {
        struct timespec r;
        clock_getres(CLOCK_MONOTONIC, &r);
        printf("%lld\n", (long long)r.tv_sec * 1000000000 + r.tv_nsec);
        return 0;
    }
    if (argc < 3 || strcmp(argv[1], "load") != 0) {
        fprintf(stderr, "usage: clock-probe res | load SECONDS\n");
        return 2;
    }
    int seconds = atoi(argv[2]);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t threads[256];
    for (long i = 0; i < cpus && i < 256; i++) pthread_create(&threads[i], NULL, spin, (void *)i);
    int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)seconds * 1000000000;
    while (now_ns(CLOCK_MONOTONIC) < end) {
        printf("T %lld\n", (long long)now_ns(CLOCK_REALTIME));
        fflush(stdout);
        struct timespec d = {0, 100000000};
        nanosleep(&d, NULL);
    }
    stop = 1;
    for (long i = 0; i < cpus && i < 256; i++) pthread_join(threads[i], NULL);
    printf("checks %lld backwards %lld worst_ns %lld cpus %ld\n", (long long)total_checks, (long long)total_backwards, (long long)worst_ns, cpus);
    return 0;
}
