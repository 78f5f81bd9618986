//go:build e2e

package drills

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Published port prefixes of the drill projects: node N publishes HTTP on
// 2808N, ACME on 2844N and the admin API on 2900N, so that a cluster
// started with the defaults of docker-compose.yml (1808N, ...) can keep
// running beside the drills.
const (
	httpPortPrefix  = "2808"
	acmePortPrefix  = "2844"
	adminPortPrefix = "2900"
)

// composeProject runs docker compose for one project of the drills.
type composeProject struct {
	name  string
	files []string
	nodes int
}

func newComposeProject(name string, nodes int, files ...string) *composeProject {
	root := repoRoot()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	return &composeProject{name: name, files: paths, nodes: nodes}
}

// repoRoot is two levels above this package's directory, where go test
// runs the test binary.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

// composeCommand returns docker compose (v2) when the docker CLI has it,
// else docker-compose. ANCHOR_COMPOSE overrides both, such as
// ANCHOR_COMPOSE=docker-compose.
func composeCommand() []string {
	if c := os.Getenv("ANCHOR_COMPOSE"); c != "" {
		return strings.Fields(c)
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	return []string{"docker-compose"}
}

// environ is the environment of every compose command: drill ports, no
// automatic restarts (a killed node stays down until a drill starts it)
// and the image built by make docker-image.
func (p *composeProject) environ() []string {
	return append(os.Environ(),
		"COMPOSE_PROJECT_NAME="+p.name,
		"ANCHOR_PUBLISH_ADDR=127.0.0.1",
		"ANCHOR_HTTP_PORT_PREFIX="+httpPortPrefix,
		"ANCHOR_ACME_PORT_PREFIX="+acmePortPrefix,
		"ANCHOR_ADMIN_PORT_PREFIX="+adminPortPrefix,
		"ANCHOR_PUBLIC_HOST=127.0.0.1",
		"ANCHOR_RESTART=no",
		"ANCHOR_EAB_IDENTIFIERS=*.drill.test",
	)
}

// compose runs one compose command and returns its combined output.
func (p *composeProject) compose(ctx context.Context, args ...string) (string, error) {
	base := composeCommand()
	full := append([]string{}, base[1:]...)
	for _, f := range p.files {
		full = append(full, "-f", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, base[0], full...)
	cmd.Env = p.environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", base[0], strings.Join(full, " "), err, out)
	}
	return string(out), nil
}

func (p *composeProject) up(ctx context.Context) error {
	_, err := p.compose(ctx, "up", "-d", "--no-build")
	return err
}

// down removes the project's containers, networks and volumes.
func (p *composeProject) down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := p.compose(ctx, "--profile", "tools", "down", "-v", "--remove-orphans", "-t", "5")
	return err
}

// containerID returns the ID of the service's container, running or not.
func (p *composeProject) containerID(ctx context.Context, service string) (string, error) {
	out, err := p.compose(ctx, "ps", "-a", "-q", service)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.Contains(id, "\n") {
		return "", fmt.Errorf("service %s of project %s has no single container (%q)",
			service, p.name, id)
	}
	return id, nil
}

// logs returns the last lines of a service's log, for failure messages.
func (p *composeProject) logs(service string, lines int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.compose(ctx, "logs", "--no-color", "--tail", fmt.Sprint(lines), service)
	if err != nil {
		return err.Error()
	}
	return out
}

// docker runs the docker CLI and returns its combined output.
func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
