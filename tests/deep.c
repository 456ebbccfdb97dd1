/* Deep stacks for tests/live_stacks.rs: waits for a byte on stdin, then
 * main -> ebpfx_deep_recurse x (DEPTH + 1) (argv[1], default 60) and, at the bottom, either
 * sleeps 300 ms with a nanosleep system call made inline (argv[2] "sleep", the default: the
 * user stack's first frame is then the bottom ebpfx_deep_recurse itself) or burns CPU for
 * argv[3] milliseconds (argv[2] "burn"); prints "done" and stays alive until stdin closes
 * (user stacks are symbolized through the live process). Compiled with
 * `cc -O0 -fno-omit-frame-pointer`: no tail calls, and frame pointers for the BPF stack walk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long nap(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	long ret;

#if defined(__x86_64__)
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(35L /* nanosleep */), "D"(&ts), "S"(0L)
			 : "rcx", "r11", "memory");
#else
	ret = nanosleep(&ts, NULL);
#endif
	return ret;
}

static int burning;
static long burn_ms;

__attribute__((noinline)) long ebpfx_deep_recurse(int depth)
{
	if (depth > 0)
		return ebpfx_deep_recurse(depth - 1) + 1;
	if (!burning)
		return nap(300);
	struct timespec start, now;
	volatile unsigned long x = 1;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (int i = 0; i < 100000; i++)
			x = x * 6364136223846793005UL + 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < burn_ms);
	return 0;
}

int main(int argc, char **argv)
{
	int depth = argc > 1 ? atoi(argv[1]) : 60;
	char c;

	burning = argc > 2 && strcmp(argv[2], "burn") == 0;
	burn_ms = argc > 3 ? atol(argv[3]) : 2000;
	if (read(0, &c, 1) != 1)
		return 2;
	if (ebpfx_deep_recurse(depth) != depth)
		return 1;
	printf("done\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
