package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PebbleEnv turns off Pebble's test-only randomness (Pebble v2.10.3,
// wfe/wfe.go and va/va.go): no sleep before validation, no rejected good
// nonces, valid authorizations always reused, and every challenge valid
// without contacting the client.
var PebbleEnv = []string{
	"PEBBLE_VA_NOSLEEP=1",
	"PEBBLE_WFE_NONCEREJECT=0",
	"PEBBLE_AUTHZREUSE=100",
	"PEBBLE_VA_ALWAYS_VALID=1",
}

// Pebble is a running Pebble ACME server.
type Pebble struct {
	*Process
	// Directory is the ACME directory URL.
	Directory string
	// CACert is the PEM file of Pebble's self-signed HTTPS certificate.
	CACert string
}

type pebbleConfig struct {
	Pebble pebbleSettings `json:"pebble"`
}

type pebbleSettings struct {
	ListenAddress           string `json:"listenAddress"`
	ManagementListenAddress string `json:"managementListenAddress"`
	Certificate             string `json:"certificate"`
	PrivateKey              string `json:"privateKey"`
	HTTPPort                int    `json:"httpPort"`
	TLSPort                 int    `json:"tlsPort"`
	OCSPResponderURL        string `json:"ocspResponderURL"`
	EABRequired             bool   `json:"externalAccountBindingRequired"`
	RetryAfter              struct {
		Authz int `json:"authz"`
		Order int `json:"order"`
	} `json:"retryAfter"`
	KeyAlgorithm string `json:"keyAlgorithm"`
}

// StartPebble writes a configuration for 127.0.0.1 into dir and starts bin
// with PebbleEnv.
func StartPebble(ctx context.Context, bin, dir string) (*Pebble, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tlsPair, err := SelfSigned(dir, "pebble-https", []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	cfg := pebbleConfig{Pebble: pebbleSettings{
		ListenAddress:           LoopbackAddr(ports[0]),
		ManagementListenAddress: LoopbackAddr(ports[1]),
		Certificate:             tlsPair.CertFile, PrivateKey: tlsPair.KeyFile,
		// No validation connects with PEBBLE_VA_ALWAYS_VALID; these ports
		// are never dialed.
		HTTPPort: 5002, TLSPort: 5001,
		KeyAlgorithm: "ecdsa",
	}}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, err
	}
	p, err := Start("pebble", filepath.Join(dir, "pebble.log"), PebbleEnv, bin, "-config", cfgPath)
	if err != nil {
		return nil, err
	}
	if err := p.WaitListening(ctx, cfg.Pebble.ListenAddress, 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return &Pebble{Process: p, CACert: tlsPair.CertFile,
		Directory: fmt.Sprintf("https://%s/dir", cfg.Pebble.ListenAddress)}, nil
}
