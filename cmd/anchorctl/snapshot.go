package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
)

// snapshotChunkSize is the data size of the chunks that restore sends,
// well below gRPC's default message limit of 4 MiB.
const snapshotChunkSize = 256 << 10

func (a *app) snapshotSaveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "save FILE [--force]",
		Short: "Write a consistent copy of the replicated state to FILE (mode 0600)",
		Long: "Write a consistent copy of the replicated state to FILE. The copy contains every " +
			"write acknowledged before the call, EAB HMAC keys included, so the file is created " +
			"with mode 0600. CA private keys stay in the HSMs and are not in it.",
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if _, err := os.Lstat(args[0]); err == nil && !force {
				return usagef("%s exists: choose another file, or add --force to replace it", args[0])
			}
			resp, err := a.saveSnapshot(cmd, args[0])
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				t.field("saved", args[0])
				t.field("log index", fmt.Sprint(resp.Index))
				t.field("bytes", fmt.Sprint(resp.Size))
			})
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE when it exists")
	return cmd
}

// saveSnapshot streams the snapshot into a temporary file beside path and
// renames it into place once the last chunk confirmed the size.
func (a *app) saveSnapshot(cmd *cobra.Command, path string) (*anchorv1.SnapshotChunk, error) {
	ctx, cancel := a.callContext(cmd)
	defer cancel()
	stream, err := a.api.cluster.SaveSnapshot(ctx, &anchorv1.SaveSnapshotRequest{})
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, usagef("create snapshot file: %v", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bar := a.newProgress("saving snapshot", 0, true)
	last, err := receiveChunks(stream, tmp, bar)
	bar.finish()
	if err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write snapshot file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("write snapshot file: %w", err)
	}
	return last, nil
}

// receiveChunks writes the data chunks to w and returns the last chunk,
// which carries the log index and the total size.
func receiveChunks(stream grpc.ServerStreamingClient[anchorv1.SnapshotChunk], w io.Writer,
	bar *progress) (*anchorv1.SnapshotChunk, error) {
	var written uint64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("snapshot stream ended without its final chunk")
		}
		if err != nil {
			return nil, err
		}
		if len(chunk.Data) == 0 {
			if chunk.Size != written {
				return nil, fmt.Errorf("snapshot stream ended after %d bytes, but its final chunk "+
					"gives a size of %d", written, chunk.Size)
			}
			return chunk, nil
		}
		if _, err := w.Write(chunk.Data); err != nil {
			return nil, fmt.Errorf("write snapshot file: %w", err)
		}
		written += uint64(len(chunk.Data))
		bar.add(int64(len(chunk.Data)))
	}
}

func (a *app) snapshotRestoreCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore FILE --yes",
		Short: "Replace the replicated state of the whole cluster with a saved snapshot",
		Long: "Replace the replicated state of the whole cluster with a snapshot from " +
			"'snapshot save'. The file is sent to the leader, which applies it and sends it to " +
			"the other members. Every write after the snapshot is lost, so --yes is required.",
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usagef("restore replaces the state of the whole cluster: add --yes to confirm")
			}
			resp, err := a.restoreSnapshot(cmd, args[0])
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				t.field("restored", args[0])
				t.field("log index", fmt.Sprint(resp.Index))
			})
		}),
	}

	cmd.Flags().BoolVar(&yes, "yes", false, "confirm that the cluster's current state is replaced")
	return cmd
}

func (a *app) restoreSnapshot(cmd *cobra.Command,
	path string) (*anchorv1.RestoreSnapshotResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("open snapshot file: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, usagef("open snapshot file: %v", err)
	}
	// A node that lost leadership between the status call and the restore
	// rejects it with FailedPrecondition before it applies anything, so
	// the restore is sent again to the new leader.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		resp, err := a.restoreOnce(cmd, f, info.Size())
		if status.Code(err) != codes.FailedPrecondition || attempt == attempts {
			return resp, err
		}
		fmt.Fprintf(a.err, "restore: %v; sending it to the new leader\n", status.Convert(err).Message())
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("rewind snapshot file: %w", err)
		}
	}
}

// restoreOnce sends the snapshot in f to the leader that the target node
// reports.
func (a *app) restoreOnce(cmd *cobra.Command, f *os.File,
	size int64) (*anchorv1.RestoreSnapshotResponse, error) {
	client, err := a.leaderClusterClient(cmd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.callContext(cmd)
	defer cancel()
	stream, err := client.RestoreSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	bar := a.newProgress("restoring snapshot", size, true)
	err = sendChunks(stream, f, bar)
	bar.finish()
	if err != nil {
		return nil, err
	}
	return stream.CloseAndRecv()
}

// restoreStream is the client side of Cluster.RestoreSnapshot.
type restoreStream = grpc.ClientStreamingClient[anchorv1.SnapshotChunk,
	anchorv1.RestoreSnapshotResponse]

// sendChunks sends r in chunks. A failed send ends the loop quietly: the
// server's status then comes with CloseAndRecv.
func sendChunks(stream restoreStream, r io.Reader, bar *progress) error {
	buf := make([]byte, snapshotChunkSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&anchorv1.SnapshotChunk{Data: buf[:n]}); err != nil {
				return nil
			}
			bar.add(int64(n))
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read snapshot file: %w", err)
		}
	}
}

// leaderClusterClient returns a Cluster client for the leader, which alone
// restores snapshots: the target node when it leads, else a connection to
// the leader's gRPC address that the target node reports.
func (a *app) leaderClusterClient(cmd *cobra.Command) (anchorv1.ClusterClient, error) {
	st, err := unary(a, cmd, a.api.cluster.Status, &anchorv1.StatusRequest{})
	if err != nil {
		return nil, err
	}
	if st.LeaderId == "" {
		return nil, fmt.Errorf("node %s knows no leader: a majority of voters must be running",
			st.NodeId)
	}
	if st.LeaderId == st.NodeId {
		return a.api.cluster, nil
	}
	for _, m := range st.Members {
		if m.Id == st.LeaderId && m.GrpcAddress != "" {
			return a.dialMember(m.GrpcAddress)
		}
	}
	return nil, fmt.Errorf("node %s does not know the gRPC address of leader %s",
		st.NodeId, st.LeaderId)
}

// dialMember connects to another node with the same admin credentials.
func (a *app) dialMember(addr string) (anchorv1.ClusterClient, error) {
	t, err := a.resolveTarget()
	if err != nil {
		return nil, err
	}
	conn, err := dial(addr, t.tls)
	if err != nil {
		return nil, err
	}
	a.extraConns = append(a.extraConns, conn)
	return anchorv1.NewClusterClient(conn), nil
}
