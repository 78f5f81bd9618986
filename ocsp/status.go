package ocsp

import (
	"errors"
	"fmt"

	xocsp "golang.org/x/crypto/ocsp"

	"anchor/fsm"
)

// errUnauthorized marks requests for an issuer that is not a CA of this
// cluster. They get the unauthorized response status.
var errUnauthorized = errors.New("issuer is not a CA of this cluster")

// lookupResult is the CA and status that a request names, with the CA's
// designated responders, newest first, when the response is to be signed.
type lookupResult struct {
	iss        *issuer
	status     certStatus
	responders []fsm.OCSPResponder
}

// readState reads the status of serial (fsm.SerialKey) under iss, a CA of
// idx, and, with withResponders, the CA's designated responders, in one
// transaction begun during generation v.
func (r *Responder) readState(
	v *stateView,
	idx *issuerIndex,
	iss *issuer,
	serial string,
	withResponders bool,
) (*lookupResult, error) {
	found := &lookupResult{iss: iss}
	err := r.st.View(func(tx *fsm.Tx) error {
		var err error
		if found.status, err = findStatus(tx, idx, iss, serial); err != nil {
			return err
		}
		if withResponders {
			found.responders, err = iss.responderList(tx, v.gen)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// findStatus returns the status of serial (fsm.SerialKey) under iss, a CA of
// idx: a credential of the CA is good or revoked, a SubCA certificate of a
// root is good or revoked, and anything else is unknown.
func findStatus(tx *fsm.Tx, idx *issuerIndex, iss *issuer, serial string) (certStatus, error) {
	cred, err := tx.Credential(serial)
	switch {
	case fsm.IsNotFound(err):
		return subCAStatus(tx, idx.subCAs[iss.ca.ID], serial)
	case err != nil:
		return certStatus{}, err
	case cred.CAID != iss.ca.ID:
		return certStatus{status: xocsp.Unknown}, nil
	case cred.Revoked:
		return certStatus{status: xocsp.Revoked, revokedAt: cred.RevokedAt, reason: cred.Reason,
			issuedAt: cred.IssuedAt}, nil
	}
	return certStatus{status: xocsp.Good, issuedAt: cred.IssuedAt}, nil
}

// subCAStatus returns the status of a SubCA certificate that a root signed:
// revoked after fsm.CmdRevokeSubCA, good before. subCAs are the root's
// SubCAs by serial; other CAs have none.
func subCAStatus(tx *fsm.Tx, subCAs map[string]string, serial string) (certStatus, error) {
	subID, ok := subCAs[serial]
	if !ok {
		return certStatus{status: xocsp.Unknown}, nil
	}
	rev, err := tx.CARevocation(subID)
	switch {
	case fsm.IsNotFound(err):
		return certStatus{status: xocsp.Good}, nil
	case err != nil:
		return certStatus{}, fmt.Errorf("read revocation of SubCA %s: %w", subID, err)
	}
	return certStatus{status: xocsp.Revoked, revokedAt: rev.RevokedAt, reason: rev.Reason}, nil
}
