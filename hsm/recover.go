package hsm

import (
	"errors"
	"fmt"

	"github.com/ThalesIgnite/crypto11"
	"github.com/miekg/pkcs11"
)

// errModuleShared means that Refresh cannot reread the token, because another HSM in
// this process keeps the PKCS#11 module initialised.
var errModuleShared = errors.New("hsm: another HSM in this process uses the PKCS#11 module, " +
	"so reopening this one would not reread the token")

// errNoContext means an earlier reopen failed, so no crypto11 context is open.
var errNoContext = errors.New("hsm: token not open after a failed reopen")

// recoverableCodes are the PKCS#11 errors after which reopening the token can help:
// the sessions, the login or the token went away underneath the process. SoftHSM2
// 2.6.1 also invalidates object handles of private objects on logout, so a stale
// handle is recoverable too: the retry finds the key again.
var recoverableCodes = []uint{
	pkcs11.CKR_SESSION_HANDLE_INVALID,
	pkcs11.CKR_SESSION_CLOSED,
	pkcs11.CKR_USER_NOT_LOGGED_IN,
	pkcs11.CKR_DEVICE_REMOVED,
	pkcs11.CKR_TOKEN_NOT_PRESENT,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
	pkcs11.CKR_OBJECT_HANDLE_INVALID,
	pkcs11.CKR_KEY_HANDLE_INVALID,
}

func isRecoverable(err error) bool {
	return errors.Is(err, errNoContext) || isPKCS11Error(err, recoverableCodes...)
}

// withContext runs fn with the current crypto11 context. If fn fails with a
// recoverable error, withContext reopens the token and runs fn once more, so fn must
// be safe to repeat.
func (h *HSM) withContext(op, keyID string, fn func(*crypto11.Context) error) error {
	return h.withRecovery(op, keyID, func() (uint64, error) { return h.runWithContext(fn) })
}

// withPooledSession runs fn in a session from the raw session pool, with the same
// recovery as withContext.
func (h *HSM) withPooledSession(op, keyID string, fn func(rawSession) error) error {
	return h.withRecovery(op, keyID, func() (uint64, error) { return h.runPooled(fn) })
}

// withRecovery calls run, and when it fails with a recoverable error, reopens the token
// and calls run once more. run returns the context generation it used.
func (h *HSM) withRecovery(op, keyID string, run func() (uint64, error)) error {
	generation, err := run()
	if err == nil || !isRecoverable(err) {
		return err
	}

	h.logger.Warn("hsm pkcs11 call failed, reopening token",
		"op", op, "key_id", keyID, "err", err)
	if reopenErr := h.reopen(generation); reopenErr != nil {
		return fmt.Errorf("%w (reopen failed: %w)", err, reopenErr)
	}
	_, err = run()
	if err != nil {
		h.logger.Error("hsm pkcs11 call failed after reopen", "op", op, "key_id", keyID, "err", err)
	}
	return err
}

// runWithContext runs fn under the read lock and returns the context generation it used.
func (h *HSM) runWithContext(fn func(*crypto11.Context) error) (uint64, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()

	if h.closed {
		return 0, ErrClosed
	}
	if h.ctx == nil {
		return h.generation, errNoContext
	}
	return h.generation, fn(h.ctx)
}

// runPooled runs fn under the read lock in a pooled session and returns the context
// generation it used. A session whose call failed with a recoverable error is closed
// instead of returned to the pool.
func (h *HSM) runPooled(fn func(rawSession) error) (uint64, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()

	if h.closed {
		return 0, ErrClosed
	}
	if h.ctx == nil {
		return h.generation, errNoContext
	}
	session, err := h.pool.get(h)
	if err != nil {
		return h.generation, fmt.Errorf("hsm: open pkcs11 session: %w", err)
	}
	err = fn(session)
	h.pool.put(h, session, err == nil || !isRecoverable(err))
	return h.generation, err
}

// reopen replaces the crypto11 context: it closes the old one, which finalizes the
// module when no other context in the process uses it, then opens and logs in anew.
// failedGeneration is the generation whose call failed. If another goroutine has
// already reopened since, reopen does nothing.
//
// NOTE: when another HSM in the same process shares the module, closing this context
// does not call C_Finalize, so the module is not reinitialised. That is enough for lost
// sessions and logins, but a module that needs C_Initialize after CKR_DEVICE_REMOVED
// stays broken until every HSM on it is closed.
func (h *HSM) reopen(failedGeneration uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()

	if h.closed {
		return ErrClosed
	}
	if h.generation != failedGeneration && h.ctx != nil {
		return nil
	}

	h.generation++
	h.clearKeyCache()
	h.pool.drain(h)
	if h.ctx != nil {
		// The old sessions are usually gone already, so a failure here changes nothing.
		_ = h.closeContext(h.ctx)
		h.ctx = nil
	}

	ctx, err := h.configure()
	if err != nil {
		h.logger.Error("hsm reopen failed", "generation", h.generation, "err", err)
		return err
	}
	h.ctx = ctx
	h.logger.Info("hsm reopened", "generation", h.generation)
	return nil
}

// Refresh reopens the token so that keys another process has created on it since are
// found, such as the keys of a ceremony run beside the node.
//
// SoftHSM2 2.6.1 rereads a token's objects only when the token's generation counter on
// disk changed since the process last looked, and a write by this process adopts the
// counter on disk, so keys another process created during that write stay hidden.
// Reopening initialises the module again only when h is its only HSM in the process, as
// in anchor-node. With several (in tests), Refresh returns errModuleShared and leaves the
// token open as it is.
func (h *HSM) Refresh() error {
	moduleMu.Lock()
	shared := openContexts[h.cfg.ModulePath] > 1
	moduleMu.Unlock()
	if shared {
		return errModuleShared
	}
	h.mu.RLock()
	generation := h.generation
	h.mu.RUnlock()
	return h.reopen(generation)
}
