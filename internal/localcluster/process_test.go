package localcluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// script writes an executable shell script to dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func testLayout(t *testing.T, nodes int) *Layout {
	t.Helper()
	dir := t.TempDir()
	l := &Layout{DataDir: dir}
	for i := range nodes {
		id := "node" + string(rune('1'+i))
		l.Nodes = append(l.Nodes, NodeLayout{
			ID: id, Dir: filepath.Join(dir, id),
			ConfigPath: filepath.Join(dir, id, "node.json"),
			LogPath:    filepath.Join(dir, id+".log"),
		})
	}
	return l
}

func TestOnExit_ReportsUnexpectedExitOnly(t *testing.T) {
	dir := t.TempDir()
	l := testLayout(t, 1)
	exits := make(chan error, 2)
	c, err := StartWatched(l, script(t, dir, "crash", "exit 3"), func(i int, err error) {
		if i != 0 {
			t.Errorf("OnExit for node index %d, want 0", i)
		}
		exits <- err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case err := <-exits:
		if err == nil || err.Error() != "exit status 3" {
			t.Fatalf("OnExit error %v, want exit status 3", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("OnExit was not called for a node that exited by itself")
	}

	// A node stopped on request is not reported.
	l2 := testLayout(t, 1)
	c2, err := StartWatched(l2, script(t, dir, "serve", "exec sleep 60"), func(int, error) {
		exits <- nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.StopNode(0, false); err != nil {
		t.Fatal(err)
	}
	if c2.Running(0) {
		t.Fatal("node still running after StopNode")
	}
	select {
	case <-exits:
		t.Fatal("OnExit was called for a node stopped with StopNode")
	default:
	}
}

func TestStartStopped_RestartsOnlyExitedNodes(t *testing.T) {
	l := testLayout(t, 2)
	c, err := Start(l, script(t, t.TempDir(), "serve", "exec sleep 60"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	first := c.procs[0].Process.Pid
	if got := c.PID(0); got != first {
		t.Errorf("PID(0) = %d, want node1's process %d", got, first)
	}
	if err := c.procs[1].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.Running(1) {
		if time.Now().After(deadline) {
			t.Fatal("killed node still counts as running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.PID(1); got != 0 {
		t.Errorf("PID(1) = %d after node2 exited, want 0", got)
	}
	if n := c.RunningCount(); n != 1 {
		t.Errorf("%d nodes running after one was killed, want 1", n)
	}

	started, err := c.StartStopped()
	if err != nil {
		t.Fatal(err)
	}
	if len(started) != 1 || started[0] != "node2" {
		t.Errorf("started %v, want [node2]", started)
	}
	if !c.Running(1) || c.RunningCount() != 2 {
		t.Errorf("node2 running %v, %d nodes running, want true and 2", c.Running(1), c.RunningCount())
	}
	if c.procs[0].Process.Pid != first {
		t.Error("node1, which was running, was started again")
	}
	if got := c.PID(1); got == 0 || got != c.procs[1].Process.Pid {
		t.Errorf("PID(1) = %d after the restart, want node2's new process %d", got, c.procs[1].Process.Pid)
	}
}
