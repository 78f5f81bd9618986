package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"anchor/hsm"
)

// ConfigEnv is the environment variable from which SoftHSM2 reads its configuration file.
const ConfigEnv = "SOFTHSM2_CONF"

// File names inside a token directory.
const (
	configFile = "softhsm2.conf"
	tokensDir  = "tokens"
	labelFile  = "label"
	pinFile    = "pin"
	soPINFile  = "so-pin"
)

// labelPattern limits labels to what fits the 32-byte CK_TOKEN_INFO label field and
// is safe as a directory name for AddToken.
var labelPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// Token is an initialised SoftHSM2 token and the files that describe it.
type Token struct {
	// Dir contains the label, pin, so-pin and softhsm2.conf files of this token.
	Dir string
	// ConfigPath is the softhsm2.conf to put in SOFTHSM2_CONF.
	ConfigPath string
	// TokenDir is the SoftHSM2 token storage directory named by ConfigPath.
	TokenDir string
	// Label is the token label (CKA_LABEL of the token, hsm.Config.TokenLabel).
	Label string
	// PIN is the user PIN. It is also stored in Dir/pin.
	PIN string
	// ModulePath is the SoftHSM2 PKCS#11 module.
	ModulePath string
}

// NewToken creates dir (if needed), writes dir/softhsm2.conf with its own token
// storage in dir/tokens, and initialises a token with the given label and random
// user and SO PINs. The PINs are written to dir/pin and dir/so-pin with mode 0600.
func NewToken(dir, label string) (*Token, error) {
	if !labelPattern.MatchString(label) {
		return nil, invalidLabelError(label)
	}
	tokenDir := filepath.Join(dir, tokensDir)
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		return nil, fmt.Errorf("create token directory: %w", err)
	}
	configPath := filepath.Join(dir, configFile)
	if err := writeConfig(configPath, tokenDir); err != nil {
		return nil, err
	}
	return initToken(dir, configPath, tokenDir, label)
}

// AddToken initialises another token in the token storage of t and stores its files
// in t.Dir/label. The new token's softhsm2.conf names the same token directory, so
// with SOFTHSM2_CONF set to either ConfigPath one process can use both tokens.
func (t *Token) AddToken(label string) (*Token, error) {
	if !labelPattern.MatchString(label) {
		return nil, invalidLabelError(label)
	}
	if label == t.Label {
		return nil, fmt.Errorf("token label %q is already used by %s", label, t.Dir)
	}

	dir := filepath.Join(t.Dir, label)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create directory for token %q: %w", label, err)
	}
	configPath := filepath.Join(dir, configFile)
	if err := writeConfig(configPath, t.TokenDir); err != nil {
		return nil, err
	}
	return initToken(dir, configPath, t.TokenDir, label)
}

// OpenToken loads a token that NewToken or AddToken created in dir earlier, so a
// local run can reuse its tokens and keys across restarts.
func OpenToken(dir string) (*Token, error) {
	module, err := ModulePath()
	if err != nil {
		return nil, err
	}
	label, err := readTrimmed(filepath.Join(dir, labelFile))
	if err != nil {
		return nil, err
	}
	pin, err := readTrimmed(filepath.Join(dir, pinFile))
	if err != nil {
		return nil, err
	}

	configPath := filepath.Join(dir, configFile)
	tokenDir, err := readTokenDir(configPath)
	if err != nil {
		return nil, err
	}
	return &Token{
		Dir:        dir,
		ConfigPath: configPath,
		TokenDir:   tokenDir,
		Label:      label,
		PIN:        pin,
		ModulePath: module,
	}, nil
}

// HSMConfig returns an hsm.Config that opens this token, reading the PIN from Dir/pin.
// The caller must still set SOFTHSM2_CONF to ConfigPath in the process that opens it.
func (t *Token) HSMConfig() hsm.Config {
	return hsm.Config{
		ModulePath: t.ModulePath,
		TokenLabel: t.Label,
		PINFile:    filepath.Join(t.Dir, pinFile),
	}
}

// Environ returns the current environment with SOFTHSM2_CONF set to ConfigPath,
// for exec.Cmd.Env of a process that opens this token.
func (t *Token) Environ() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, ConfigEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(env, ConfigEnv+"="+t.ConfigPath)
}

// initToken runs softhsm2-util --init-token on the first free slot and writes the
// label and PIN files into dir.
func initToken(dir, configPath, tokenDir, label string) (*Token, error) {
	module, err := ModulePath()
	if err != nil {
		return nil, err
	}
	pin, err := randomPIN()
	if err != nil {
		return nil, err
	}
	soPIN, err := randomPIN()
	if err != nil {
		return nil, err
	}

	token := &Token{
		Dir:        dir,
		ConfigPath: configPath,
		TokenDir:   tokenDir,
		Label:      label,
		PIN:        pin,
		ModulePath: module,
	}
	if err := runInitToken(token, soPIN); err != nil {
		return nil, err
	}
	if err := writeSecret(filepath.Join(dir, pinFile), pin); err != nil {
		return nil, err
	}
	if err := writeSecret(filepath.Join(dir, soPINFile), soPIN); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, labelFile), []byte(label+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write token label file: %w", err)
	}
	return token, nil
}

// runInitToken runs softhsm2-util with SOFTHSM2_CONF set in the child's environment only.
//
// NOTE: softhsm2-util 2.6.1 takes the PINs as arguments, so other local users can see
// them in the process list while it runs. Use these tokens only for tests and local runs.
func runInitToken(t *Token, soPIN string) error {
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return fmt.Errorf("softhsm2-util not found in PATH: install the softhsm2 package: %w", err)
	}
	cmd := exec.Command(util, "--init-token", "--free",
		"--label", t.Label, "--pin", t.PIN, "--so-pin", soPIN)
	cmd.Env = t.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("softhsm2-util --init-token --label %s with %s=%s failed: %w: %s",
			t.Label, ConfigEnv, t.ConfigPath, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func writeConfig(path, tokenDir string) error {
	content := "# Written by anchor/softhsm-test.\n" +
		"directories.tokendir = " + tokenDir + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write softhsm2 configuration: %w", err)
	}
	return nil
}

// readTokenDir returns the directories.tokendir value of a softhsm2.conf.
func readTokenDir(configPath string) (string, error) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return "", fmt.Errorf("read softhsm2 configuration: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		key, value, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(key) == "directories.tokendir" {
			return strings.TrimSpace(value), nil
		}
	}
	return "", fmt.Errorf("%s has no directories.tokendir entry", configPath)
}

func randomPIN() (string, error) {
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate PIN: %w", err)
	}
	return hex.EncodeToString(buf), nil
}

func writeSecret(path, secret string) error {
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func readTrimmed(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s not found: create the token with softhsmtest.NewToken first", path)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(data)), nil
}

func invalidLabelError(label string) error {
	return fmt.Errorf("invalid token label %q: use 1 to 32 characters from A-Z a-z 0-9 . _ -",
		label)
}
