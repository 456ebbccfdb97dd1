/* Sleeper for tests/live_targets.rs (offcputime): waits for a byte on stdin, then
 * main -> ebpfx_sleep_outer -> ebpfx_sleep_inner sleeps argv[1] milliseconds (default 500) with a
 * nanosleep system call made inline, so that the user stack's first frame is ebpfx_sleep_inner
 * itself (a call into libc would leave its caller out of a frame-pointer walk); prints "slept",
 * and stays alive until stdin closes (user stacks are symbolized through the live process).
 * Compiled with `cc -O0 -fno-omit-frame-pointer`. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long ebpfx_sleep_inner(long ms)
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

__attribute__((noinline)) long ebpfx_sleep_outer(long ms)
{
	return ebpfx_sleep_inner(ms) + 1;
}

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 500;
	char c;

	if (read(0, &c, 1) != 1)
		return 2;
	if (ebpfx_sleep_outer(ms) != 1)
		return 1;
	printf("slept\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
