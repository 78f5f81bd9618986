package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipConfig configures memberlist, which the cluster uses to discover
// members and to see which are alive.
type GossipConfig struct {
	// Addr is the host:port memberlist binds (TCP and UDP) and advertises.
	Addr string `json:"addr"`
	// KeyFile holds the base64 of a 32-byte AES key that encrypts gossip.
	// Every member must use the same key.
	KeyFile string `json:"key_file"`
	// Seeds are gossip addresses of other members to join at start.
	Seeds []string `json:"seeds"`
}

// memberMeta is the metadata a member gossips about itself.
type memberMeta struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft"`
	GRPCAddr string `json:"grpc"`
	Applied  uint64 `json:"applied"`
}

// gossip runs memberlist for a node.
type gossip struct {
	node   *Node
	ml     *memberlist.Memberlist
	logger *slog.Logger

	mu      sync.Mutex
	applied uint64
	// states records each member's last state from membership events,
	// because Members lists live members only.
	states map[string]string
}

// ReadGossipKey reads and checks a gossip key file.
func ReadGossipKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read gossip key_file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("gossip key_file %s must hold the base64 of 32 random bytes", path)
	}
	return key, nil
}

func startGossip(n *Node, cfg *GossipConfig) (*gossip, error) {
	key, err := ReadGossipKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("gossip addr %q is not host:port: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip addr %q: invalid port: %w", cfg.Addr, err)
	}
	// memberlist binds an IP address; a host name, as in a container
	// network, is resolved once at start.
	if net.ParseIP(host) == nil {
		ip, err := net.ResolveIPAddr("ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve gossip addr host %q: %w", host, err)
		}
		host = ip.IP.String()
	}
	g := &gossip{node: n, logger: n.logger, states: map[string]string{}}
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.cfg.NodeID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.SecretKey = key
	mc.Delegate = g
	mc.Events = g
	mc.LogOutput = newSlogWriter(n.logger.With("component", "memberlist"))
	if g.ml, err = memberlist.Create(mc); err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.Addr, err)
	}
	if len(cfg.Seeds) > 0 {
		go g.joinSeeds(cfg.Seeds)
	}
	go g.refreshMeta()
	return g, nil
}

// joinSeeds retries joining the gossip pool until one seed responds.
func (g *gossip) joinSeeds(seeds []string) {
	for attempt := 0; ; attempt++ {
		if _, err := g.ml.Join(seeds); err == nil {
			return
		} else if attempt%10 == 0 {
			g.logger.Warn("gossip join failed, retrying", "seeds", seeds, "error", err)
		}
		select {
		case <-g.node.stopCh:
			return
		case <-time.After(time.Second):
		}
	}
}

// refreshMeta republishes the applied index every two seconds.
func (g *gossip) refreshMeta() {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-g.node.stopCh:
			return
		case <-tick.C:
		}
		g.mu.Lock()
		g.applied = g.node.appliedIndex()
		g.mu.Unlock()
		_ = g.ml.UpdateNode(time.Second)
	}
}

// NodeMeta implements memberlist.Delegate.
func (g *gossip) NodeMeta(limit int) []byte {
	g.mu.Lock()
	applied := g.applied
	g.mu.Unlock()
	meta, _ := json.Marshal(memberMeta{
		ID: g.node.cfg.NodeID, RaftAddr: g.node.cfg.RaftAddr, GRPCAddr: g.node.cfg.GRPCAddr, Applied: applied,
	})
	if len(meta) > limit {
		return nil
	}
	return meta
}

// NotifyMsg, GetBroadcasts, LocalState and MergeRemoteState implement
// memberlist.Delegate; the cluster gossips only node metadata.
func (g *gossip) NotifyMsg([]byte)                           {}
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (g *gossip) LocalState(join bool) []byte                { return nil }
func (g *gossip) MergeRemoteState(buf []byte, join bool)     {}

// NotifyJoin, NotifyLeave and NotifyUpdate implement memberlist.EventDelegate.
func (g *gossip) NotifyJoin(m *memberlist.Node) {
	g.setState(m.Name, "alive")
	g.logger.Info("gossip member joined", "member", m.Name, "addr", m.Address())
}

func (g *gossip) NotifyLeave(m *memberlist.Node) {
	state := stateName(m.State)
	if state == "alive" || state == "suspect" {
		state = "dead"
	}
	g.setState(m.Name, state)
	g.logger.Warn("gossip member gone", "member", m.Name, "addr", m.Address(), "state", state)
}

func (g *gossip) NotifyUpdate(m *memberlist.Node) { g.setState(m.Name, "alive") }

func (g *gossip) setState(name, state string) {
	g.mu.Lock()
	g.states[name] = state
	g.mu.Unlock()
}

// health returns the gossip state of every member seen since start, with
// the applied index that live members publish.
func (g *gossip) health() map[string]memberHealth {
	out := map[string]memberHealth{}
	g.mu.Lock()
	for name, state := range g.states {
		out[name] = memberHealth{State: state}
	}
	g.mu.Unlock()
	for _, m := range g.ml.Members() {
		h := memberHealth{State: stateName(m.State)}
		var meta memberMeta
		if json.Unmarshal(m.Meta, &meta) == nil {
			h.Applied = meta.Applied
		}
		out[m.Name] = h
	}
	return out
}

func (g *gossip) shutdown() {
	_ = g.ml.Leave(time.Second)
	_ = g.ml.Shutdown()
}

type memberHealth struct {
	State   string
	Applied uint64
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

// memberAlive reports whether gossip reports the member alive or suspect.
// Without gossip every member counts as alive.
func (n *Node) memberAlive(id string) bool {
	if id == n.cfg.NodeID || n.gossip == nil {
		return true
	}
	h, ok := n.gossip.health()[id]
	return ok && (h.State == "alive" || h.State == "suspect")
}
