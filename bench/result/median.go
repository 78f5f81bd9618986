package result

import (
	"slices"
)

// Case is the median over the runs of one benchmark case.
type Case struct {
	Bench, Target, Case string
	Conc                int
	Runs                int
	// Rate, Errors and Latency are medians over the runs, each taken on
	// its own, so Latency.P99 is the median of the runs' p99 values.
	Rate    float64
	Errors  float64
	Latency Latency
	Extra   map[string]float64
	// RateMin and RateMax are the lowest and highest rate of a run.
	RateMin, RateMax float64
}

// Medians groups records by Key and reduces each group to its medians, in
// the order in which each case first appears.
func Medians(records []Record) []Case {
	var order []string
	groups := map[string][]Record{}
	for _, r := range records {
		k := r.Key()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Case, 0, len(order))
	for _, k := range order {
		out = append(out, reduce(groups[k]))
	}
	return out
}

func reduce(runs []Record) Case {
	first := runs[0]
	c := Case{Bench: first.Bench, Target: first.Target, Case: first.Case, Conc: first.Conc,
		Runs: len(runs), Extra: map[string]float64{}}
	field := func(get func(r *Record) float64) float64 {
		vals := make([]float64, len(runs))
		for i := range runs {
			vals[i] = get(&runs[i])
		}
		return Median(vals)
	}
	c.Rate = field(func(r *Record) float64 { return r.Rate })
	c.Errors = field(func(r *Record) float64 { return float64(r.Errors) })
	c.Latency = Latency{
		P50:  field(func(r *Record) float64 { return r.Latency.P50 }),
		P90:  field(func(r *Record) float64 { return r.Latency.P90 }),
		P99:  field(func(r *Record) float64 { return r.Latency.P99 }),
		P999: field(func(r *Record) float64 { return r.Latency.P999 }),
		Max:  field(func(r *Record) float64 { return r.Latency.Max }),
	}
	for i := range first.Latency.CDF {
		c.Latency.CDF = append(c.Latency.CDF, field(func(r *Record) float64 {
			if i < len(r.Latency.CDF) {
				return r.Latency.CDF[i]
			}
			return 0
		}))
	}
	for name := range first.Extra {
		c.Extra[name] = field(func(r *Record) float64 { return r.Extra[name] })
	}
	c.RateMin, c.RateMax = first.Rate, first.Rate
	for _, r := range runs {
		c.RateMin, c.RateMax = min(c.RateMin, r.Rate), max(c.RateMax, r.Rate)
	}
	return c
}

// Median returns the median of vals, the mean of the middle two for an
// even count, and 0 for none. It does not modify vals.
func Median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
