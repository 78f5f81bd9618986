package report

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Meta describes the run: when, where, how and under what load.
type Meta struct {
	Date     string
	Machine  string
	Quick    bool
	Commands []string
	// Loads are the 1-minute load averages that run.sh logged, one line
	// per phase ("before acme: 0.52").
	Loads []string
	// Versions lists the peers and tools with their versions.
	Versions []string
}

// MachineInfo describes this machine from /proc: CPU model, logical CPUs,
// memory and kernel.
func MachineInfo() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := "unknown memory"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb float64
				fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
				mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d logical CPUs (nproc), %s memory, Linux %s, %s",
		model, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)), runtime.Version())
}

// ReadLines returns the non-empty lines of path, or nil if it is missing.
func ReadLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
