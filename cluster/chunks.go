package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"

	anchorv1 "anchor/api/anchorv1"
)

const snapshotChunkSize = 256 << 10

// chunkWriter turns a byte stream into SnapshotChunk messages.
type chunkWriter struct {
	send func(*anchorv1.SnapshotChunk) error
	buf  []byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for len(w.buf) >= snapshotChunkSize {
		if err := w.send(&anchorv1.SnapshotChunk{Data: w.buf[:snapshotChunkSize]}); err != nil {
			return 0, err
		}
		w.buf = append([]byte(nil), w.buf[snapshotChunkSize:]...)
	}
	return len(p), nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(&anchorv1.SnapshotChunk{Data: w.buf})
	w.buf = nil
	return err
}

// receiveSnapshot spools a snapshot stream to a temporary file, because
// Raft's restore needs the size up front, and returns it positioned at 0.
func receiveSnapshot(stream interface {
	Recv() (*anchorv1.SnapshotChunk, error)
}) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "anchor-restore-*.db")
	if err != nil {
		return nil, 0, fmt.Errorf("create temporary snapshot file: %w", err)
	}
	var size int64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			removeTemp(f)
			return nil, 0, err
		}
		n, err := f.Write(chunk.Data)
		if err != nil {
			removeTemp(f)
			return nil, 0, fmt.Errorf("spool snapshot: %w", err)
		}
		size += int64(n)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		removeTemp(f)
		return nil, 0, err
	}
	return f, size, nil
}

func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}
