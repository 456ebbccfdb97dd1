/* Shared by funccount and funclatency: programs attached to the functions of `--probe` learn
 * which function fired from their BPF cookie (bpf_get_attach_cookie, Linux 5.15+). For older
 * kernels each object also holds EBPFX_SLOTS copies of its programs with the function index
 * compiled in, named NAME__slotHTU (three decimal digits, slot000 .. slot127): ebpfx loads the
 * cookie programs where the kernel has the helper, and otherwise loads copies 0..n-1 and
 * attaches copy i to function i only, without a cookie. Exact either way: the index never
 * depends on addresses. Each copy is a two-instruction call of one shared subprogram. */
#pragma once

/* At most this many functions per run on kernels without BPF cookies (src/loader/attach.rs reads the
 * slots from the object, so this number lives here only). */
#define EBPFX_SLOTS 128

/* M(h, t, u) for every slot index 100*h + 10*t + u below EBPFX_SLOTS. */
#define EBPFX_SLOT_U(M, h, t) M(h, t, 0) M(h, t, 1) M(h, t, 2) M(h, t, 3) M(h, t, 4) \
			      M(h, t, 5) M(h, t, 6) M(h, t, 7) M(h, t, 8) M(h, t, 9)
#define EBPFX_SLOT_T(M, h) EBPFX_SLOT_U(M, h, 0) EBPFX_SLOT_U(M, h, 1) EBPFX_SLOT_U(M, h, 2) \
			   EBPFX_SLOT_U(M, h, 3) EBPFX_SLOT_U(M, h, 4) EBPFX_SLOT_U(M, h, 5) \
			   EBPFX_SLOT_U(M, h, 6) EBPFX_SLOT_U(M, h, 7) EBPFX_SLOT_U(M, h, 8) \
			   EBPFX_SLOT_U(M, h, 9)
#define EBPFX_FOR_EACH_SLOT(M) EBPFX_SLOT_T(M, 0) EBPFX_SLOT_U(M, 1, 0) EBPFX_SLOT_U(M, 1, 1) \
			       M(1, 2, 0) M(1, 2, 1) M(1, 2, 2) M(1, 2, 3) M(1, 2, 4) M(1, 2, 5) \
			       M(1, 2, 6) M(1, 2, 7)

/* Defines NAME__slotHTU, a program of section SEC_NAME that calls BODY(index). */
#define EBPFX_SLOT_PROGRAM(SEC_NAME, NAME, BODY, h, t, u)                    \
	SEC(SEC_NAME) int NAME##__slot##h##t##u(struct pt_regs *ctx)          \
	{                                                                     \
		return BODY(h * 100 + t * 10 + u);                            \
	}
