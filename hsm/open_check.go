package hsm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// Texts of crypto11 v1.2.5 errors that carry no PKCS#11 return value.
const (
	crypto11TokenNotFound = "could not find PKCS#11 token"
	crypto11LoadFailed    = "could not open PKCS#11"
)

// openError turns a crypto11.Configure or checkToken error into one that names the fix.
// The caller holds moduleMu.
func (h *HSM) openError(err error) error {
	label := h.cfg.TokenLabel
	switch {
	case isPKCS11Error(err, pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LEN_RANGE,
		pkcs11.CKR_PIN_INVALID):
		return fmt.Errorf("hsm: log in to token %q: the user PIN was rejected: check the PIN "+
			"in %s: %w", label, h.cfg.pinSource(), err)
	case isPKCS11Error(err, pkcs11.CKR_PIN_LOCKED):
		return fmt.Errorf("hsm: log in to token %q: the user PIN is locked: the security "+
			"officer must reset it: %w", label, err)
	case err.Error() == crypto11TokenNotFound:
		return fmt.Errorf("hsm: token %q (token_label) not found in module %s, tokens present: "+
			"%s: check token_label, and for SoftHSM2 also SOFTHSM2_CONF",
			label, h.cfg.ModulePath, h.tokenLabels())
	case err.Error() == crypto11LoadFailed:
		return fmt.Errorf("hsm: load PKCS#11 module %s (module_path) failed: check that it is "+
			"a PKCS#11 library for this architecture", h.cfg.ModulePath)
	default:
		return fmt.Errorf("hsm: open token %q in module %s: %w", label, h.cfg.ModulePath, err)
	}
}

// checkToken finds the token and tries the PIN on a raw handle of a module that another
// HSM in the process has initialised, so a wrong label or PIN returns an error without
// crypto11 finalizing the module. The caller holds moduleMu.
func (h *HSM) checkToken() error {
	raw := pkcs11.New(h.cfg.ModulePath)
	if raw == nil {
		return h.openError(errors.New(crypto11LoadFailed))
	}
	defer raw.Destroy()
	err := raw.Initialize()
	if err == nil {
		// Nothing had initialised the module after all, so crypto11 will.
		return raw.Finalize()
	}
	if !isPKCS11Error(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return fmt.Errorf("hsm: initialize PKCS#11 module %s: %w", h.cfg.ModulePath, err)
	}

	slot, err := findSlot(raw, h.cfg.TokenLabel)
	if isPKCS11Error(err, pkcs11.CKR_TOKEN_NOT_PRESENT) {
		return h.openError(errors.New(crypto11TokenNotFound))
	}
	if err != nil {
		return fmt.Errorf("hsm: find token %q: %w", h.cfg.TokenLabel, err)
	}
	session, err := raw.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: open session on token %q: %w", h.cfg.TokenLabel, err)
	}
	defer func() { _ = raw.CloseSession(session) }()
	err = raw.Login(session, pkcs11.CKU_USER, h.pin)
	if err != nil && !isPKCS11Error(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return h.openError(err)
	}
	return nil
}

// tokenLabels lists the labels of the tokens the module shows, for error messages.
// It initialises the module only if nothing else has, and finalizes it again.
func (h *HSM) tokenLabels() string {
	raw := pkcs11.New(h.cfg.ModulePath)
	if raw == nil {
		return "unknown (module failed to load)"
	}
	defer raw.Destroy()

	err := raw.Initialize()
	switch {
	case err == nil:
		defer func() { _ = raw.Finalize() }()
	case !isPKCS11Error(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED):
		return fmt.Sprintf("unknown (%v)", err)
	}

	slots, err := raw.GetSlotList(true)
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	var labels []string
	for _, slot := range slots {
		info, err := raw.GetTokenInfo(slot)
		// SoftHSM2 always shows one uninitialised token, which has an empty label.
		if err == nil && info.Label != "" {
			labels = append(labels, fmt.Sprintf("%q", info.Label))
		}
	}
	if len(labels) == 0 {
		return "none"
	}
	return strings.Join(labels, ", ")
}

// isPKCS11Error reports whether err wraps one of the PKCS#11 return values codes.
func isPKCS11Error(err error, codes ...uint) bool {
	var p11Err pkcs11.Error
	if !errors.As(err, &p11Err) {
		return false
	}
	for _, code := range codes {
		if uint(p11Err) == code {
			return true
		}
	}
	return false
}
