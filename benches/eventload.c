/* Load generator for benches/events.sh: `eventload open N PATH` makes N open() calls of PATH
 * (a missing file: each fails with ENOENT, the cheapest open); `eventload exec N PROG TAG`
 * forks and execs `PROG TAG-run` N times, one after the other (TAG-run is in no other argv).
 * Prints the seconds it took. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: eventload open N PATH | eventload exec N PROG ARG\n");
		return 2;
	}
	long n = atol(argv[2]);
	char arg[256];
	snprintf(arg, sizeof(arg), "%s-run", argc > 4 ? argv[4] : "x");
	double start = now();
	if (strcmp(argv[1], "open") == 0) {
		for (long i = 0; i < n; i++) {
			int fd = open(argv[3], O_RDONLY);
			if (fd >= 0)
				close(fd);
		}
	} else {
		for (long i = 0; i < n; i++) {
			pid_t p = fork();
			if (p == 0) {
				execl(argv[3], argv[3], arg, (char *)NULL);
				_exit(127);
			}
			int st;
			waitpid(p, &st, 0);
		}
	}
	printf("%.6f\n", now() - start);
	return 0;
}
