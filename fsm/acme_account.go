package fsm

// Command types of ACME accounts.
const (
	CmdACMECreateAccount    CommandType = "acme.account.create"
	CmdACMEUpdateAccount    CommandType = "acme.account.update"
	CmdACMEChangeAccountKey CommandType = "acme.account.key_change"
)

// CreateACMEAccount is the payload of CmdACMECreateAccount. The proposer
// sets the account ID; the handler sets the status and creation time.
type CreateACMEAccount struct {
	Account ACMEAccount `json:"account"`
}

// UpdateACMEAccount is the payload of CmdACMEUpdateAccount.
type UpdateACMEAccount struct {
	ID string `json:"id"`
	// Contact replaces the account's contacts unless it is nil.
	Contact []string `json:"contact"`
	// Deactivate moves the account to "deactivated" for good (RFC 8555, 7.3.6).
	Deactivate bool `json:"deactivate,omitempty"`
}

// ChangeACMEAccountKey is the payload of CmdACMEChangeAccountKey (RFC 8555,
// 7.3.5). OldThumbprint must match the account's current key, so two
// concurrent rollovers cannot both succeed.
type ChangeACMEAccountKey struct {
	ID            string `json:"id"`
	OldThumbprint string `json:"old_thumbprint"`
	Thumbprint    string `json:"thumbprint"`
	JWK           []byte `json:"jwk"`
}

func init() {
	register(CmdACMECreateAccount, applyCreateACMEAccount)
	register(CmdACMEUpdateAccount, applyUpdateACMEAccount)
	register(CmdACMEChangeAccountKey, applyChangeACMEAccountKey)
}

func applyCreateACMEAccount(tx *Tx, cmd *Command) (any, error) {
	var p CreateACMEAccount
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	a := p.Account
	if a.ID == "" || a.Thumbprint == "" || len(a.JWK) == 0 || a.EABKeyID == "" {
		return nil, Errorf(CodeInvalidArgument,
			"ACME account needs an ID, a key, its thumbprint and an EAB key ID")
	}
	if tx.has(bucketACMEAccounts, a.ID) {
		return nil, Errorf(CodeAlreadyExists, "ACME account %q already exists", a.ID)
	}
	if !tx.has(bucketChains, a.ChainID) {
		return nil, Errorf(CodeNotFound, "chain %q not found", a.ChainID)
	}
	keyIndex := a.ChainID + "|" + a.Thumbprint
	if existing := tx.getRaw(bucketACMEAccountByKey, keyIndex); existing != nil {
		return nil, Errorf(CodeAlreadyExists,
			"key %s is already the key of ACME account %q", a.Thumbprint, existing)
	}
	if err := bindEABKey(tx, a.EABKeyID, a.ChainID, a.ID); err != nil {
		return nil, err
	}

	a.Status = ACMEStatusValid
	a.CreatedAt = cmd.Time
	if err := tx.putRaw(bucketACMEAccountByKey, keyIndex, []byte(a.ID)); err != nil {
		return nil, err
	}
	return a, tx.put(bucketACMEAccounts, a.ID, a)
}

// bindEABKey records that the EAB key binds accountID. A key binds one
// account, once (RFC 8555, 7.3.4 leaves reuse to the server).
func bindEABKey(tx *Tx, keyID, chainID, accountID string) error {
	k, err := tx.EABKey(keyID)
	if err != nil {
		return err
	}
	if k.ChainID != chainID {
		return Errorf(CodeFailedPrecondition,
			"EAB key %q belongs to chain %q, not %q", keyID, k.ChainID, chainID)
	}
	if k.AccountID != "" {
		return Errorf(CodeFailedPrecondition,
			"EAB key %q is already bound to ACME account %q", keyID, k.AccountID)
	}
	k.AccountID = accountID
	return tx.put(bucketEAB, k.KeyID, k)
}

func applyUpdateACMEAccount(tx *Tx, cmd *Command) (any, error) {
	var p UpdateACMEAccount
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	a, err := tx.ACMEAccount(p.ID)
	if err != nil {
		return nil, err
	}
	if a.Status != ACMEStatusValid {
		return nil, Errorf(CodeFailedPrecondition, "ACME account %q is %s", a.ID, a.Status)
	}
	if p.Contact != nil {
		a.Contact = p.Contact
	}
	if p.Deactivate {
		a.Status = ACMEStatusDeactivated
	}
	return a, tx.put(bucketACMEAccounts, a.ID, a)
}

func applyChangeACMEAccountKey(tx *Tx, cmd *Command) (any, error) {
	var p ChangeACMEAccountKey
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if p.Thumbprint == "" || len(p.JWK) == 0 {
		return nil, Errorf(CodeInvalidArgument, "key change needs the new key and its thumbprint")
	}
	a, err := tx.ACMEAccount(p.ID)
	if err != nil {
		return nil, err
	}
	if a.Status != ACMEStatusValid {
		return nil, Errorf(CodeFailedPrecondition, "ACME account %q is %s", a.ID, a.Status)
	}
	if a.Thumbprint != p.OldThumbprint {
		return nil, Errorf(CodeFailedPrecondition,
			"the key of ACME account %q changed meanwhile", a.ID)
	}
	newIndex := a.ChainID + "|" + p.Thumbprint
	if existing := tx.getRaw(bucketACMEAccountByKey, newIndex); existing != nil {
		return nil, Errorf(CodeAlreadyExists,
			"key %s is already the key of ACME account %q", p.Thumbprint, existing)
	}

	if err := tx.del(bucketACMEAccountByKey, a.ChainID+"|"+a.Thumbprint); err != nil {
		return nil, err
	}
	if err := tx.putRaw(bucketACMEAccountByKey, newIndex, []byte(a.ID)); err != nil {
		return nil, err
	}
	a.Thumbprint = p.Thumbprint
	a.JWK = p.JWK
	return a, tx.put(bucketACMEAccounts, a.ID, a)
}
