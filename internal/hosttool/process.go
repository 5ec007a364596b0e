package hosttool

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a server program (postgres, haproxy) a test runs as its
// child, its output in a log file.
type Process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	logPath string
}

// Start runs cmd with its output in the file at logPath (truncated).
func Start(cmd *exec.Cmd, logPath string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", cmd.Path, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process has not ended yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// WaitErr is what waiting for the process returned; valid once Exited is
// closed.
func (p *Process) WaitErr() error { return p.waitErr }

// LogTail is the end of the process's output, for failure messages.
func (p *Process) LogTail() string { return Tail(p.logPath, 4000) }

// Stop sends sig and waits for the process to end; after timeout it is
// killed (with its process group when it leads one) and Stop reports
// killed. Stopping an ended process is a no-op.
func (p *Process) Stop(sig syscall.Signal, timeout time.Duration) (killed bool) {
	if p == nil || !p.Running() {
		return false
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return false
	case <-time.After(timeout):
	}
	if a := p.cmd.SysProcAttr; a != nil && a.Setpgid {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // the leader and its children
	} else {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
	return true
}
