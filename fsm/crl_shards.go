package fsm

import "strconv"

// bucketCRLShards maps a SubCA's ID to its CRL shard count, as decimal text.
const bucketCRLShards = "crl_shards"

// CmdConfigureCRLShards sets the number of CRL shards of a SubCA.
const CmdConfigureCRLShards CommandType = "crl.shards.configure"

// Shard counts of SubCA CRLs.
const (
	// DefaultCRLShards applies to a SubCA without a configured count.
	DefaultCRLShards = 16
	// MaxCRLShards is the largest count. The index groups revocations by
	// the serial's least significant octet, so a count must divide 256.
	MaxCRLShards = 256
)

// ConfigureCRLShards is the payload of CmdConfigureCRLShards. A leaf names
// its shard's CRL in its CRL distribution point, so the count of a SubCA is
// fixed once the SubCA issues its first certificate: the handler then
// rejects a different count.
type ConfigureCRLShards struct {
	CAID   string `json:"ca_id"`
	Shards int    `json:"shards"`
}

func init() {
	register(CmdConfigureCRLShards, applyConfigureCRLShards)
}

// ValidateCRLShards checks a shard count: a power of two from 1 to
// MaxCRLShards.
func ValidateCRLShards(shards int) error {
	if shards < 1 || shards > MaxCRLShards || shards&(shards-1) != 0 {
		return Errorf(CodeInvalidArgument,
			"invalid CRL shard count %d: use a power of two from 1 to %d", shards, MaxCRLShards)
	}
	return nil
}

func applyConfigureCRLShards(tx *Tx, cmd *Command) (any, error) {
	var p ConfigureCRLShards
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := ValidateCRLShards(p.Shards); err != nil {
		return nil, err
	}
	ca, err := tx.CA(p.CAID)
	if err != nil {
		return nil, err
	}
	if ca.Kind != CAKindSub {
		return nil, Errorf(CodeInvalidArgument, "CA %q is a root: only SubCAs have CRL shards", p.CAID)
	}
	if stored := tx.getRaw(bucketCRLShards, p.CAID); stored != nil {
		if string(stored) == strconv.Itoa(p.Shards) {
			return p, nil
		}
		return nil, Errorf(CodeFailedPrecondition,
			"CA %q already uses %s CRL shards, which its certificates name", p.CAID, stored)
	}
	return p, tx.putRaw(bucketCRLShards, p.CAID, []byte(strconv.Itoa(p.Shards)))
}

// pinCRLShards records the default count for a SubCA without one, so that
// a later CmdConfigureCRLShards cannot move certificates between shards.
//
// NOTE: a count configured between the issuer's read of CRLShards and the
// commit of the SubCA's first certificate is accepted, and that certificate
// then names a shard of the old count. Configure the count before issuing.
func pinCRLShards(tx *Tx, caID string) error {
	if tx.getRaw(bucketCRLShards, caID) != nil {
		return nil
	}
	return tx.putRaw(bucketCRLShards, caID, []byte(strconv.Itoa(DefaultCRLShards)))
}

// CRLShards returns the CRL shard count of a SubCA: the configured count,
// or DefaultCRLShards.
func (t *Tx) CRLShards(caID string) (int, error) {
	stored := t.getRaw(bucketCRLShards, caID)
	if stored == nil {
		return DefaultCRLShards, nil
	}
	n, err := strconv.Atoi(string(stored))
	if err != nil {
		return 0, Errorf(CodeInternal, "CA %q has corrupt CRL shard count %q", caID, stored)
	}
	return n, nil
}
