package crl

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"anchor/fsm"
)

// readRevocations returns the revocations of a scope from the state's
// revocation index. shards is the SubCA's shard count, unused for a full
// scope.
func readRevocations(tx *fsm.Tx, scope fsm.CRLScope, shards int) ([]fsm.Revocation, error) {
	var revs []fsm.Revocation
	collect := func(r *fsm.Revocation) bool {
		revs = append(revs, *r)
		return true
	}
	var err error
	if scope.Sharded {
		err = tx.ShardRevocations(scope.CAID, scope.Shard, shards, collect)
	} else {
		err = tx.Revocations(scope.CAID, collect)
	}
	if err != nil {
		return nil, fmt.Errorf("list revocations of %s: %w", scope, err)
	}
	return revs, nil
}

// withoutExpired returns the revocations that a complete CRL following
// previous must list. RFC 5280, 3.3 lets an entry go once it has appeared
// on one regular CRL issued after the certificate expired. previous is
// such a CRL for a revocation that it covered (Index at most its
// SourceIndex) and whose certificate expired before its thisUpdate. The
// first CRL to drop an entry therefore follows one that listed it after
// expiry, even when no CRL was published for a while.
func withoutExpired(revs []fsm.Revocation, previous *fsm.CRL) []fsm.Revocation {
	if previous == nil {
		return revs
	}
	kept := revs[:0:0]
	for _, r := range revs {
		if r.Index <= previous.SourceIndex && r.NotAfter.Before(previous.ThisUpdate) && r.NotAfter.Year() > 1 {
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// entriesSince converts the revocations applied after log index since into
// CRL entries; since 0 selects all. The entries keep the order of revs,
// which the index makes deterministic, because RFC 5280 requires no order
// and sorting a million serials costs a fifth of the signing time. Reason
// codes are copied, and encodeTBS leaves the reasonCode extension out for
// unspecified (0), as RFC 5280, 5.3.1 recommends.
func entriesSince(revs []fsm.Revocation, since uint64) []x509.RevocationListEntry {
	entries := make([]x509.RevocationListEntry, 0, len(revs))
	for i := range revs {
		if revs[i].Index <= since {
			continue
		}
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   revs[i].Serial,
			RevocationTime: revs[i].RevokedAt,
			ReasonCode:     revs[i].Reason,
		})
	}
	return entries
}

// crlTemplate is the content of one complete or delta CRL.
type crlTemplate struct {
	ca    *fsm.CA
	scope fsm.CRLScope
	// base is the complete CRL that a delta CRL updates, nil for a
	// complete CRL.
	base        *fsm.CRLBase
	number      uint64
	sourceIndex uint64
	// thisUpdate and nextUpdate must be whole seconds, because the DER
	// encoding keeps only seconds and the replicated record has to match it.
	thisUpdate, nextUpdate time.Time
	entries                []x509.RevocationListEntry
}

// signCRL builds and signs the CRL that tmpl describes.
func signCRL(tmpl *crlTemplate, signer crypto.Signer) (*fsm.CRL, error) {
	cert, err := tmpl.ca.Certificate()
	if err != nil {
		return nil, err
	}
	exts, err := crlExtensions(tmpl)
	if err != nil {
		return nil, err
	}
	alg, err := signatureAlgorithmFor(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("sign CRL %d of %s: %w", tmpl.number, tmpl.scope, err)
	}
	tbs, err := encodeTBS(&tbsFields{
		issuer: cert, number: new(big.Int).SetUint64(tmpl.number),
		thisUpdate: tmpl.thisUpdate, nextUpdate: tmpl.nextUpdate,
		entries: tmpl.entries, extensions: exts,
	}, alg)
	if err != nil {
		return nil, fmt.Errorf("encode CRL %d of %s: %w", tmpl.number, tmpl.scope, err)
	}
	der, err := signTBS(tbs, alg, signer)
	if err != nil {
		return nil, fmt.Errorf("sign CRL %d of %s: %w", tmpl.number, tmpl.scope, err)
	}
	return &fsm.CRL{
		CRLScope: tmpl.scope, Delta: tmpl.base != nil, Base: tmpl.base,
		Number: tmpl.number, SourceIndex: tmpl.sourceIndex, Entries: len(tmpl.entries),
		ThisUpdate: tmpl.thisUpdate, NextUpdate: tmpl.nextUpdate, DER: der,
	}, nil
}

// crlExtensions returns the issuing distribution point, and the delta CRL
// indicator of a delta CRL or the freshest CRL pointer of a complete CRL.
func crlExtensions(tmpl *crlTemplate) ([]pkix.Extension, error) {
	idp, err := idpExtension(tmpl.ca, tmpl.scope)
	if err != nil {
		return nil, err
	}
	exts := []pkix.Extension{idp}
	if tmpl.base != nil {
		indicator, err := deltaIndicatorExtension(tmpl.base.Number)
		if err != nil {
			return nil, err
		}
		return append(exts, indicator), nil
	}
	urls := scopeURLs(tmpl.ca, tmpl.scope)
	if len(urls) == 0 {
		return exts, nil
	}
	freshest, err := FreshestCRLExtension(DeltaURLs(urls))
	if err != nil {
		return nil, err
	}
	return append(exts, freshest), nil
}
