//go:build linux && cgo

package sandbox

// The sandbox init is written in C (nsinit.c) and runs as a constructor,
// before the Go runtime, in processes started by NamespaceProvider; linking
// this package into a binary is what makes the binary able to serve as the
// init.

// #cgo CFLAGS: -O2 -Wall -Wno-unused-result
import "C"

// initEnv is the environment variable that turns a start of the binary into
// the sandbox init; its value is the control socket's file descriptor.
const initEnv = "_LAMINA_SANDBOX_INIT"
