package report

import (
	"fmt"
	"os"
	"strings"
)

// Region is a generated part of the page.
type Region struct {
	// Name is the marker name, such as "summary" or "ocsp".
	Name string
	// Heading is the section heading written above the markers when the
	// page has no such region yet. It is empty for the summary, which goes
	// under the page's introduction.
	Heading string
	Body    string
}

func beginMarker(name string) string { return "<!-- bench:begin " + name + " -->" }
func endMarker(name string) string   { return "<!-- bench:end " + name + " -->" }

// UpdateFile rewrites the regions of the page at path, reading it right
// before writing so that sections others added meanwhile stay.
func UpdateFile(path, title string, regions []Region) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	page, err := Update(string(old), title, regions)
	if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	return os.WriteFile(path, []byte(page), 0o644)
}

// Update replaces the body of each region in page. A region missing from
// the page is added: the summary before the first section, others at the
// end with their heading. An empty page starts with "# " and title.
func Update(page, title string, regions []Region) (string, error) {
	if strings.TrimSpace(page) == "" {
		page = "# " + title + "\n"
	}
	for _, r := range regions {
		begin, end := beginMarker(r.Name), endMarker(r.Name)
		block := begin + "\n" + strings.TrimSpace(r.Body) + "\n" + end
		i := strings.Index(page, begin)
		if i < 0 {
			page = insert(page, r, block)
			continue
		}
		j := strings.Index(page[i:], end)
		if j < 0 {
			return "", fmt.Errorf("marker %q has no %q after it", begin, end)
		}
		page = page[:i] + block + page[i+j+len(end):]
	}
	return page, nil
}

// insert adds a missing region: the summary before the first section
// heading, so under the title and its introduction, and others at the end
// under their heading.
func insert(page string, r Region, block string) string {
	if r.Heading == "" {
		i := strings.Index(page, "\n## ")
		if i < 0 {
			return strings.TrimRight(page, "\n") + "\n\n" + block + "\n"
		}
		return strings.TrimRight(page[:i], "\n") + "\n\n" + block + "\n" + page[i:]
	}
	return strings.TrimRight(page, "\n") + "\n\n## " + r.Heading + "\n\n" + block + "\n"
}
