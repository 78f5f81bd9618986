package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
	"anchor/internal/localcluster"
)

// TestSnapshot_JoinerAndRestoreAcrossProcesses loads 100,000 credentials
// into a cluster of three anchor-node processes. A backup saved through a
// follower is restored into a second cluster of three processes, which then
// takes writes and keeps the state across a restart. A fourth process that
// joins the first cluster after Raft compacted its log catches up by
// snapshot installation.
func TestSnapshot_JoinerAndRestoreAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 100,000 credentials into two clusters of processes")
	}
	const total = 100_000
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	began := time.Now()
	src, _ := startClusterWith(t, localcluster.Options{Nodes: 3})
	t.Logf("source cluster ready in %s", since(began))

	// 1. Commit the credentials through the leader's internal Apply, as a
	// follower forwards writes. ACME would take far longer for this many.
	step := time.Now()
	if err := newPeerLoader(t, src.Layout).load(ctx, newBulkSigner(t), total); err != nil {
		t.Fatalf("load credentials: %v", err)
	}
	t.Logf("signed and committed %d credentials in %s; %d leader elections so far", total,
		since(step), elections(t, src))

	// 2. Every node returns all of them through the admin API.
	step = time.Now()
	srcAdmin := newAdminClients(t, src.Layout)
	for i := range src.Layout.Nodes {
		waitCertificates(t, ctx, srcAdmin, i, total, 2*time.Minute)
	}
	t.Logf("every source node lists %d certificates, checked in %s", total, since(step))

	// 3. Save through a follower and restore into a fresh cluster. This runs
	// before the join below, because the join needs Raft's automatic
	// snapshot, and hashicorp/raft's default SnapshotInterval (120s, plus
	// up to as much again of random delay) puts the first one two to four
	// minutes after a node starts.
	backup := saveThroughFollower(t, ctx, srcAdmin, total)
	restoreIntoFreshCluster(t, ctx, backup, total)

	// 4. Once every voter has taken a snapshot and compacted its log, a new
	// node cannot replay the log from its start and receives the snapshot.
	step = time.Now()
	waitCompacted(t, ctx, src)
	t.Logf("every source voter took a Raft snapshot and compacted its log %s after the "+
		"cluster started (waited %s)", since(began), since(step))
	step = time.Now()
	joiner, err := src.AddJoiner(false)
	if err != nil {
		t.Fatalf("add joining node: %v", err)
	}
	joinerID := src.Layout.Nodes[joiner].ID
	srcAdmin = newAdminClients(t, src.Layout)
	waitVoter(t, ctx, srcAdmin, joinerID)
	waitCertificates(t, ctx, srcAdmin, joiner, total, 3*time.Minute)
	t.Logf("%s joined and lists %d certificates after %s", joinerID, total, since(step))
	// hashicorp/raft (v1.7.2) logs this line when a follower has installed
	// a snapshot sent by the leader.
	if !logContains(t, src.Layout.Nodes[joiner].LogPath, "Installed remote snapshot") {
		t.Fatalf("%s caught up without installing a snapshot. Its log:\n%s",
			joinerID, src.LogTail(joiner, 4000))
	}
	t.Logf("test took %s", since(began))
}

// saveThroughFollower streams a backup from a follower of the source
// cluster into a file and checks its final chunk.
func saveThroughFollower(t *testing.T, ctx context.Context, admin *adminClients, total int) string {
	t.Helper()
	step := time.Now()
	follower := admin.follower(t, ctx)
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	stream, err := anchorv1.NewClusterClient(admin.conns[follower]).SaveSnapshot(ctx,
		&anchorv1.SaveSnapshotRequest{})
	if err != nil {
		t.Fatalf("save snapshot through %s: %v", admin.layout.Nodes[follower].ID, err)
	}
	var written uint64
	for {
		chunk, err := stream.Recv()
		if err != nil {
			t.Fatalf("save snapshot through %s after %d bytes: %v",
				admin.layout.Nodes[follower].ID, written, err)
		}
		if len(chunk.Data) == 0 {
			if chunk.Size != written {
				t.Fatalf("snapshot final chunk gives %d bytes, received %d", chunk.Size, written)
			}
			if chunk.Index < uint64(total) {
				t.Fatalf("snapshot reflects log index %d, below the %d writes", chunk.Index, total)
			}
			break
		}
		if _, err := f.Write(chunk.Data); err != nil {
			t.Fatal(err)
		}
		written += uint64(len(chunk.Data))
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %d bytes through follower %s in %s", written, admin.layout.Nodes[follower].ID,
		since(step))
	return path
}

// restoreIntoFreshCluster starts three new processes, restores the backup
// through their leader and checks that every node serves it, takes a write,
// and keeps both across a restart.
func restoreIntoFreshCluster(t *testing.T, ctx context.Context, backup string, total int) {
	t.Helper()
	step := time.Now()
	// The fresh nodes have the source's node IDs on other ports and HSM
	// tokens, as when a cluster is rebuilt from a backup. The restore
	// brings the source's node records, and each node registers again.
	fresh, _ := startClusterWith(t, localcluster.Options{Nodes: 3})
	admin := newAdminClients(t, fresh.Layout)
	t.Logf("fresh cluster ready in %s", since(step))

	step = time.Now()
	index := restoreWithRetry(t, ctx, admin, backup)
	t.Logf("restored the backup at log index %d in %s", index, since(step))
	step = time.Now()
	for i := range fresh.Layout.Nodes {
		waitCertificates(t, ctx, admin, i, total, 2*time.Minute)
	}
	t.Logf("every fresh node lists %d certificates %s after the restore", total, since(step))

	// A write through a follower after the restore reaches every node.
	follower := admin.follower(t, ctx)
	createOrganization(t, ctx, admin, follower, "after-restore")
	for i := range fresh.Layout.Nodes {
		waitOrganization(t, ctx, admin, i, "after-restore")
	}

	// A restarted node comes back with the restored state and the write,
	// and applies the writes that follow.
	step = time.Now()
	if err := fresh.StopNode(follower, false); err != nil {
		t.Fatalf("stop %s: %v", fresh.Layout.Nodes[follower].ID, err)
	}
	if err := fresh.StartNode(follower); err != nil {
		t.Fatalf("restart %s: %v", fresh.Layout.Nodes[follower].ID, err)
	}
	createOrganization(t, ctx, admin, admin.leader(t, ctx), "after-restart")
	waitCertificates(t, ctx, admin, follower, total, 2*time.Minute)
	waitOrganization(t, ctx, admin, follower, "after-restore")
	waitOrganization(t, ctx, admin, follower, "after-restart")
	t.Logf("restarted %s holds the restored state, checked in %s", fresh.Layout.Nodes[follower].ID,
		since(step))
}

// restoreWithRetry sends the backup to the leader, finding it again when
// an attempt fails, as an operator would. Every failure is retried: a
// repeated restore replaces the state again, and on a loaded machine the
// restore can also time out while followers install the snapshot.
func restoreWithRetry(t *testing.T, ctx context.Context, admin *adminClients, path string) uint64 {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		var index uint64
		leader := admin.leader(t, ctx)
		if index, err = restoreOnce(ctx, admin.conns[leader], path); err == nil {
			return index
		}
		t.Logf("restore attempt %d through %s: %v", attempt, admin.layout.Nodes[leader].ID, err)
	}
	t.Fatalf("restore snapshot: %v", err)
	return 0
}

func restoreOnce(ctx context.Context, conn *grpc.ClientConn, path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	stream, err := anchorv1.NewClusterClient(conn).RestoreSnapshot(ctx)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 256<<10)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if serr := stream.Send(&anchorv1.SnapshotChunk{Data: buf[:n]}); serr != nil {
				break // the server's status comes with CloseAndRecv
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return 0, err
	}
	return resp.Index, nil
}

// waitCompacted waits until every voter of c has a Raft snapshot in its data
// directory and the "compacting logs" line in its log. hashicorp/raft
// (v1.7.2) writes that line only when it deletes entries, starting with the
// log's first, so a joiner needs the snapshot even where the snapshot does
// not cover every credential.
func waitCompacted(t *testing.T, ctx context.Context, c *localcluster.Cluster) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err := localcluster.WaitFor(wctx, func() error {
		for _, n := range c.Layout.Nodes {
			idx, err := newestSnapshotIndex(filepath.Join(n.Dir, "state", "snapshots"))
			if err != nil {
				return err
			}
			if idx == 0 {
				return fmt.Errorf("%s has no Raft snapshot yet", n.ID)
			}
			if !logContains(t, n.LogPath, "compacting logs") {
				return fmt.Errorf("%s: snapshot at index %d, log not compacted yet", n.ID, idx)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("wait for Raft snapshots: %v", err)
	}
}

// newestSnapshotIndex returns the highest index among the finished
// snapshots in a raft.FileSnapshotStore directory, 0 when there is none.
func newestSnapshotIndex(dir string) (uint64, error) {
	metas, err := filepath.Glob(filepath.Join(dir, "*", "meta.json"))
	if err != nil {
		return 0, err
	}
	var newest uint64
	for _, path := range metas {
		if strings.HasSuffix(filepath.Dir(path), ".tmp") {
			continue // still being written
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		var meta struct{ Index uint64 }
		if err := json.Unmarshal(data, &meta); err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		newest = max(newest, meta.Index)
	}
	return newest, nil
}

func logContains(t *testing.T, path, text string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), text)
}

// elections counts hashicorp/raft's "entering leader state" lines in the
// logs of c's nodes.
func elections(t *testing.T, c *localcluster.Cluster) int {
	t.Helper()
	count := 0
	for _, n := range c.Layout.Nodes {
		data, err := os.ReadFile(n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		count += strings.Count(string(data), "entering leader state")
	}
	return count
}

// adminClients are cluster-admin connections, one per node of a layout.
type adminClients struct {
	layout *localcluster.Layout
	conns  []*grpc.ClientConn
}

func newAdminClients(t *testing.T, l *localcluster.Layout) *adminClients {
	t.Helper()
	creds, err := cluster.LoadCredentials(l.AdminTLS)
	if err != nil {
		t.Fatal(err)
	}
	a := &adminClients{layout: l}
	for _, n := range l.Nodes {
		conn, err := grpc.NewClient(n.GRPCAddr,
			grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		a.conns = append(a.conns, conn)
	}
	return a
}

// leader returns the index of the node that node 1 reports as leader,
// waiting for one to be elected.
func (a *adminClients) leader(t *testing.T, ctx context.Context) int {
	t.Helper()
	leader := -1
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := localcluster.WaitFor(wctx, func() error {
		st, err := localcluster.Status(wctx, a.layout.Nodes[0].GRPCAddr, a.layout.AdminTLS)
		if err != nil {
			return err
		}
		leader = slices.IndexFunc(a.layout.Nodes, func(n localcluster.NodeLayout) bool {
			return n.ID == st.LeaderId
		})
		if leader < 0 {
			return fmt.Errorf("node 1 reports leader %q", st.LeaderId)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("find leader: %v", err)
	}
	return leader
}

// follower returns the index of a node that is not the leader.
func (a *adminClients) follower(t *testing.T, ctx context.Context) int {
	t.Helper()
	return (a.leader(t, ctx) + 1) % len(a.layout.Nodes)
}

// waitCertificates waits until node i lists exactly want certificates in
// the bulk organization, and fails at once when it lists more.
func waitCertificates(t *testing.T, ctx context.Context, a *adminClients, i, want int,
	timeout time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := localcluster.WaitFor(wctx, func() error {
		got, err := countCertificates(wctx, a.conns[i], bulkOrg)
		if err != nil {
			return err
		}
		if got > want {
			t.Fatalf("%s lists %d certificates in %s, want %d",
				a.layout.Nodes[i].ID, got, bulkOrg, want)
		}
		if got != want {
			return fmt.Errorf("%s lists %d certificates, want %d", a.layout.Nodes[i].ID, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("wait for certificates: %v", err)
	}
}

// waitVoter waits until node 1 reports id as a voter.
func waitVoter(t *testing.T, ctx context.Context, a *adminClients, id string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := localcluster.WaitFor(wctx, func() error {
		st, err := localcluster.Status(wctx, a.layout.Nodes[0].GRPCAddr, a.layout.AdminTLS)
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			if m.Id == id && m.Suffrage == "voter" {
				return nil
			}
		}
		return fmt.Errorf("%s is not a voter in the status of %s", id, st.NodeId)
	})
	if err != nil {
		t.Fatalf("wait for %s to join: %v", id, err)
	}
}

// countCertificates returns the number of certificates that the node lists
// in an organization, from the total_size of a one-entry page.
func countCertificates(ctx context.Context, conn *grpc.ClientConn, org string) (int, error) {
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := anchorv1.NewCertificatesClient(conn).ListCertificates(callCtx,
		&anchorv1.ListCertificatesRequest{Org: org, PageSize: 1})
	if err != nil {
		return 0, err
	}
	return int(resp.TotalSize), nil
}

func createOrganization(t *testing.T, ctx context.Context, a *adminClients, i int, name string) {
	t.Helper()
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := anchorv1.NewOrganizationsClient(a.conns[i]).CreateOrganization(callCtx,
		&anchorv1.CreateOrganizationRequest{Name: name})
	if err != nil {
		t.Fatalf("create organization %s through %s: %v", name, a.layout.Nodes[i].ID, err)
	}
}

// waitOrganization waits until node i lists the organization.
func waitOrganization(t *testing.T, ctx context.Context, a *adminClients, i int, name string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := localcluster.WaitFor(wctx, func() error {
		resp, err := anchorv1.NewOrganizationsClient(a.conns[i]).ListOrganizations(wctx,
			&anchorv1.ListOrganizationsRequest{})
		if err != nil {
			return err
		}
		for _, o := range resp.Organizations {
			if o.Name == name {
				return nil
			}
		}
		return fmt.Errorf("%s does not list organization %s", a.layout.Nodes[i].ID, name)
	})
	if err != nil {
		t.Fatalf("wait for organization: %v", err)
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
