package report

import (
	"slices"

	"anchor/bench/result"
)

// Cases are the medians of a results file, with lookups.
type Cases []result.Case

// Get returns the case or nil.
func (cs Cases) Get(bench, target, name string, conc int) *result.Case {
	for i := range cs {
		c := &cs[i]
		if c.Bench == bench && c.Target == target && c.Case == name && c.Conc == conc {
			return c
		}
	}
	return nil
}

// Rate returns the median rate of a case, 0 when it was not measured.
func (cs Cases) Rate(bench, target, name string, conc int) float64 {
	if c := cs.Get(bench, target, name, conc); c != nil {
		return c.Rate
	}
	return 0
}

// Best returns the case of bench, target and name with the highest rate
// over all concurrencies, or nil.
func (cs Cases) Best(bench, target, name string) *result.Case {
	var best *result.Case
	for i := range cs {
		c := &cs[i]
		if c.Bench == bench && c.Target == target && c.Case == name && (best == nil || c.Rate > best.Rate) {
			best = c
		}
	}
	return best
}

// Concs returns the sorted concurrencies measured for bench.
func (cs Cases) Concs(bench string) []int {
	var out []int
	for _, c := range cs {
		if c.Bench == bench && !slices.Contains(out, c.Conc) {
			out = append(out, c.Conc)
		}
	}
	slices.Sort(out)
	return out
}

// Filter returns the cases of bench.
func (cs Cases) Filter(bench string) Cases {
	var out Cases
	for _, c := range cs {
		if c.Bench == bench {
			out = append(out, c)
		}
	}
	return out
}
