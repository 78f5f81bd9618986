//go:build e2e

package drills

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Container operations on node i of a drill cluster.

func (c *drillCluster) dockerOnNode(ctx context.Context, i int, args ...string) error {
	id, err := c.project.containerID(ctx, c.nodes[i].id)
	if err != nil {
		return err
	}
	_, err = docker(ctx, append(args, id)...)
	return err
}

// kill sends SIGKILL to node i's container (docker kill).
func (c *drillCluster) kill(ctx context.Context, i int) error {
	return c.dockerOnNode(ctx, i, "kill")
}

// start starts node i's stopped container again, with its volumes.
func (c *drillCluster) start(ctx context.Context, i int) error {
	return c.dockerOnNode(ctx, i, "start")
}

// restart stops node i with SIGTERM, waiting up to ten seconds before
// SIGKILL, and starts it again.
func (c *drillCluster) restart(ctx context.Context, i int) error {
	return c.dockerOnNode(ctx, i, "restart", "-t", "10")
}

// network returns the name of the compose network that node i is on and
// its IP address there.
func (c *drillCluster) network(ctx context.Context, i int) (name, ip string, err error) {
	id, err := c.project.containerID(ctx, c.nodes[i].id)
	if err != nil {
		return "", "", err
	}
	out, err := docker(ctx, "inspect", "-f",
		`{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{"\n"}}{{end}}`, id)
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.HasSuffix(f[0], "_cluster") {
			return f[0], f[1], nil
		}
	}
	return "", "", fmt.Errorf("%s is on no *_cluster network: %q", c.nodes[i].id, out)
}

// disconnect removes node i from the compose network (docker network
// disconnect): it keeps running but reaches no other container, and its
// published ports lead nowhere.
func (c *drillCluster) disconnect(ctx context.Context, i int, network string) error {
	return c.dockerOnNode(ctx, i, "network", "disconnect", network)
}

// connect attaches node i to the network again, with its service name as
// the DNS alias that the other nodes dial. Docker hands out the lowest free
// address, which is the node's earlier one unless a container started in
// between. The caller checks the address, because Raft and gRPC stay bound
// to the earlier one.
func (c *drillCluster) connect(ctx context.Context, i int, network string) error {
	return c.dockerOnNode(ctx, i, "network", "connect", "--alias", c.nodes[i].id, network)
}

// waitCaughtUp waits until node i follows a leader and has applied the
// leader's commit index as it was when node i first saw that leader, and
// returns the time it did.
func (c *drillCluster) waitCaughtUp(ctx context.Context, i int) (time.Time, error) {
	var target uint64
	err := poll(ctx, 100*time.Millisecond, func() error {
		st, err := c.status(ctx, i)
		if err != nil {
			return err
		}
		if st.LeaderId == "" {
			return fmt.Errorf("%s knows no leader", c.nodes[i].id)
		}
		if target == 0 {
			lst, err := c.status(ctx, c.index(st.LeaderId))
			if err != nil {
				return err
			}
			target = lst.CommitIndex
		}
		if st.AppliedIndex < target {
			return fmt.Errorf("%s applied %d of %d", c.nodes[i].id, st.AppliedIndex, target)
		}
		return nil
	})
	return time.Now(), err
}
