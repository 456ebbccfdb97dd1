/* Shared by bindsnoop and tcpaccept: the socket behind a file descriptor of the current task,
 * read through task->files->fdt->fd[fd]->private_data with CO-RE (no kprobe, any kernel with
 * BTF; bpf_get_current_task, not the _btf variant, which is 5.11+). */
#pragma once

#define EV_S_IFMT 0170000
#define EV_S_IFSOCK 0140000

/* The socket of descriptor `fd`, or NULL when `fd` is not an open socket of this task. */
static __always_inline struct socket *event_socket_of_fd(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt;
	struct file **fds;
	struct file *file = NULL;
	unsigned int max;
	umode_t mode;

	if (fd < 0)
		return NULL;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned long)fd >= max)
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) != 0 || !file)
		return NULL;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & EV_S_IFMT) != EV_S_IFSOCK)
		return NULL;
	return (struct socket *)BPF_CORE_READ(file, private_data);
}
