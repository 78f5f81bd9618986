package api

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// protocVersionLine is the header line in which protoc-gen-go records the
// protoc version, the one part of the output that depends on the machine.
var protocVersionLine = regexp.MustCompile(`(?m)^// \tprotoc +v.*\n`)

// TestGeneratedCode_UpToDate regenerates api/anchorv1 from api/proto with
// protoc and the plugins pinned in go.mod, as `make proto` does, and
// compares the result with the committed files.
func TestGeneratedCode_UpToDate(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatalf("protoc not found (scripts/install-deps.sh installs it): %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", plugins+string(filepath.Separator),
		"google.golang.org/protobuf/cmd/protoc-gen-go", "google.golang.org/grpc/cmd/protoc-gen-go-grpc")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build protoc plugins pinned in go.mod: %v\n%s", err, out)
	}
	out := t.TempDir()
	protos, err := filepath.Glob(filepath.Join(root, "api/proto/anchor/v1/*.proto"))
	if err != nil || len(protos) == 0 {
		t.Fatalf("no .proto files under api/proto: %v", err)
	}
	args := []string{
		"-I", filepath.Join(root, "api/proto"),
		"--plugin=protoc-gen-go=" + filepath.Join(plugins, "protoc-gen-go"),
		"--plugin=protoc-gen-go-grpc=" + filepath.Join(plugins, "protoc-gen-go-grpc"),
		"--go_out=" + out, "--go_opt=module=anchor",
		"--go-grpc_out=" + out, "--go-grpc_opt=module=anchor",
	}
	gen := exec.Command(protoc, append(args, protos...)...)
	if msg, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, msg)
	}
	compareGenerated(t, filepath.Join(out, "api/anchorv1"), filepath.Join(root, "api/anchorv1"))
}

// compareGenerated checks that both directories hold the same files with
// the same bytes. When the installed protoc differs from the one that
// generated the committed files, the header line naming it is left out of
// the comparison and the difference is logged.
func compareGenerated(t *testing.T, fresh, committed string) {
	t.Helper()
	freshNames := goFiles(t, fresh)
	committedNames := goFiles(t, committed)
	if !slices.Equal(freshNames, committedNames) {
		t.Fatalf("api/anchorv1 holds %v, but the .proto files generate %v: run make proto",
			committedNames, freshNames)
	}
	for _, name := range freshNames {
		want := readFile(t, filepath.Join(fresh, name))
		got := readFile(t, filepath.Join(committed, name))
		if bytes.Equal(got, want) {
			continue
		}
		wantVersion := protocVersionLine.Find(want)
		gotVersion := protocVersionLine.Find(got)
		if !bytes.Equal(wantVersion, gotVersion) &&
			bytes.Equal(protocVersionLine.ReplaceAll(got, nil), protocVersionLine.ReplaceAll(want, nil)) {
			t.Logf("%s: generated with %q, protoc here is %q; the rest is identical",
				name, bytes.TrimSpace(gotVersion), bytes.TrimSpace(wantVersion))
			continue
		}
		t.Errorf("api/anchorv1/%s is stale: run make proto and commit the result", name)
	}
}

func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, filepath.Base(m))
	}
	slices.Sort(names)
	return names
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
