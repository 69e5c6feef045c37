/* The baseline for `svcviz blast`: N blocking connect()s in a row, as fast as C goes.
 * usage: connect_loop PORT N   prints: connected=C seconds=S
 * The connections stay open until all are made (as blast holds them), then close. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT N\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[2]), connected = 0;
    int *fds = calloc(n, sizeof *fds);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    double start = now();
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&addr, sizeof addr) == 0)
            connected++;
    }
    double seconds = now() - start;
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    printf("connected=%d seconds=%.6f\n", connected, seconds);
    return connected == n ? 0 : 1;
}
