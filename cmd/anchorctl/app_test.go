package main

import (
	"strings"
	"testing"
)

func TestDoubleDashFlags_RewritesLongFlagsOnly(t *testing.T) {
	got := doubleDashFlags([]string{"-addr", "h:1", "-output=json", "-o", "table", "--timeout", "1s",
		"cert", "revoke", "-h", "--", "-keep"})
	want := []string{"--addr", "h:1", "--output=json", "-o", "table", "--timeout", "1s",
		"cert", "revoke", "-h", "--", "-keep"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", got, want)
	}
}
