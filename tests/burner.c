/* CPU burner for tests/live_profile.rs: main -> ebpfx_burn_outer -> ebpfx_burn_inner, burning
 * until killed or argv[1] seconds (default 60) have passed. The test compiles it with
 * `cc -O0 -fno-omit-frame-pointer`: BPF walks user stacks by frame pointers, which rustc omits
 * (also at opt-level 0) unless the whole build sets -C force-frame-pointers. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) unsigned long ebpfx_burn_inner(unsigned long x)
{
	for (volatile unsigned long i = 0; i < 100000; i++)
		x = x * 6364136223846793005UL + i;
	return x;
}

__attribute__((noinline)) unsigned long ebpfx_burn_outer(time_t until)
{
	unsigned long x = 1;
	while (time(NULL) < until)
		x = ebpfx_burn_inner(x);
	return x;
}

int main(int argc, char **argv)
{
	long seconds = argc > 1 ? atol(argv[1]) : 60;
	printf("burning for at most %lds (pid %d)\n", seconds, (int)getpid());
	fflush(stdout);
	return (int)(ebpfx_burn_outer(time(NULL) + seconds) & 1);
}
