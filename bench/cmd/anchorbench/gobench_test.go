package main

import (
	"strings"
	"testing"
)

func TestParseGoBench_CRLLines(t *testing.T) {
	out := `goos: linux
BenchmarkCRLGeneration/sign/10000-2         	       1	  78000000 ns/op	    444000 bytes/crl	        39.0 cpu-ms/op
BenchmarkCRLGeneration/apply/10000-2        	       1	  50000000 ns/op	        22.0 cpu-ms/op
BenchmarkCRLGeneration/sign/10000-2         	       1	  80000000 ns/op	    444100 bytes/crl	        40.0 cpu-ms/op
PASS`
	recs, err := parseGoBench(strings.NewReader(out), "crl", "BenchmarkCRLGeneration/")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	r := recs[2]
	if r.Case != "sign/10000" || r.Run != 2 {
		t.Errorf("third record is %q run %d, want sign/10000 run 2", r.Case, r.Run)
	}
	if r.Latency.P50 != 80 || r.Extra["bytes"] != 444100 {
		t.Errorf("third record: %v ms, %v bytes; want 80 ms, 444100 bytes", r.Latency.P50, r.Extra["bytes"])
	}
}
