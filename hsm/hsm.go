package hsm

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/ThalesIgnite/crypto11"
	"github.com/miekg/pkcs11"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrKeyNotFound means the token holds no key pair with the requested id.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrKeyExists means the token already holds a different key with the requested id.
	ErrKeyExists = errors.New("hsm: key id already in use")
	// ErrClosed means Close was called on the HSM.
	ErrClosed = errors.New("hsm: closed")
	// ErrKeyNotWrappable means the token refuses to wrap the key, as SoftHSM2 2.6.1
	// does for Ed25519 keys (CKR_KEY_NOT_WRAPPABLE). The key cannot leave the token.
	ErrKeyNotWrappable = errors.New("hsm: token cannot wrap this key")
	// ErrShared means the operation moves keys between tokens, which a shared token
	// (Config.Shared) never does.
	ErrShared = errors.New("hsm: not available on a shared token")
)

// moduleMu serialises crypto11.Configure, crypto11.Context.Close and the token checks
// in open_check.go. crypto11 calls C_Initialize and C_Finalize from those functions,
// and the checks may do the same, so they must not interleave between HSM values that
// share a module in one process. moduleMu also guards openContexts.
var moduleMu sync.Mutex

// objectWriteMu serialises, across the whole process, the PKCS#11 calls that create
// objects: key generation, unwrapping and wrapping, which creates session keys.
// SoftHSM2 fails such calls now and then with CKR_GENERAL_ERROR when threads of one
// process make them at the same time (SoftHSMv2 issue 573). A node creates objects
// rarely, so the lock costs it nothing measurable.
var objectWriteMu sync.Mutex

// openContexts counts the crypto11 contexts this package holds open per module path.
var openContexts = map[string]int{}

// HSM is one PKCS#11 token holding CA keys. All methods are safe for concurrent use.
type HSM struct {
	cfg    Config
	pin    string
	logger *slog.Logger

	// mu is held for reading by every PKCS#11 call, and for writing by reopen and
	// Close, which replace or close the contexts.
	mu         sync.RWMutex
	ctx        *crypto11.Context // nil after a failed reopen
	generation uint64            // counts reopen attempts
	raw        *pkcs11.Ctx       // for wrap, unwrap and object creation, never finalized
	closed     bool

	// pool holds raw sessions for ECDSA and Ed25519 signatures.
	pool *sessionPool

	// keysMu guards the key caches.
	keysMu  sync.Mutex
	keys    map[string]crypto11.Signer     // keys found through ctx, cleared by reopen
	handles map[string]pkcs11.ObjectHandle // pool-signed private keys, cleared by reopen
	signers map[string]crypto.Signer       // signers returned to callers

	// objectsMu serialises the creation and deletion of token objects, so that two
	// callers cannot create the same id, and guards transport.
	objectsMu sync.Mutex
	transport *rsa.PublicKey
}

// Open loads the PKCS#11 module, finds the token by label and logs in. A nil logger
// means slog.Default(). The process must not have initialised the module
// (C_Initialize) other than through this package. With SoftHSM2, set SOFTHSM2_CONF
// before the first Open in a process.
func Open(cfg Config, logger *slog.Logger) (*HSM, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.ModulePath); err != nil {
		return nil, fmt.Errorf("hsm: PKCS#11 module %s (module_path) not found: set module_path to "+
			"the token's library, for SoftHSM2 /usr/lib/softhsm/libsofthsm2.so from package "+
			"softhsm2: %w", cfg.ModulePath, err)
	}
	pin, err := cfg.readPIN(logger)
	if err != nil {
		return nil, err
	}

	h := &HSM{
		cfg:     cfg,
		pin:     pin,
		logger:  logger.With("module", cfg.ModulePath, "token", cfg.TokenLabel),
		pool:    newSessionPool(cfg.MaxSessions),
		keys:    make(map[string]crypto11.Signer),
		handles: make(map[string]pkcs11.ObjectHandle),
		signers: make(map[string]crypto.Signer),
	}
	if h.ctx, err = h.configure(); err != nil {
		return nil, err
	}
	if h.raw, err = h.loadRawModule(); err != nil {
		_ = h.closeContext(h.ctx) // logs its own failure
		return nil, err
	}
	h.logger.Info("hsm opened", "max_sessions", cfg.MaxSessions, "shared", cfg.Shared)
	return h, nil
}

// Shared reports whether the token is shared by every node (Config.Shared), so CA keys
// are not wrapped between nodes.
func (h *HSM) Shared() bool { return h.cfg.Shared }

// Close closes every session of h and releases the module, which ends the login once no
// other HSM in the process has a session on the token. Close waits for signatures in
// progress. Signers obtained from h return ErrClosed afterwards.
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true

	// The raw sessions and context go first: crypto11 finalizes the module when its
	// last context closes.
	h.pool.drain(h)
	h.raw.Destroy()
	var err error
	if h.ctx != nil {
		err = h.closeContext(h.ctx)
		h.ctx = nil
	}
	h.logger.Info("hsm closed")
	return err
}

// configure opens a crypto11 context on the token and logs in.
func (h *HSM) configure() (*crypto11.Context, error) {
	moduleMu.Lock()
	defer moduleMu.Unlock()

	// crypto11 v1.2.5 calls C_Finalize when Configure fails, even while other contexts
	// use the module. Check label and PIN first so that a bad Open leaves them alone.
	if openContexts[h.cfg.ModulePath] > 0 {
		if err := h.checkToken(); err != nil {
			return nil, err
		}
	}
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path:        h.cfg.ModulePath,
		TokenLabel:  h.cfg.TokenLabel,
		Pin:         h.pin,
		MaxSessions: h.cfg.MaxSessions,
	})
	if err != nil {
		return nil, h.openError(err)
	}
	openContexts[h.cfg.ModulePath]++
	return ctx, nil
}

func (h *HSM) closeContext(ctx *crypto11.Context) error {
	moduleMu.Lock()
	defer moduleMu.Unlock()

	openContexts[h.cfg.ModulePath]--
	if err := ctx.Close(); err != nil {
		h.logger.Warn("hsm close pkcs11 context failed", "err", err)
		return fmt.Errorf("hsm: close token %q: %w", h.cfg.TokenLabel, err)
	}
	return nil
}

// loadRawModule loads a second handle on the module for the calls crypto11 lacks. The
// module is already initialised by crypto11, which owns C_Initialize and C_Finalize.
func (h *HSM) loadRawModule() (*pkcs11.Ctx, error) {
	raw := pkcs11.New(h.cfg.ModulePath)
	if raw == nil {
		return nil, fmt.Errorf("hsm: load PKCS#11 module %s failed", h.cfg.ModulePath)
	}
	err := raw.Initialize()
	if err != nil && !isPKCS11Error(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		raw.Destroy()
		return nil, fmt.Errorf("hsm: initialize PKCS#11 module %s: %w", h.cfg.ModulePath, err)
	}
	return raw, nil
}
