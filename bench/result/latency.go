package result

import (
	"slices"
	"time"
)

// CDFQuantiles are the quantiles kept in Latency.CDF, for plots.
var CDFQuantiles = []float64{0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95,
	0.99, 0.999}

// Latency summarizes a latency distribution in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	// CDF holds the latency at each of CDFQuantiles.
	CDF []float64 `json:"cdf,omitempty"`
}

// Summarize sorts samples in place and returns their quantiles. It returns
// the zero Latency for no samples.
func Summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	ms := func(q float64) float64 { return toMS(quantile(samples, q)) }
	l := Latency{P50: ms(0.5), P90: ms(0.9), P99: ms(0.99), P999: ms(0.999),
		Max: toMS(samples[len(samples)-1])}
	for _, q := range CDFQuantiles {
		l.CDF = append(l.CDF, ms(q))
	}
	return l
}

// quantile returns the nearest-rank quantile q of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func toMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
