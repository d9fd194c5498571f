package sandbox

import (
	"encoding/binary"
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls are refused with EPERM inside a sandbox. The list follows
// the spirit of Docker's default profile: what manipulates the kernel, the
// machine, other namespaces or mounts, and what has been a frequent way out
// of containers. Everything else is allowed, so interpreters and their
// native extensions work as on Lambda.
var deniedSyscalls = []string{
	// mounts and the root
	"mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig",
	"fsmount", "fspick", "mount_setattr",
	// namespaces
	"unshare", "setns",
	// kernel code and the machine
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "iopl", "ioperm",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "syslog", "quotactl", "vhangup",
	// observation and injection
	"bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",
	"keyctl", "add_key", "request_key",
	"open_by_handle_at", "name_to_handle_at",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"uselib", "ustat", "sysfs", "_sysctl", "personality", "nfsservctl",
}

// namespaceCloneFlags are the clone flags that would create namespaces; a
// clone with any of them is refused.
var namespaceCloneFlags = []uint64{
	unix.CLONE_NEWUSER, unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
	unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWCGROUP, unix.CLONE_NEWTIME,
}

// seccompProgram assembles the sandbox's seccomp filter into the raw BPF
// program that prctl(PR_SET_SECCOMP) loads: struct sock_filter entries, in
// native (little-endian) byte order.
func seccompProgram() ([]byte, error) {
	var cloneRules []seccomp.NameWithConditions
	for _, flag := range namespaceCloneFlags {
		cloneRules = append(cloneRules, seccomp.NameWithConditions{
			Name:       "clone",
			Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: flag}},
		})
	}
	policy := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: deniedSyscalls, NamesWithCondtions: cloneRules},
			// clone3 passes its flags in memory, where a filter cannot look:
			// answering ENOSYS makes the C library fall back to clone.
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
		},
	}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	native, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	// The assembled policy lets system calls of another architecture (the
	// 32-bit x86 ABI through int 0x80) through with the default action,
	// which would bypass every rule: kill such callers first.
	insts = append([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(native.ID), SkipTrue: 1},
		bpf.RetConstant{Val: uint32(seccomp.ActionKillProcess)},
	}, insts...)
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	prog := make([]byte, 0, 8*len(raw))
	for _, ins := range raw {
		prog = binary.LittleEndian.AppendUint16(prog, ins.Op)
		prog = append(prog, ins.Jt, ins.Jf)
		prog = binary.LittleEndian.AppendUint32(prog, ins.K)
	}
	return prog, nil
}
