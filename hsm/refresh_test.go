package hsm_test

import (
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"anchor/hsm"
)

// generateEnv makes the test binary generate one key instead of running the tests, so
// that a test can write to a token from a second process. Its value is the JSON of a
// generateRequest.
const generateEnv = "ANCHOR_HSM_TEST_GENERATE"

type generateRequest struct {
	Config hsm.Config
	KeyID  string
}

func TestMain(m *testing.M) {
	if req := os.Getenv(generateEnv); req != "" {
		if err := generateInProcess(req); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func generateInProcess(encoded string) error {
	var req generateRequest
	if err := json.Unmarshal([]byte(encoded), &req); err != nil {
		return err
	}
	h, err := hsm.Open(req.Config, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer h.Close()
	_, err = h.GenerateKey(req.KeyID, hsm.ECDSAP256)
	return err
}

// TestRefresh_ShowsKeyOfAnotherProcess generates a key in a second process, as a key
// ceremony beside a running node does, while this process generates keys of its own.
// A key of this process that is being generated while the other process writes adopts
// that process's generation counter, and SoftHSM2 hides the other process's key from
// this one until Refresh.
func TestRefresh_ShowsKeyOfAnotherProcess(t *testing.T) {
	token := newToken(t, "refresh")
	h := openHSM(t, token, nil)
	if h.HasKey("ca-other") {
		t.Fatal("HasKey(ca-other) = true before the key exists")
	}

	req, err := json.Marshal(generateRequest{Config: token.HSMConfig(), KeyID: "ca-other"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(token.Environ(), generateEnv+"="+string(req))
	other := make(chan error, 1)
	go func() {
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		other <- err
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the second process has not finished after 2 minutes")
		}
		if _, err := h.GenerateKey(fmt.Sprintf("ca-own-%d", i), hsm.RSA2048); err != nil {
			t.Fatalf("GenerateKey: %v", err)
		}
		select {
		case err = <-other:
		default:
			continue
		}
		break
	}
	if err != nil {
		t.Fatalf("generate in a second process: %v", err)
	}
	if h.HasKey("ca-other") {
		t.Fatal("this SoftHSM2 shows the other process's key without Refresh; " +
			"the test no longer exercises Refresh")
	}

	if err := h.Refresh(); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	for _, id := range []string{"ca-other", "ca-own-0"} {
		signer, err := h.Signer(id)
		if err != nil {
			t.Fatalf("Signer(%s) after Refresh: %v", id, err)
		}
		digest := make([]byte, 32)
		if _, err := signer.Sign(nil, digest, crypto.SHA256); err != nil {
			t.Errorf("sign with %s after Refresh: %v", id, err)
		}
	}
}
