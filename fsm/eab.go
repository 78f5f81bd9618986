package fsm

import "time"

const bucketEAB = "eab_keys"

// CmdCreateEAB creates an External Account Binding key.
const CmdCreateEAB CommandType = "eab.create"

// EABKey is an External Account Binding credential (RFC 8555, 7.3.4). Its HMAC
// key is replicated because any node may verify a new account's binding.
type EABKey struct {
	KeyID   string `json:"key_id"`
	HMACKey []byte `json:"hmac_key"`
	ChainID string `json:"chain_id"`
	// SubCAID is the SubCA that signs the certificates of accounts bound by
	// this key; empty means the chain's default SubCA.
	SubCAID string `json:"subca_id,omitempty"`
	// ServiceID is the service that owns the key (created with the service),
	// or empty. Certificates of bound accounts may carry only the service's
	// identifiers.
	ServiceID string `json:"service_id,omitempty"`
	// Identifiers lists the DNS names (a leading "*." matches subdomains) and
	// IP addresses that orders of accounts bound by this key are
	// pre-authorized for. Names outside it go through challenges.
	Identifiers []string  `json:"identifiers,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// AccountID is set once an account is bound; a key binds one account.
	AccountID string `json:"account_id,omitempty"`
}

func init() { register(CmdCreateEAB, applyCreateEAB) }

func applyCreateEAB(tx *Tx, cmd *Command) (any, error) {
	var k EABKey
	if err := decodePayload(cmd, &k); err != nil {
		return nil, err
	}
	if k.ServiceID != "" {
		return nil, Errorf(CodeInvalidArgument, "EAB keys of a service are created with the service")
	}
	// Entries of version 2 stored identifiers unchecked. Replaying one
	// must store what every node stored then.
	if cmd.Version >= 3 {
		if err := checkEABIdentifiers(tx, &k); err != nil {
			return nil, err
		}
	}
	return putEABKey(tx, k, cmd.Time)
}

// checkEABIdentifiers normalizes the identifiers of a new EAB key and
// checks that its SubCA, or the chain's default SubCA, may sign them.
func checkEABIdentifiers(tx *Tx, k *EABKey) error {
	if len(k.Identifiers) == 0 {
		return nil
	}
	chain, err := tx.Chain(k.ChainID)
	if err != nil {
		return err
	}
	subID := k.SubCAID
	if subID == "" {
		subID = chain.DefaultSubCAID
	}
	sub, err := tx.chainSubCA(k.ChainID, subID)
	if err != nil {
		return err
	}
	ids := make([]string, len(k.Identifiers))
	for i, id := range k.Identifiers {
		if ids[i], err = NormalizeIdentifier(id); err != nil {
			return err
		}
	}
	k.Identifiers = ids
	return CheckIdentifiersAllowed(ids, sub)
}

// putEABKey checks and stores a new EAB key.
func putEABKey(tx *Tx, k EABKey, now time.Time) (*EABKey, error) {
	if k.KeyID == "" || len(k.HMACKey) < 16 {
		return nil, Errorf(CodeInvalidArgument,
			"EAB key needs a key ID and an HMAC key of at least 16 bytes")
	}
	if !tx.has(bucketChains, k.ChainID) {
		return nil, Errorf(CodeNotFound, "chain %q not found", k.ChainID)
	}
	if k.SubCAID != "" {
		if _, err := tx.chainSubCA(k.ChainID, k.SubCAID); err != nil {
			return nil, err
		}
	}
	if tx.has(bucketEAB, k.KeyID) {
		return nil, Errorf(CodeAlreadyExists, "EAB key %q already exists", k.KeyID)
	}
	k.CreatedAt = now
	k.AccountID = ""
	return &k, tx.put(bucketEAB, k.KeyID, k)
}

// EABKey returns an EAB key by its key ID.
func (t *Tx) EABKey(keyID string) (*EABKey, error) {
	var k EABKey
	ok, err := t.get(bucketEAB, keyID, &k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "EAB key %q not found", keyID)
	}
	return &k, nil
}

// EABKeys lists the EAB keys of a chain.
func (t *Tx) EABKeys(chainID string) ([]EABKey, error) {
	all, err := list[EABKey](t, bucketEAB, "")
	if err != nil {
		return nil, err
	}
	var out []EABKey
	for _, k := range all {
		if k.ChainID == chainID {
			out = append(out, k)
		}
	}
	return out, nil
}
