package hsm

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// rawSession is a logged-in read-write session on the raw module handle, used for
// the calls crypto11 v1.2.5 lacks: C_WrapKey, C_UnwrapKey and C_CreateObject.
type rawSession struct {
	ctx    *pkcs11.Ctx
	handle pkcs11.SessionHandle
}

// sessionSetupError marks a failure to open or log in a raw session, before any
// object was touched, so the whole operation can be repeated.
type sessionSetupError struct{ err error }

func (e *sessionSetupError) Error() string { return "hsm: open pkcs11 session: " + e.err.Error() }
func (e *sessionSetupError) Unwrap() error { return e.err }

// withRawSession runs fn in a fresh raw session. Wrap, unwrap and key creation are
// rare, so a session per call is cheap and needs no repair after sessions are lost.
// When opening the session fails with a recoverable error, withRawSession reopens the
// token and tries once more. Errors from fn itself are returned as they are.
func (h *HSM) withRawSession(op string, fn func(rawSession) error) error {
	generation, err := h.runRawSession(fn)
	var setupErr *sessionSetupError
	if !errors.As(err, &setupErr) || !isRecoverable(err) {
		return err
	}

	h.logger.Warn("hsm open session failed, reopening token", "op", op, "err", err)
	if reopenErr := h.reopen(generation); reopenErr != nil {
		return fmt.Errorf("%w (reopen failed: %w)", err, reopenErr)
	}
	_, err = h.runRawSession(fn)
	return err
}

func (h *HSM) runRawSession(fn func(rawSession) error) (uint64, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()

	if h.closed {
		return 0, ErrClosed
	}
	session, err := h.openRawSession()
	if err != nil {
		return h.generation, &sessionSetupError{err}
	}
	defer func() {
		if err := h.raw.CloseSession(session.handle); err != nil {
			h.logger.Warn("hsm close session failed", "err", err)
		}
	}()
	return h.generation, fn(session)
}

// openRawSession opens a session on the token's current slot and logs in. A login that
// crypto11 already holds for this process is reported as CKR_USER_ALREADY_LOGGED_IN.
func (h *HSM) openRawSession() (rawSession, error) {
	slot, err := findSlot(h.raw, h.cfg.TokenLabel)
	if err != nil {
		return rawSession{}, err
	}
	handle, err := h.raw.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return rawSession{}, err
	}
	err = h.raw.Login(handle, pkcs11.CKU_USER, h.pin)
	if err != nil && !isPKCS11Error(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = h.raw.CloseSession(handle)
		return rawSession{}, fmt.Errorf("log in: %w", err)
	}
	return rawSession{ctx: h.raw, handle: handle}, nil
}

// findSlot returns the slot holding the token with the given label. Slot numbers can
// change when the module is reinitialised, so callers look the slot up for every session.
func findSlot(ctx *pkcs11.Ctx, label string) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, err
	}
	for _, slot := range slots {
		info, err := ctx.GetTokenInfo(slot)
		if err == nil && info.Label == label {
			return slot, nil
		}
	}
	return 0, pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT)
}

// findObjects returns the handles of all objects with the given class and CKA_ID.
func (s rawSession) findObjects(class uint, id string) ([]pkcs11.ObjectHandle, error) {
	template := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}
	if err := s.ctx.FindObjectsInit(s.handle, template); err != nil {
		return nil, fmt.Errorf("find objects with id %q: %w", id, err)
	}

	var handles []pkcs11.ObjectHandle
	for {
		batch, _, err := s.ctx.FindObjects(s.handle, 16)
		if err != nil {
			_ = s.ctx.FindObjectsFinal(s.handle)
			return nil, fmt.Errorf("find objects with id %q: %w", id, err)
		}
		if len(batch) == 0 {
			break
		}
		handles = append(handles, batch...)
	}
	if err := s.ctx.FindObjectsFinal(s.handle); err != nil {
		return nil, fmt.Errorf("find objects with id %q: %w", id, err)
	}
	return handles, nil
}

// findObject returns the only object with the given class and CKA_ID, or found=false.
func (s rawSession) findObject(class uint, id string) (pkcs11.ObjectHandle, bool, error) {
	handles, err := s.findObjects(class, id)
	switch {
	case err != nil:
		return 0, false, err
	case len(handles) == 0:
		return 0, false, nil
	case len(handles) > 1:
		return 0, false, fmt.Errorf("token contains %d objects of class %d with id %q, expected one",
			len(handles), class, id)
	}
	return handles[0], true, nil
}

// destroy deletes an object and logs a failure, for cleanup paths.
func (s rawSession) destroy(h *HSM, handle pkcs11.ObjectHandle, description string) {
	if err := s.ctx.DestroyObject(s.handle, handle); err != nil {
		h.logger.Warn("hsm destroy object failed", "object", description, "err", err)
	}
}
