// SPDX-License-Identifier: GPL-2.0
/* runqlat_cgroup: runqlat's run-queue latency histogram, one per cgroup (v2) of the task that
 * waited. The program is runqlat.bpf.c built with RUNQLAT_BY_CGROUP. */
#define RUNQLAT_BY_CGROUP 1
#include "runqlat.bpf.c"
