package sandbox

import (
	"os/exec"
	"runtime"
	"sync"
)

// Processes started with Pdeathsig are killed when the *thread* that started
// them exits, not the process. Go ends threads now and then (a goroutine that
// exits while locked to its thread takes the thread along), so sandbox
// processes are all started from one thread that lives as long as Lamina.

var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess starts cmd from the spawner thread.
func startProcess(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must not end
			for req := range spawner.reqs {
				req.done <- req.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}
