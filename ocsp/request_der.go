package ocsp

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// tagRequestExtensions is the [2] EXPLICIT tag of requestExtensions.
var tagRequestExtensions = cbasn1.Tag(2).ContextSpecific().Constructed()

// nullParameters is the DER NULL that CertID hash algorithms carry as
// parameters, as x/crypto/ocsp and OpenSSL write them.
var nullParameters = []byte{0x05, 0x00}

// Contents of the DER OBJECT IDENTIFIERs that parseCommonRequest accepts,
// mapped to the values that encoding/asn1 decodes them to.
var (
	hashOIDByContent = map[string]asn1.ObjectIdentifier{}
	nonceOIDContent  string
)

func init() {
	for _, oid := range hashAlgorithmOIDs {
		hashOIDByContent[oidContent(oid)] = oid
	}
	nonceOIDContent = oidContent(oidNonce)
}

// oidContent returns the contents octets of an OID's DER encoding.
func oidContent(oid asn1.ObjectIdentifier) string {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	var content cryptobyte.String
	s := cryptobyte.String(der)
	if !s.ReadASN1(&content, cbasn1.OBJECT_IDENTIFIER) {
		panic("ocsp: cannot read back the encoding of OID " + oid.String())
	}
	return string(content)
}

// parseCommonRequest decodes the encoding that clients send, in strict DER
// (RFC 6960, 4.1.1). The request has no version, requestor name or
// signature, and one Request. The CertID has a known hash algorithm with
// NULL or absent parameters and a positive serial, and requestExtensions,
// if present, contain only nonces. For anything else it reports false, and
// parseRequest then uses unmarshalRequest. For every request it accepts,
// unmarshalRequest returns the same fields (FuzzParseCommonRequest checks
// this), so the fast path changes no response.
func parseCommonRequest(der []byte) (*tbsRequest, bool) {
	input := cryptobyte.String(der)
	var outer, tbs, list, single, id cryptobyte.String
	if !input.ReadASN1(&outer, cbasn1.SEQUENCE) || !input.Empty() ||
		!outer.ReadASN1(&tbs, cbasn1.SEQUENCE) || !outer.Empty() ||
		!tbs.ReadASN1(&list, cbasn1.SEQUENCE) ||
		!list.ReadASN1(&single, cbasn1.SEQUENCE) || !list.Empty() ||
		!single.ReadASN1(&id, cbasn1.SEQUENCE) {
		return nil, false
	}

	// encoding/asn1 ignores what follows the CertID in a Request, such as
	// singleRequestExtensions, and so does this function.
	cert, ok := parseCertID(id)
	if !ok {
		return nil, false
	}
	parsed := &tbsRequest{RequestList: []singleRequest{{Cert: *cert}}}
	if tbs.Empty() {
		return parsed, true
	}

	var wrapper, exts cryptobyte.String
	if !tbs.ReadASN1(&wrapper, tagRequestExtensions) || !tbs.Empty() ||
		!wrapper.ReadASN1(&exts, cbasn1.SEQUENCE) || !wrapper.Empty() {
		return nil, false
	}
	for !exts.Empty() {
		ext, ok := parseNonceExtension(&exts)
		if !ok {
			return nil, false
		}
		parsed.RequestExtensions = append(parsed.RequestExtensions, ext)
	}
	return parsed, true
}

// parseCertID decodes the contents of a CertID. encoding/asn1 ignores what
// follows the serial, and so does this function.
func parseCertID(id cryptobyte.String) (*certID, bool) {
	var alg, oid, nameHash, keyHash, serial cryptobyte.String
	if !id.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
		!id.ReadASN1(&nameHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1(&keyHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1(&serial, cbasn1.INTEGER) {
		return nil, false
	}
	algorithm, known := hashOIDByContent[string(oid)]
	if !known || !(alg.Empty() || string(alg) == string(nullParameters)) {
		return nil, false
	}
	// A positive INTEGER in its shortest form: no sign bit, and no leading
	// zero octet unless the next octet has the high bit set.
	if len(serial) == 0 || serial[0]&0x80 != 0 ||
		len(serial) > 1 && serial[0] == 0 && serial[1]&0x80 == 0 {
		return nil, false
	}
	return &certID{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: algorithm},
		NameHash:      nameHash,
		IssuerKeyHash: keyHash,
		SerialNumber:  new(big.Int).SetBytes(serial),
	}, true
}

// parseNonceExtension reads one Extension from exts and reports false when
// it is not a nonce. checkRequest then judges the nonce's length and count.
func parseNonceExtension(exts *cryptobyte.String) (pkix.Extension, bool) {
	var ext, oid, value cryptobyte.String
	if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) ||
		!ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || string(oid) != nonceOIDContent {
		return pkix.Extension{}, false
	}
	critical := false
	if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&critical) {
		return pkix.Extension{}, false
	}
	if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) {
		return pkix.Extension{}, false
	}
	return pkix.Extension{Id: oidNonce, Critical: critical, Value: value}, true
}
