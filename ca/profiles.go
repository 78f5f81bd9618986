package ca

// Certificate profiles and the lints they pass.
//
// The CA makes these profiles:
//
//   - AnchorCA root: self-signed, keyCertSign and cRLSign (critical), basic
//     constraints cA without a path length, SKI.
//   - SubCA: signed by the root, with path length 0 and the extended key
//     usages of its policy. It has AKI and SKI, AIA with the cluster's OCSP
//     and the root's caIssuers URLs, and the root's CRL distribution points.
//     The policy's name constraints are in a critical extension.
//   - Leaf: a 128-bit random serial and the SubCA template's subject
//     attributes. The common name is one of the SANs or absent, and SANs
//     are in lower case. Key usages fit the key type (digitalSignature,
//     plus keyEncipherment for RSA), and the extended key usages are
//     serverAuth, clientAuth or both. It has AKI, SKI, AIA with OCSP and
//     caIssuers, and CRL distribution points. It lasts at most 90 days
//     unless the template allows more.
//
// Every profile passes the zlint v3 lints of RFC 5280, RFC 3279 and RFC 5480
// and the CA/Browser Forum TLS Baseline Requirements lints, except the
// Baseline Requirements lints in LintExclusions, which rest on facts of the
// public web PKI that a private hierarchy does not share. The test
// TestProfiles_PassLints issues one certificate of every profile, roots and
// SubCAs included, and lints it with this list.
//
// Some template choices take leaves outside the linted profiles, on purpose:
// "ed25519" in key_types (the Baseline Requirements allow only RSA and
// ECDSA keys, e_public_key_type_not_allowed), and a max_validity above the
// Baseline Requirements' maximum for the issuance date (for example
// e_server_cert_valid_time_longer_than_200_days). Clients of a private
// hierarchy that accept them may use them.

// LintExclusions returns the zlint lints that do not apply to a private TLS
// hierarchy, by lint name, each with the reason.
func LintExclusions() map[string]string {
	const policyOID = "the Baseline Requirements require a CA/Browser Forum reserved " +
		"policy OID (2.23.140.1.2.x), which asserts compliance with them; a private CA must " +
		"not assert it and has no registered policy of its own to put in its place"
	const reservedIP = "private hierarchies name hosts on private networks (RFC 1918, " +
		"RFC 4193), which the public web PKI reserves"
	return map[string]string{
		"e_sub_ca_certificate_policies_missing":   policyOID,
		"e_invalid_ca_certificate_policies":       policyOID,
		"e_sub_cert_certificate_policies_missing": policyOID,
		"e_sub_cert_cert_policy_empty":            policyOID,

		"e_ca_country_name_missing": "a CA subject names an organization of this cluster, " +
			"not a legal entity whose jurisdiction was verified (Baseline Requirements, 3.2.2.3)",
		"e_dnsname_not_valid_tld": "private names use top-level domains outside the public " +
			"root zone, such as .internal, .test and .corp, or single labels such as localhost",
		"w_sub_cert_aia_contains_internal_names": "the AIA URLs point at the cluster's " +
			"nodes, which relying parties reach under internal names",
		"w_ext_subject_key_identifier_not_recommended_subscriber": "it contradicts RFC 5280, " +
			"4.2.1.2 (w_ext_subject_key_identifier_missing_sub_cert), which the hierarchy " +
			"follows so that clients can match leaf keys by SKI",
		"w_subject_common_name_included": "private clients still read the common name; the " +
			"template can omit it, and where present it is one of the SANs, which " +
			"e_subject_common_name_not_from_san still checks",
		"e_organizational_unit_name_prohibited": "the public rule exists because public CAs " +
			"did not validate OU values; here only the SubCA template, set by an " +
			"organization admin, supplies the OU",

		"e_ext_san_contains_reserved_ip":  reservedIP,
		"e_ext_nc_intersects_reserved_ip": reservedIP,
		"e_subject_contains_reserved_ip":  reservedIP,

		"e_ext_san_rfc822_name_present": "client certificates of a private hierarchy " +
			"identify people by email address; leaves carry one only where the SubCA's " +
			"name_types lists email, within its name constraints",
		"e_ext_san_uniform_resource_identifier_present": "workload certificates carry URI " +
			"identities such as SPIFFE IDs; leaves carry one only where the SubCA's " +
			"name_types lists uri, within its name constraints",
	}
}
