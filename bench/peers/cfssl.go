package peers

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SignCFSSLResponses signs a good response for each of certs with
// `cfssl ocspsign` and writes them to dir/responses, whitespace-separated
// base64 as `cfssl ocspserve -responses` reads them.
func SignCFSSLResponses(ctx context.Context, bin, dir, issuerFile string,
	certs []*x509.Certificate, responder *KeyPair) (string, error) {
	var out strings.Builder
	leaf := filepath.Join(dir, "leaf.pem")
	for _, c := range certs {
		if err := WritePEM(leaf, "CERTIFICATE", c.Raw, 0o600); err != nil {
			return "", err
		}
		cmd := exec.CommandContext(ctx, bin, "ocspsign", "-ca", issuerFile,
			"-responder", responder.CertFile, "-responder-key", responder.KeyFile,
			"-cert", leaf, "-status", "good")
		data, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("cfssl ocspsign for serial %x: %w", c.SerialNumber, err)
		}
		var signed struct {
			Response string `json:"ocspResponse"`
		}
		if err := json.Unmarshal(data, &signed); err != nil || signed.Response == "" {
			return "", fmt.Errorf("cfssl ocspsign for serial %x printed %q", c.SerialNumber, data)
		}
		out.WriteString(signed.Response + "\n")
	}
	path := filepath.Join(dir, "responses")
	return path, os.WriteFile(path, []byte(out.String()), 0o600)
}

// StartCFSSL runs `cfssl ocspserve` on 127.0.0.1 with the responses file.
func StartCFSSL(ctx context.Context, bin, dir, responses string) (*OCSPServer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := Start("cfssl-ocspserve", filepath.Join(dir, "cfssl.log"), nil, bin, "ocspserve",
		"-address", "127.0.0.1", "-port", strconv.Itoa(port), "-responses", responses)
	if err != nil {
		return nil, err
	}
	addr := LoopbackAddr(port)
	if err := p.WaitAnswering(ctx, addr, 15*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return &OCSPServer{Process: p, Addr: addr, Prefix: "/"}, nil
}
