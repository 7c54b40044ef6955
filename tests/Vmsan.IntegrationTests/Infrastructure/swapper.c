// A hostile guest process (FileTransferTests): swaps two names (a directory and a symlink to elsewhere) with
// renameat2(RENAME_EXCHANGE) as fast as it can for SECONDS (or until SIGTERM), so at every instant one of them is at
// each name. Run it niced: it then swaps whenever the agent waits, without starving it of the one vCPU.
//   swapper SECONDS A B      prints "swaps N"
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig) {
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: swapper SECONDS A B\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    time_t end = time(NULL) + atoi(argv[1]);
    long swaps = 0;
    while (!stop && time(NULL) < end) {
        for (int i = 0; i < 1000; i++)
            if (syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], 2 /* RENAME_EXCHANGE */) == 0) swaps++;
    }
    printf("swaps %ld\n", swaps);
    return 0;
}
