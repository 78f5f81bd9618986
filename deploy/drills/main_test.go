//go:build e2e

package drills

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	legolog "github.com/go-acme/lego/v5/log"
)

// probeEnv, when set, makes the test binary run one probe job from
// standard input instead of the tests (see probe_test.go).
const probeEnv = "ANCHOR_DRILL_PROBE"

var (
	workDir string

	mu       sync.Mutex
	started  []*composeProject
	clusters = map[string]*drillCluster{}
)

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) != "" {
		os.Exit(runProbe(os.Stdin, os.Stdout))
	}
	legolog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	image := os.Getenv("ANCHOR_IMAGE")
	if image == "" {
		image = "anchor-node:local"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := docker(ctx, "image", "inspect", image)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "drills: image %s not found: run make docker-image first\n", image)
		os.Exit(1)
	}
	workDir, err = os.MkdirTemp("", "anchor-drills")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopAll()
	os.RemoveAll(workDir)
	os.Exit(code)
}

// threeNodeCluster returns the shared three-node cluster of the drills,
// starting it on first use.
func threeNodeCluster(t *testing.T) *drillCluster {
	return sharedCluster(t, newComposeProject("anchordrill3", 3, "docker-compose.yml"))
}

// fiveNodeCluster returns the five-node cluster, starting it on first use.
func fiveNodeCluster(t *testing.T) *drillCluster {
	return sharedCluster(t, newComposeProject("anchordrill5", 5,
		"docker-compose.yml", "docker-compose.5.yml"))
}

func sharedCluster(t *testing.T, p *composeProject) *drillCluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if c, ok := clusters[p.name]; ok {
		return c
	}
	// Remove what an interrupted earlier run may have left.
	if err := p.down(); err != nil {
		t.Fatalf("remove leftovers of %s: %v", p.name, err)
	}
	started = append(started, p)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp(workDir, p.name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := startCluster(ctx, p, dir)
	if err != nil {
		for i := 1; i <= p.nodes; i++ {
			t.Log(p.logs(fmt.Sprintf("node%d", i), 40))
		}
		t.Fatalf("start %s: %v", p.name, err)
	}
	clusters[p.name] = c
	return c
}

// stopCluster removes a project's containers, networks and volumes.
func stopCluster(t *testing.T, c *drillCluster) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	c.close()
	delete(clusters, c.project.name)
	if err := c.project.down(); err != nil {
		t.Errorf("remove %s: %v", c.project.name, err)
	}
}

func stopAll() {
	mu.Lock()
	defer mu.Unlock()
	for _, p := range started {
		if c, ok := clusters[p.name]; ok {
			c.close()
		}
		if err := p.down(); err != nil {
			fmt.Fprintf(os.Stderr, "drills: remove %s: %v\n", p.name, err)
		}
	}
}

// logf prints a line of a drill's report on standard output.
func logf(format string, args ...any) {
	fmt.Printf("    [%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
