package report

import (
	"strings"
	"testing"
)

func TestUpdate_KeepsOtherSections(t *testing.T) {
	page := "# Benchmarks\n\n" + beginMarker("summary") + "\nold\n" + endMarker("summary") +
		"\n\n## HSM signing\n\nhand-written\n\n## OCSP\n\n" + beginMarker("ocsp") +
		"\nold table\n" + endMarker("ocsp") + "\n\nnotes under the table\n"
	got, err := Update(page, "Benchmarks", []Region{
		{Name: "summary", Body: "new summary"},
		{Name: "ocsp", Heading: "OCSP", Body: "new table"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"new summary", "new table", "## HSM signing\n\nhand-written",
		"notes under the table"} {
		if !strings.Contains(got, want) {
			t.Errorf("updated page lacks %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"old\n", "old table"} {
		if strings.Contains(got, gone) {
			t.Errorf("updated page still has %q:\n%s", gone, got)
		}
	}
}

func TestUpdate_AddsMissingRegions(t *testing.T) {
	got, err := Update("# Benchmarks\n\nIntroduction.\n\n## CRL generation\n\ntheirs\n", "Benchmarks", []Region{
		{Name: "summary", Body: "S"},
		{Name: "raft", Heading: "Raft commit", Body: "R"},
	})
	if err != nil {
		t.Fatal(err)
	}
	intro := strings.Index(got, "Introduction.")
	summary := strings.Index(got, beginMarker("summary"))
	crl := strings.Index(got, "## CRL generation")
	raft := strings.Index(got, "## Raft commit")
	if intro < 0 || summary < 0 || crl < 0 || raft < 0 || !(intro < summary && summary < crl && crl < raft) {
		t.Errorf("want introduction, summary, the CRL section, then the new Raft section:\n%s", got)
	}
}

func TestUpdate_UnclosedMarker(t *testing.T) {
	_, err := Update("# B\n"+beginMarker("ocsp")+"\n", "B", []Region{{Name: "ocsp", Body: "x"}})
	if err == nil {
		t.Fatal("Update accepted a begin marker without an end marker")
	}
}
