package result

import (
	"testing"
	"time"
)

func TestMedians_OneCaseOfThreeRuns(t *testing.T) {
	var records []Record
	for i, rate := range []float64{30, 10, 20} {
		records = append(records, Record{Bench: "ocsp", Target: "anchor", Case: "GET", Conc: 16,
			Run: i + 1, Rate: rate, Latency: Latency{P99: rate / 10}})
	}
	records = append(records, Record{Bench: "ocsp", Target: "openssl", Case: "GET", Conc: 16, Run: 1, Rate: 5})
	cases := Medians(records)
	if len(cases) != 2 {
		t.Fatalf("got %d cases, want 2", len(cases))
	}
	c := cases[0]
	if c.Runs != 3 || c.Rate != 20 || c.Latency.P99 != 2 {
		t.Errorf("anchor case: %d runs, rate %v, p99 %v; want 3 runs, rate 20, p99 2", c.Runs, c.Rate, c.Latency.P99)
	}
	if c.RateMin != 10 || c.RateMax != 30 {
		t.Errorf("rate range %v to %v, want 10 to 30", c.RateMin, c.RateMax)
	}
}

func TestMedian_EvenCount(t *testing.T) {
	if got := Median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("Median = %v, want 2.5", got)
	}
}

func TestSummarize_NearestRank(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- {
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	l := Summarize(samples)
	if l.P50 != 50 || l.P99 != 99 || l.Max != 100 {
		t.Errorf("p50 %v, p99 %v, max %v; want 50, 99, 100", l.P50, l.P99, l.Max)
	}
}
