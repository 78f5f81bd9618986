package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Cluster is a set of running anchor-node processes.
type Cluster struct {
	Layout *Layout
	bin    string

	// OnExit, when set before Start, is called when a node's process
	// exits without StopNode or Stop having asked it to.
	OnExit func(i int, err error)

	mu    sync.Mutex
	procs []*exec.Cmd
	done  []chan struct{}
}

// Start launches every node of the layout with the anchor-node binary bin.
func Start(l *Layout, bin string) (*Cluster, error) {
	return StartWatched(l, bin, nil)
}

// StartWatched is Start with onExit as the cluster's OnExit.
func StartWatched(l *Layout, bin string, onExit func(i int, err error)) (*Cluster, error) {
	c := &Cluster{Layout: l, bin: bin, OnExit: onExit, procs: make([]*exec.Cmd, len(l.Nodes)),
		done: make([]chan struct{}, len(l.Nodes))}
	for i := range l.Nodes {
		if err := c.StartNode(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// StartNode starts node i, which must not be running.
func (c *Cluster) StartNode(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] != nil {
		return fmt.Errorf("node %s is already running", c.Layout.Nodes[i].ID)
	}
	nl := c.Layout.Nodes[i]
	logFile, err := os.OpenFile(nl.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open node log: %w", err)
	}
	cmd := exec.Command(c.bin, "-config", nl.ConfigPath)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+c.Layout.SoftHSMConf(i))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", nl.ID, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		logFile.Close()
		c.mu.Lock()
		unexpected := c.procs[i] == cmd
		onExit := c.OnExit
		c.mu.Unlock()
		close(done)
		if unexpected && onExit != nil {
			onExit(i, err)
		}
	}()
	c.procs[i], c.done[i] = cmd, done
	return nil
}

// StopNode stops node i with SIGTERM, or SIGKILL when kill is set or the
// node has not exited within ten seconds.
func (c *Cluster) StopNode(i int, kill bool) error {
	c.mu.Lock()
	cmd, done := c.procs[i], c.done[i]
	c.procs[i], c.done[i] = nil, nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("node %s did not stop within 10s and was killed", c.Layout.Nodes[i].ID)
	}
}

// StartStopped starts again every node whose process has exited by
// itself or was stopped, and returns their IDs.
func (c *Cluster) StartStopped() ([]string, error) {
	var started []string
	for i := range c.Layout.Nodes {
		if c.Running(i) {
			continue
		}
		c.mu.Lock()
		c.procs[i], c.done[i] = nil, nil
		c.mu.Unlock()
		if err := c.StartNode(i); err != nil {
			return started, err
		}
		started = append(started, c.Layout.Nodes[i].ID)
	}
	return started, nil
}

// PID returns the process ID of node i, or 0 when it is not running.
func (c *Cluster) PID(i int) int {
	if !c.Running(i) {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] == nil || c.procs[i].Process == nil {
		return 0
	}
	return c.procs[i].Process.Pid
}

// RunningCount returns the number of nodes whose process is running.
func (c *Cluster) RunningCount() int {
	n := 0
	for i := range c.Layout.Nodes {
		if c.Running(i) {
			n++
		}
	}
	return n
}

// Running reports whether node i's process is running.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done[i] == nil {
		return false
	}
	select {
	case <-c.done[i]:
		return false
	default:
		return true
	}
}

// Stop stops every node.
func (c *Cluster) Stop() error {
	var errs []error
	for i := range c.procs {
		errs = append(errs, c.StopNode(i, false))
	}
	return errors.Join(errs...)
}

// WaitFor polls cond every 100ms until it returns nil or ctx ends, and then
// returns the last error.
func WaitFor(ctx context.Context, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LogTail returns the last lines of node i's log, for failure messages.
func (c *Cluster) LogTail(i, maxBytes int) string {
	data, err := os.ReadFile(c.Layout.Nodes[i].LogPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	return filepath.Base(c.Layout.Nodes[i].LogPath) + ":\n" + string(data)
}
