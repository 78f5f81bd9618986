package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// count formats v with thousands separators and no decimals, or one
// decimal below 100.
func count(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// millis formats a duration in milliseconds with three significant digits.
func millis(ms float64) string {
	switch {
	case ms < 0:
		return "none"
	case ms < 1:
		return fmt.Sprintf("%.3f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.2f s", ms/1000)
	}
}

// ratio formats a/b as "2.3×", or "n/a" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// bytesSize formats a byte count in MiB or GiB.
func bytesSize(b float64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

// verdict compares a measured value with a target in the direction that
// higherIsBetter gives, and returns by how much a miss falls short.
func verdict(measured, target float64, higherIsBetter bool) string {
	if measured <= 0 && higherIsBetter {
		return "not measured"
	}
	met := measured >= target
	if !higherIsBetter {
		met = measured <= target
	}
	if met {
		return "met"
	}
	return fmt.Sprintf("missed by %.0f%%", math.Abs(measured-target)/target*100)
}

// table renders a Markdown table.
func table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteByte('\n')
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}
