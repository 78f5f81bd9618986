package hsm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// DefaultMaxSessions is the session limit used when Config.MaxSessions is zero.
const DefaultMaxSessions = 16

// Config selects a PKCS#11 token and the source of its user PIN. The PIN is read
// from a file or an environment variable, never from the configuration itself.
type Config struct {
	// ModulePath is the path of the PKCS#11 library, for example
	// /usr/lib/softhsm/libsofthsm2.so. Required.
	ModulePath string `json:"module_path"`
	// TokenLabel is the label of the token (CK_TOKEN_INFO.label). Required.
	TokenLabel string `json:"token_label"`
	// PINFile is a file containing the user PIN. Surrounding white space, such as a
	// final newline, is ignored. Exactly one of PINFile and PINEnv must be set.
	PINFile string `json:"pin_file"`
	// PINEnv is the name of an environment variable containing the user PIN.
	PINEnv string `json:"pin_env"`
	// MaxSessions bounds the PKCS#11 sessions this process opens on the token for
	// signing, and so the concurrent signatures. It applies to the pool for ECDSA and
	// Ed25519 keys and, separately, to crypto11's pool for RSA keys, one session of
	// which stays open to keep the login. Wrapping and key generation open one more
	// session per call. Zero means DefaultMaxSessions (16); otherwise at least 2.
	MaxSessions int `json:"max_sessions"`
	// Shared marks a token that every node of the cluster reaches, such as a network
	// HSM, with the same token_label on each node. CA keys are then never wrapped
	// between nodes: each node signs with the key the token already holds, and
	// TransportPublicKey, WrapKey and UnwrapKey return ErrShared. Default false: every
	// node has a token of its own and receives CA keys wrapped.
	Shared bool `json:"shared"`
}

// validate checks every field and fills in defaults.
func (c *Config) validate() error {
	if c.ModulePath == "" {
		return errors.New("hsm config: module_path is empty: set it to the PKCS#11 library")
	}
	if c.TokenLabel == "" {
		return errors.New("hsm config: token_label is empty: set it to the token's label")
	}
	if (c.PINFile == "") == (c.PINEnv == "") {
		return errors.New("hsm config: set exactly one of pin_file and pin_env")
	}
	switch {
	case c.MaxSessions == 0:
		c.MaxSessions = DefaultMaxSessions
	case c.MaxSessions < 2:
		return fmt.Errorf("hsm config: max_sessions is %d: use 0 for the default (%d) or at least 2",
			c.MaxSessions, DefaultMaxSessions)
	}
	return nil
}

// pinSource describes where the PIN comes from, for error messages.
func (c *Config) pinSource() string {
	if c.PINFile != "" {
		return fmt.Sprintf("pin_file %s", c.PINFile)
	}
	return fmt.Sprintf("environment variable %s (pin_env)", c.PINEnv)
}

// readPIN returns the user PIN from PINFile or PINEnv. It logs a warning when the
// PIN file can be read by group or others.
func (c *Config) readPIN(logger *slog.Logger) (string, error) {
	if c.PINEnv != "" {
		pin := strings.TrimSpace(os.Getenv(c.PINEnv))
		if pin == "" {
			return "", fmt.Errorf("hsm config: environment variable %s (pin_env) is unset or empty",
				c.PINEnv)
		}
		return pin, nil
	}

	info, err := os.Stat(c.PINFile)
	if err != nil {
		return "", fmt.Errorf("hsm config: read pin_file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		logger.Warn("hsm pin file is readable by group or others",
			"pin_file", c.PINFile, "mode", info.Mode().Perm().String())
	}
	data, err := os.ReadFile(c.PINFile)
	if err != nil {
		return "", fmt.Errorf("hsm config: read pin_file: %w", err)
	}
	pin := strings.TrimSpace(string(data))
	if pin == "" {
		return "", fmt.Errorf("hsm config: pin_file %s is empty", c.PINFile)
	}
	return pin, nil
}
