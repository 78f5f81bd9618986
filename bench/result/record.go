package result

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// Record is one run of one benchmark case against one target.
type Record struct {
	// Bench is the benchmark: acme, ocsp, raft, capath, failover or memory.
	Bench string `json:"bench"`
	// Target is the system measured, such as anchor-3 (three nodes),
	// pebble, openssl, cfssl or hashicorp-raft.
	Target string `json:"target"`
	// Case names the variant, such as "GET pre-signed".
	Case string `json:"case"`
	// Conc is the number of concurrent clients or connections.
	Conc int `json:"conc"`
	// Run numbers the repetitions of the same case, from 1.
	Run int `json:"run"`
	// Ops counts the operations that succeeded in the measured window.
	Ops int `json:"ops"`
	// Errors counts the operations that failed in the window.
	Errors int `json:"errors"`
	// Seconds is the length of the measured window.
	Seconds float64 `json:"seconds"`
	// Rate is Ops per second.
	Rate float64 `json:"rate"`
	// Latency summarizes the successful operations, in milliseconds.
	Latency Latency `json:"latency"`
	// Extra holds figures particular to a benchmark, such as bytes.
	Extra map[string]float64 `json:"extra,omitempty"`
}

// Key identifies the case of a record, the same for every run of it.
func (r *Record) Key() string {
	return fmt.Sprintf("%s|%s|%s|%d", r.Bench, r.Target, r.Case, r.Conc)
}

// Writer appends records to a JSON lines file. It is safe for concurrent
// use.
type Writer struct {
	mu   sync.Mutex
	path string
}

// NewWriter returns a Writer that appends to path, creating it if needed.
func NewWriter(path string) *Writer { return &Writer{path: path} }

// Write appends r and prints a one-line summary to stdout.
func (w *Writer) Write(r *Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", r.Key(), err)
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open results file: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write results file %s: %w", w.path, err)
	}
	fmt.Printf("%-8s %-15s %-24s c=%-4d run %d: %10.1f/s  p50 %8.3f ms  p99 %8.3f ms  errors %d\n",
		r.Bench, r.Target, r.Case, r.Conc, r.Run, r.Rate, r.Latency.P50, r.Latency.P99, r.Errors)
	return nil
}

// ReadFile reads every record of a JSON lines file.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
