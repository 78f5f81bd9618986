package ocsp

import (
	"context"
	"crypto"
	"math/big"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"anchor/fsm"
)

// presignScanFactor bounds the credentials that one pre-signing round
// examines, as a multiple of Options.PresignBatch.
const presignScanFactor = 5

// presignItem is one response that a pre-signing round signs.
type presignItem struct {
	key   cacheKey
	found *lookupResult
	req   *request
}

// Run pre-signs responses until ctx ends, then returns nil. Every
// Options.PresignInterval it walks on through the credentials that have not
// expired, in order of notAfter, and signs up to Options.PresignBatch
// responses for SHA-1 CertIDs, OpenSSL's default, that are missing from the
// cache or past a third of their validity. It adds a response only while
// the cache has room, and starts over from the credential that expires
// next once it reaches the end. Call it once per Responder, on every node.
func (r *Responder) Run(ctx context.Context) error {
	if r.opts.PresignBatch < 0 {
		return nil
	}
	r.logger.Info("ocsp pre-signing started", "interval", r.opts.PresignInterval,
		"batch", r.opts.PresignBatch, "cache_entries", r.opts.CacheEntries)
	defer r.logger.Info("ocsp pre-signing stopped")

	ticker := time.NewTicker(r.opts.PresignInterval)
	defer ticker.Stop()
	var position string
	for {
		r.presignRound(&position)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// presignRound signs one batch, continuing after *position, and returns the
// number of responses it stored.
func (r *Responder) presignRound(position *string) int {
	if !r.ready() {
		return 0
	}
	now := r.now()
	v, err := r.current()
	if err == nil {
		// Take in CAs added since the index was built, so that their
		// credentials are found below.
		_, err = r.refreshIssuers(v)
	}
	var items []presignItem
	if err == nil {
		err = r.st.View(func(tx *fsm.Tx) error {
			var err error
			items, err = r.collectPresign(tx, v, position, now)
			return err
		})
	}
	if err != nil {
		r.logger.Error("ocsp pre-signing round failed", "error", err)
		return 0
	}
	stored := 0
	for _, item := range items {
		resp, err := r.sign(item.found, item.req, v.gen, now)
		if err != nil {
			r.repeats.Warn(r.logger, "presign "+item.key.caID, "ocsp pre-signing failed",
				"ca", item.key.caID, "serial", item.key.serial, "error", err)
			continue
		}
		if r.cache.putIfRoom(item.key, resp) {
			stored++
		}
	}
	return stored
}

// collectPresign walks the expiry index after *position and returns the
// responses due for signing. It resets *position at the end of the index.
func (r *Responder) collectPresign(
	tx *fsm.Tx,
	v *stateView,
	position *string,
	now time.Time,
) ([]presignItem, error) {
	if *position == "" {
		*position = fsm.ExpiryPosition(now)
	}
	var items []presignItem
	var firstErr error
	// The newest index, which the round refreshed before this transaction.
	// Starting a generation here would nest transactions.
	issuers := r.view.Load().issuers
	scanned, stopped := 0, false
	tx.CredentialsByExpiry(*position, func(ref *fsm.CredentialRef) bool {
		*position = ref.Position
		scanned++
		key := cacheKey{caID: ref.CAID, hash: crypto.SHA1, serial: ref.Serial}
		if ref.NotAfter.After(now) && r.cache.presignDue(key, now) && r.cache.hasRoomFor(key) {
			item, err := presignFor(tx, v, issuers, ref, key)
			if err == nil {
				items = append(items, *item)
			} else if firstErr == nil {
				firstErr = err
			}
		}
		stopped = len(items) >= r.opts.PresignBatch ||
			scanned >= presignScanFactor*r.opts.PresignBatch
		return !stopped
	})
	if !stopped {
		*position = ""
	}
	return items, firstErr
}

func presignFor(
	tx *fsm.Tx,
	v *stateView,
	issuers *issuerIndex,
	ref *fsm.CredentialRef,
	key cacheKey,
) (*presignItem, error) {
	iss := issuers.byID[ref.CAID]
	if iss == nil {
		// A CA added after the round refreshed the index, or one that is
		// missing from the state.
		return nil, fsm.Errorf(fsm.CodeNotFound, "CA %q of credential %s not found", ref.CAID, ref.Serial)
	}
	serial, ok := new(big.Int).SetString(ref.Serial, 16)
	if !ok {
		return nil, fsm.Errorf(fsm.CodeInternal, "credential index has invalid serial %q", ref.Serial)
	}
	status, err := findStatus(tx, issuers, iss, ref.Serial)
	if err != nil {
		return nil, err
	}
	responders, err := iss.responderList(tx, v.gen)
	if err != nil {
		return nil, err
	}
	found := &lookupResult{iss: iss, status: status, responders: responders}
	req := &request{Request: &xocsp.Request{HashAlgorithm: crypto.SHA1, SerialNumber: serial}}
	return &presignItem{key: key, found: found, req: req}, nil
}
