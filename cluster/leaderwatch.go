package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// leaderWatch notifies waiting writers when Raft names another leader, or
// none, so that a write retries as soon as an election ends instead of at
// its next backoff step. The zero value is ready to use.
type leaderWatch struct {
	mu sync.Mutex
	ch chan struct{} // closed by the next change
}

// next returns a channel that is closed at the first change after the call.
// Take it before looking at the leader, so that no change in between is
// missed.
func (w *leaderWatch) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// changed wakes everyone holding a channel from next.
func (w *leaderWatch) changed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
	}
	w.ch = make(chan struct{})
}

// observe registers an observer of leader changes on r and reports them
// until stop is closed. It registers before it returns, so that only the
// changes between the start of r and the call go unreported.
func (w *leaderWatch) observe(r *raft.Raft, stop <-chan struct{}) {
	// Raft drops an observation when the channel is full. One buffered
	// observation is enough, because each one only means "look again".
	observations := make(chan raft.Observation, 1)
	observer := raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(observer)
	go func() {
		defer r.DeregisterObserver(observer)
		for {
			select {
			case <-stop:
				return
			case <-observations:
				w.changed()
			}
		}
	}()
}
