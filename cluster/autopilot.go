package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// minVotersAfterCleanup keeps automatic cleanup from shrinking a cluster
// below the size that survives one failure.
const minVotersAfterCleanup = 3

// cleanupDeadServers runs on every node and acts while it leads: a voter that
// gossip has reported dead for DeadServerCleanup is removed when at least
// three voters remain and the alive voters still form their quorum.
func (n *Node) cleanupDeadServers() {
	deadSince := map[string]time.Time{}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.stopCh:
			return
		case <-tick.C:
		}
		if n.raft.State() != raft.Leader || n.gossip == nil {
			clear(deadSince)
			continue
		}
		n.cleanupOnce(deadSince, time.Now())
	}
}

func (n *Node) cleanupOnce(deadSince map[string]time.Time, now time.Time) {
	cfg := n.raft.GetConfiguration()
	if cfg.Error() != nil {
		return
	}
	servers := cfg.Configuration().Servers
	health := n.gossip.health()
	for _, s := range servers {
		id := string(s.ID)
		h, known := health[id]
		if id == n.cfg.NodeID || (known && (h.State == "alive" || h.State == "suspect")) {
			delete(deadSince, id)
			continue
		}
		if !known {
			// Never seen in gossip: not evidence of death, such as while
			// a new member joins.
			continue
		}
		if _, ok := deadSince[id]; !ok {
			deadSince[id] = now
		}
		if now.Sub(deadSince[id]) < n.cfg.DeadServerCleanup {
			continue
		}
		if !n.safeToClean(servers, id) {
			continue
		}
		if err := n.raft.RemoveServer(s.ID, 0, 10*time.Second).Error(); err != nil {
			n.logger.Error("remove dead server failed", "member", id, "error", err)
			continue
		}
		n.logger.Warn("dead server removed", "member", id, "dead_for", now.Sub(deadSince[id]).String())
		delete(deadSince, id)
		return // the configuration changed; re-read it on the next tick
	}
}

func (n *Node) safeToClean(servers []raft.Server, id string) bool {
	voters, alive := n.votersWithout(servers, id)
	isVoter := false
	for _, s := range servers {
		isVoter = isVoter || (string(s.ID) == id && s.Suffrage == raft.Voter)
	}
	if !isVoter {
		return true
	}
	return voters >= minVotersAfterCleanup && alive >= voters/2+1
}
