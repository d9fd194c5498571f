// The sandbox init: PID 1 of every namespace sandbox.
//
// It runs as a C constructor of the lamina binary, before the Go runtime
// starts, when the process was started by the namespace provider (the
// environment variable _LAMINA_SANDBOX_INIT names its control socket). Doing
// this work in C keeps a sandbox's start to the cost of exec: the Go
// runtime and the package initialisers of the whole binary never run here.
//
// The host (Go, internal/sandbox/namespace.go) starts it in new mount, PID,
// network, IPC and UTS namespaces and drives it over a SOCK_SEQPACKET socket.
// The root file system is built in two steps: what every sandbox has, ahead
// of time (the host keeps sandboxes prepared), then what its function needs.
//
//   host -> init  "prepare"  root, hostname, then a plan of operations that
//                          build the root file system (mkdir, bind, tmpfs,
//                          file, symlink); init brings loopback up, mounts a
//                          tmpfs on root, carries them out, pivots into the
//                          new root, lets go of the host's and mounts /proc.
//                          A network namespace the host prepared may ride
//                          along (SCM_RIGHTS): init enters it first (the host
//                          then started it without a network namespace of
//                          its own).
//   init -> host  "prepared" | "error" message
//   host -> init  "setup"  more operations (mkdir, attach, tmpfs, readonly),
//                          paths in the new root; the mounts the host made
//                          for them, detached, ride along, and each "attach"
//                          puts the next in place; "readonly" makes /
//                          read-only (the last setup of a sandbox ends so).
//   init -> host  "ready" | "error" message
//   host -> init  "spawn"  (any number, before "start") as "start", for a
//                          process beside the runtime (a Lambda extension)
//   init -> host  "spawned" pid | "error" message
//   host -> init  "start"  uid, gid, host uid base, open-files limit,
//                          working directory, argv, envp, seccomp program;
//                          the runtime's output fd rides along (SCM_RIGHTS),
//                          and, for a runtime started ahead of its function,
//                          a second fd that becomes its descriptor 3.
//   init -> host  "started" pid | "error" message
//   host -> init  "setup"  (any number, after "start") as above: the host
//                          finishes the root of a runtime started ahead.
//   init -> host  "exit" status signal  (when the runtime has exited; init
//                          then exits, and the kernel kills whatever is left
//                          in the PID namespace)
//
// The runtime is forked into a new user namespace in which root maps to the
// host uid base given by the host; it runs as an unprivileged uid there,
// with an empty capability bounding set, no_new_privs and the seccomp filter
// the host assembled. Every message is a sequence of fields, each a 32-bit
// little-endian length followed by that many bytes.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MSG (1 << 20)
#define MAX_FIELDS 4096
#define MAX_PATH 4096
#define MAX_FDS 64

static int ctl = -1;                // the control socket
static char root[MAX_PATH];          // where the new root is built; "" once entered
static int fds[MAX_FDS];             // the descriptors that came with the message
static int nfds, next_fd;            // how many; the next one "attach" takes
static char msgbuf[MAX_MSG];        // the message being read
static char *fields[MAX_FIELDS + 1]; // NUL-terminated copies of its fields
static uint32_t lengths[MAX_FIELDS];
static int nfields;

// send_msg sends one message of the given NUL-terminated fields.
static void send_msg(int n, ...) {
	char out[8192];
	size_t pos = 0;
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *f = va_arg(ap, const char *);
		uint32_t len = strlen(f);
		if (pos + 4 + len > sizeof(out)) {
			len = sizeof(out) - pos - 4;
		}
		memcpy(out + pos, &len, 4);
		memcpy(out + pos + 4, f, len);
		pos += 4 + len;
	}
	va_end(ap);
	while (send(ctl, out, pos, 0) < 0 && errno == EINTR) {
	}
}

// fail reports an error to the host and exits.
static void fail(const char *what) {
	char msg[1024];
	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));
	send_msg(2, "error", msg);
	_exit(1);
}

static void failf(const char *fmt, const char *arg) {
	char what[MAX_PATH + 256];
	int saved = errno;
	snprintf(what, sizeof(what), fmt, arg);
	errno = saved;
	fail(what);
}

// recv_msg reads the next message into fields, and the descriptors that
// came with it into fds. It returns the first of them, or -1. A closed
// socket ends the init.
static int recv_msg(void) {
	char cbuf[CMSG_SPACE(MAX_FDS * sizeof(int))];
	struct iovec iov = {.iov_base = msgbuf, .iov_len = sizeof(msgbuf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n;
	do {
		n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		_exit(n == 0 ? 0 : 1);
	}
	nfds = next_fd = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (int k = 0; k < count && nfds < MAX_FDS; k++) {
				memcpy(&fds[nfds++], CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			}
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		errno = EMSGSIZE;
		fail("too many descriptors");
	}
	int fd = nfds > 0 ? fds[0] : -1;
	// Split into fields, copying each so that it ends with a NUL.
	static char store[MAX_MSG + MAX_FIELDS];
	size_t pos = 0, spos = 0;
	nfields = 0;
	while (pos + 4 <= (size_t)n && nfields < MAX_FIELDS) {
		uint32_t len;
		memcpy(&len, msgbuf + pos, 4);
		pos += 4;
		if (len > (size_t)n - pos) {
			errno = EPROTO;
			fail("malformed message");
		}
		memcpy(store + spos, msgbuf + pos, len);
		store[spos + len] = 0;
		fields[nfields] = store + spos;
		lengths[nfields] = len;
		nfields++;
		spos += len + 1;
		pos += len;
	}
	fields[nfields] = NULL;
	return fd;
}

// under joins the new root and a path inside it.
static const char *under(const char *path) {
	static char buf[2][MAX_PATH];
	static int which;
	which ^= 1;
	if ((size_t)snprintf(buf[which], MAX_PATH, "%s%s", root, path) >= MAX_PATH) {
		errno = ENAMETOOLONG;
		failf("path %s", path);
	}
	return buf[which];
}

// mount_flags parses a comma-separated list of ro, nosuid, nodev, noexec.
static unsigned long mount_flags(const char *list) {
	unsigned long flags = 0;
	if (strstr(list, "ro")) flags |= MS_RDONLY;
	if (strstr(list, "nosuid")) flags |= MS_NOSUID;
	if (strstr(list, "nodev")) flags |= MS_NODEV;
	if (strstr(list, "noexec")) flags |= MS_NOEXEC;
	return flags;
}

static void write_file(const char *path, const char *content, size_t len, mode_t mode) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) failf("create %s", path);
	while (len > 0) {
		ssize_t w = write(fd, content, len);
		if (w < 0) {
			if (errno == EINTR) continue;
			failf("write %s", path);
		}
		content += w;
		len -= w;
	}
	if (fchmod(fd, mode) < 0) failf("chmod %s", path);
	close(fd);
}

// bring_loopback_up sets IFF_UP on lo in the new network namespace, unless
// the host prepared the namespace with lo up (setting flags takes the
// kernel's RTNL lock, which a cold start had better not wait for).
static void bring_loopback_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) fail("socket");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("get lo flags");
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("bring lo up");
	}
	close(s);
}

// build carries out the operations of a message from fields[first] on.
static void build(int first) {
	for (int i = first; i < nfields;) {
		const char *op = fields[i];
		if (strcmp(op, "mkdir") == 0 && i + 2 < nfields) {
			const char *p = under(fields[i + 1]);
			if (mkdir(p, strtoul(fields[i + 2], NULL, 8)) < 0 && errno != EEXIST) failf("mkdir %s", p);
			if (chmod(p, strtoul(fields[i + 2], NULL, 8)) < 0) failf("chmod %s", p);
			i += 3;
		} else if (strcmp(op, "bind") == 0 && i + 3 < nfields) {
			// A read-only bind needs a second, remounting mount(2).
			const char *src = fields[i + 1], *dst = under(fields[i + 2]);
			if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) failf("bind %s", src);
			unsigned long flags = mount_flags(fields[i + 3]);
			if (flags && mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0) failf("remount %s", dst);
			i += 4;
		} else if (strcmp(op, "tmpfs") == 0 && i + 3 < nfields) {
			const char *dst = under(fields[i + 1]);
			if (mount("tmpfs", dst, "tmpfs", mount_flags(fields[i + 3]), fields[i + 2]) < 0) failf("tmpfs %s", dst);
			i += 4;
		} else if (strcmp(op, "attach") == 0 && i + 1 < nfields) {
			// attach dst: the next detached mount that came with the
			// message.
			const char *dst = under(fields[i + 1]);
			if (next_fd >= nfds) {
				errno = EBADF;
				failf("attach %s", dst);
			}
			int fd = fds[next_fd++];
			if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0) failf("attach %s", dst);
			close(fd);
			i += 2;
		} else if (strcmp(op, "file") == 0 && i + 3 < nfields) {
			write_file(under(fields[i + 1]), fields[i + 3], lengths[i + 3], strtoul(fields[i + 2], NULL, 8));
			i += 4;
		} else if (strcmp(op, "readonly") == 0) {
			// The root is complete: make it read-only.
			if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) fail("make / read-only");
			i += 1;
		} else if (strcmp(op, "symlink") == 0 && i + 2 < nfields) {
			const char *p = under(fields[i + 2]);
			if (symlink(fields[i + 1], p) < 0) failf("symlink %s", p);
			i += 3;
		} else {
			errno = EPROTO;
			failf("unknown setup operation %s", op);
		}
	}
}

// prepare carries out a "prepare" message: fields[1] is the directory to
// build the root on, fields[2] the hostname, then operations.
static void prepare(void) {
	if (nfields < 3) {
		errno = EPROTO;
		fail("prepare");
	}
	if ((size_t)snprintf(root, sizeof(root), "%s", fields[1]) >= sizeof(root)) {
		errno = ENAMETOOLONG;
		fail("prepare");
	}
	if (sethostname(fields[2], lengths[2]) < 0) fail("sethostname");
	bring_loopback_up();
	// Nothing mounted here may propagate back to the host.
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail("make / private");
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=755") < 0) failf("mount root tmpfs on %s", root);
	build(3);

	// Enter the new root and let go of the host's (which waits for an RCU
	// grace period, up to milliseconds: better here than in "setup").
	if (mkdir(under("/.old"), 0700) < 0) fail("mkdir .old");
	if (syscall(SYS_pivot_root, root, under("/.old")) < 0) fail("pivot_root");
	root[0] = 0;
	if (chdir("/") < 0) fail("chdir /");
	if (umount2("/.old", MNT_DETACH) < 0) fail("detach the host's root");
	if (rmdir("/.old") < 0) fail("rmdir .old");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail("mount /proc");
	send_msg(1, "prepared");
}

// setup carries out a "setup" message, operations from fields[1] on (the
// last of a sandbox's ends with "readonly").
static void setup(void) {
	build(1);
	for (; next_fd < nfds; next_fd++) {
		close(fds[next_fd]);
	}
	send_msg(1, "ready");
}

static void write_proc(pid_t pid, const char *name, const char *content) {
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, content, strlen(content)) < 0) failf("write %s", path);
	close(fd);
}

// child runs in the forked runtime process: it enters its own user
// namespace, drops every privilege and execs the runtime. Failures are
// reported as an errno on errfd.
static void child(int outfd, int assignfd, int sync_to_parent, int sync_from_parent, int errfd, uid_t uid,
                  gid_t gid, rlim_t nofile, const char *cwd, char **argv, char **envp, struct sock_fprog *prog) {
	int err;
	char c;
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) goto fail; // the init blocks SIGCHLD
	close(ctl);
	if (dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0) goto fail;
	// A runtime started ahead reads its assignment from descriptor 3.
	if (assignfd >= 0 && dup2(assignfd, 3) < 0) goto fail;
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull < 0 || dup2(devnull, 0) < 0) goto fail;
	if (setsid() < 0) goto fail;
	if (unshare(CLONE_NEWUSER) < 0) goto fail;
	if (write(sync_to_parent, "u", 1) != 1 || read(sync_from_parent, &c, 1) != 1) goto fail;
	// Root of the new namespace may drop the bounding set; then become
	// the unprivileged user, which clears every other capability set.
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) goto fail;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) goto fail;
	if (setgroups(0, NULL) < 0) goto fail;
	if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) goto fail;
	struct rlimit rl = {.rlim_cur = nofile, .rlim_max = nofile};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) goto fail;
	if (chdir(cwd) < 0) goto fail;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) goto fail;
	if (prog->len > 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) < 0) goto fail;
	execve(argv[0], argv, envp);
fail:
	err = errno;
	if (write(errfd, &err, sizeof(err)) < 0) {
	}
	_exit(127);
}

// fork_process forks the process a "start" or "spawn" message describes
// (fields from 1 on: uid gid hostbase nofile cwd argc argv... envc envp...
// seccomp), with outfd as its stdout and stderr and, if assignfd is not
// -1, assignfd as its descriptor 3, and returns its pid. When the exec
// fails it reports "error" to the host, reaps the child and returns -1.
static pid_t fork_process(int outfd, int assignfd) {
	if (nfields < 8 || outfd < 0) {
		errno = EPROTO;
		fail("start");
	}
	uid_t uid = strtoul(fields[1], NULL, 10);
	gid_t gid = strtoul(fields[2], NULL, 10);
	unsigned long base = strtoul(fields[3], NULL, 10);
	rlim_t nofile = strtoul(fields[4], NULL, 10);
	const char *cwd = fields[5];
	int argc = atoi(fields[6]);
	if (argc < 1 || 7 + argc >= nfields) {
		errno = EPROTO;
		fail("start argv");
	}
	char **argv = &fields[7];
	int envc = atoi(fields[7 + argc]);
	if (envc < 0 || 8 + argc + envc >= nfields) {
		errno = EPROTO;
		fail("start envp");
	}
	char **envp = &fields[8 + argc];
	int seccomp_field = 8 + argc + envc;
	struct sock_fprog prog = {
		.len = lengths[seccomp_field] / sizeof(struct sock_filter),
		.filter = (struct sock_filter *)fields[seccomp_field],
	};
	// argv and envp must end with NULL.
	char *argv_copy[MAX_FIELDS + 1], *envp_copy[MAX_FIELDS + 1];
	memcpy(argv_copy, argv, argc * sizeof(char *));
	argv_copy[argc] = NULL;
	memcpy(envp_copy, envp, envc * sizeof(char *));
	envp_copy[envc] = NULL;

	int to_parent[2], from_parent[2], errpipe[2];
	if (pipe2(to_parent, O_CLOEXEC) < 0 || pipe2(from_parent, O_CLOEXEC) < 0 || pipe2(errpipe, O_CLOEXEC) < 0) fail("pipe");
	pid_t pid = fork();
	if (pid < 0) fail("fork");
	if (pid == 0) {
		child(outfd, assignfd, to_parent[1], from_parent[0], errpipe[1], uid, gid, nofile, cwd, argv_copy, envp_copy,
		      &prog);
	}
	close(outfd);
	if (assignfd >= 0) close(assignfd);
	close(to_parent[1]);
	close(from_parent[0]);
	close(errpipe[1]);
	char c;
	if (read(to_parent[0], &c, 1) == 1) {
		char map[64];
		snprintf(map, sizeof(map), "0 %lu 65536\n", base);
		write_proc(pid, "uid_map", map);
		write_proc(pid, "gid_map", map);
		if (write(from_parent[1], "m", 1) != 1) fail("sync");
	}
	int err = 0;
	ssize_t n;
	do {
		n = read(errpipe[0], &err, sizeof(err));
	} while (n < 0 && errno == EINTR);
	close(to_parent[0]);
	close(from_parent[1]);
	close(errpipe[0]);
	if (n == sizeof(err)) {
		char msg[512];
		snprintf(msg, sizeof(msg), "exec %s: %s", argv_copy[0], strerror(err));
		send_msg(2, "error", msg);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

// spawn carries out a "spawn" message: a process that runs beside the
// runtime (a Lambda extension), started before it. Its end is not
// reported; the reaping loop of start collects it.
static void spawn(int outfd) {
	pid_t pid = fork_process(outfd, -1);
	if (pid < 0) {
		return;
	}
	char pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	send_msg(2, "spawned", pidstr);
}

// start carries out a "start" message and then waits for the runtime. A
// second descriptor with the message is the runtime's descriptor 3 (a
// runtime started ahead reads its function's assignment there); the host
// then finishes the root with "setup" messages while the runtime runs.
static void start(int outfd) {
	int assignfd = nfds > 1 ? fds[1] : -1;
	// SIGCHLD is taken from a signalfd from now on, so that the loop below
	// can wait for the runtime and for the host at once.
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) fail("block SIGCHLD");
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) fail("signalfd");
	pid_t pid = fork_process(outfd, assignfd);
	if (pid < 0) {
		_exit(1);
	}
	char pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	send_msg(2, "started", pidstr);

	// Reap everything; report the runtime's end and go, taking the rest of
	// the PID namespace along.
	struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
	for (;;) {
		int status;
		pid_t p;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != pid) continue;
			char code[16], sig[16];
			snprintf(code, sizeof(code), "%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			snprintf(sig, sizeof(sig), "%d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			send_msg(3, "exit", code, sig);
			_exit(0);
		}
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR) continue;
			fail("poll");
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			}
		}
		if (pfd[1].revents & (POLLIN | POLLHUP)) {
			recv_msg(); // a closed socket ends the init
			if (nfields < 1 || strcmp(fields[0], "setup") != 0) {
				errno = EPROTO;
				fail("expected setup");
			}
			setup();
		}
	}
}

__attribute__((constructor)) static void lamina_sandbox_init(void) {
	const char *fd = getenv("_LAMINA_SANDBOX_INIT");
	if (fd == NULL) {
		return; // an ordinary run of lamina: on to Go
	}
	ctl = atoi(fd);
	int extra = recv_msg();
	if (nfields < 1 || strcmp(fields[0], "prepare") != 0) {
		errno = EPROTO;
		fail("expected prepare");
	}
	if (extra >= 0) {
		if (setns(extra, CLONE_NEWNET) < 0) fail("enter the network namespace");
		close(extra);
	}
	prepare();
	int outfd = recv_msg();
	for (;;) {
		if (nfields >= 1 && strcmp(fields[0], "setup") == 0) {
			setup();
		} else if (nfields >= 1 && strcmp(fields[0], "spawn") == 0) {
			spawn(outfd);
		} else if (nfields >= 1 && strcmp(fields[0], "start") == 0) {
			start(outfd);
		} else {
			errno = EPROTO;
			fail("expected setup, spawn or start");
		}
		outfd = recv_msg();
	}
}
