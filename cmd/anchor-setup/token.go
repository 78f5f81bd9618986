package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/pkcs11"

	"anchor/hsm"
)

// Files in a node's token directory, laid out as package softhsmtest lays
// out the tokens of the local cluster.
const (
	softhsmConfName = "softhsm2.conf"
	tokensDirName   = "tokens"
	labelName       = "label"
	pinName         = "pin"
	soPINName       = "so-pin"
)

// openOrInitToken returns the HSM configuration of the token in dir and
// initializes the token first when dir has none. The label file is written
// last, so its presence means the token and both PIN files exist.
func openOrInitToken(dir, module, label string, out io.Writer) (hsm.Config, error) {
	cfg := hsm.Config{ModulePath: module, TokenLabel: label, PINFile: filepath.Join(dir, pinName)}
	data, err := os.ReadFile(filepath.Join(dir, labelName))
	if err == nil {
		if got := strings.TrimSpace(string(data)); got != label {
			return hsm.Config{}, fmt.Errorf("token in %s has label %q, not %q: "+
				"the volume belongs to another node", dir, got, label)
		}
		return cfg, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return hsm.Config{}, fmt.Errorf("read token label: %w", err)
	}
	if err := initTokenDir(dir, module, label); err != nil {
		return hsm.Config{}, err
	}
	fmt.Fprintf(out, "initialized SoftHSM2 token %q in %s\n", label, filepath.Join(dir, tokensDirName))
	return cfg, nil
}

// initTokenDir writes softhsm2.conf, initializes a token with fresh random
// PINs and stores the PINs in files of mode 0600.
func initTokenDir(dir, module, label string) error {
	confPath := filepath.Join(dir, softhsmConfName)
	if env := os.Getenv("SOFTHSM2_CONF"); env != confPath {
		return fmt.Errorf("SOFTHSM2_CONF is %q: set it to %s, which anchor-node must use too",
			env, confPath)
	}

	tokens := filepath.Join(dir, tokensDirName)
	if entries, err := os.ReadDir(tokens); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s contains a token but %s has no label file: an earlier "+
			"initialization was interrupted; remove the volume and start again", tokens, dir)
	}
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return fmt.Errorf("create token directory: %w", err)
	}
	conf := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = INFO\n"
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", confPath, err)
	}

	pin, err := randomPIN()
	if err != nil {
		return err
	}
	soPIN, err := randomPIN()
	if err != nil {
		return err
	}
	if err := initToken(module, label, soPIN, pin); err != nil {
		return err
	}

	for name, secret := range map[string]string{pinName: pin, soPINName: soPIN} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("write %s file: %w", name, err)
		}
	}
	return os.WriteFile(filepath.Join(dir, labelName), []byte(label+"\n"), 0o600)
}

// randomPIN returns 128 random bits in hex.
func randomPIN() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate PIN: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// initToken initializes the first uninitialized token of the module and
// sets its user PIN through PKCS#11, so that no PIN appears in a process's
// arguments (softhsm2-util 2.6.1 reads PINs from its arguments or a terminal).
func initToken(module, label, soPIN, pin string) error {
	p := pkcs11.New(module)
	if p == nil {
		return fmt.Errorf("load PKCS#11 module %s failed", module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		return fmt.Errorf("initialize PKCS#11 module %s: %w", module, err)
	}
	defer p.Finalize()

	slot, err := findSlot(p, func(ti pkcs11.TokenInfo) bool {
		return ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0
	})
	if err != nil {
		return err
	}
	if err := p.InitToken(slot, soPIN, label); err != nil {
		return fmt.Errorf("initialize token %q in slot %d: %w", label, slot, err)
	}
	// SoftHSM2 moves an initialized token to a new slot ID: find it again.
	slot, err = findSlot(p, func(ti pkcs11.TokenInfo) bool { return ti.Label == label })
	if err != nil {
		return err
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session on token %q: %w", label, err)
	}
	defer p.CloseSession(s)
	if err := p.Login(s, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("log in to token %q as security officer: %w", label, err)
	}
	if err := p.InitPIN(s, pin); err != nil {
		return fmt.Errorf("set user PIN of token %q: %w", label, err)
	}
	return p.Logout(s)
}

// findSlot returns the first slot with a token that match accepts.
func findSlot(p *pkcs11.Ctx, match func(pkcs11.TokenInfo) bool) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list PKCS#11 slots: %w", err)
	}
	for _, slot := range slots {
		ti, err := p.GetTokenInfo(slot)
		if err != nil {
			return 0, fmt.Errorf("read token info of slot %d: %w", slot, err)
		}
		if match(ti) {
			return slot, nil
		}
	}
	return 0, fmt.Errorf("no matching token among %d PKCS#11 slots", len(slots))
}
