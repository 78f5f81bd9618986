package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	anchorv1 "anchor/api/anchorv1"
)

// policyFlags set a new SubCA's leaf policy: a JSON file in the form of the
// API's Policy message, and flags for the common fields, which override it.
type policyFlags struct {
	file        string
	maxValidity time.Duration
	keyTypes    []string
	nameTypes   []string
	permitDNS   []string
	excludeDNS  []string
	permitIP    []string
	excludeIP   []string
	serverAuth  bool
	clientAuth  bool
}

func (p *policyFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.file, "policy-file", "", "leaf policy as JSON with the fields of the API's "+
		"Policy message (max_validity_seconds, key_types, name_constraints, ...)")
	f.DurationVar(&p.maxValidity, "max-validity", 0,
		"maximum leaf lifetime, such as 720h (default 90 days)")
	f.StringSliceVar(&p.keyTypes, "key-type", nil, "allowed leaf key type: ecdsa-p256, ecdsa-p384, "+
		"rsa-N, ed25519 (repeatable)")
	f.StringSliceVar(&p.nameTypes, "name-type", nil,
		"allowed SAN type: dns, ip, email, uri (repeatable)")
	f.StringSliceVar(&p.permitDNS, "permit-dns", nil, "permitted DNS name constraint (repeatable)")
	f.StringSliceVar(&p.excludeDNS, "exclude-dns", nil, "excluded DNS name constraint (repeatable)")
	f.StringSliceVar(&p.permitIP, "permit-ip", nil, "permitted IP prefix, CIDR (repeatable)")
	f.StringSliceVar(&p.excludeIP, "exclude-ip", nil, "excluded IP prefix, CIDR (repeatable)")
	f.BoolVar(&p.serverAuth, "server-auth", false, "leaves get the serverAuth extended key usage "+
		"(the default when neither this nor --client-auth is set)")
	f.BoolVar(&p.clientAuth, "client-auth", false, "leaves get the clientAuth extended key usage")
	_ = cmd.MarkFlagFilename("policy-file", "json")
}

// policy builds the requested policy.
func (p *policyFlags) policy(cmd *cobra.Command) (*anchorv1.Policy, error) {
	out := &anchorv1.Policy{}
	if p.file != "" {
		data, err := os.ReadFile(p.file)
		if err != nil {
			return nil, usagef("read --policy-file: %v", err)
		}
		if err := protojson.Unmarshal(data, out); err != nil {
			return nil, usagef("--policy-file %s: %v", p.file, err)
		}
	}
	changed := cmd.Flags().Changed
	if changed("max-validity") {
		out.MaxValiditySeconds = int64(p.maxValidity / time.Second)
	}
	overrideLists(cmd, map[string]listFlag{
		"key-type": {&out.KeyTypes, p.keyTypes}, "name-type": {&out.NameTypes, p.nameTypes},
	})
	if out.NameConstraints == nil {
		out.NameConstraints = &anchorv1.NameConstraints{}
	}
	nc := out.NameConstraints
	overrideLists(cmd, map[string]listFlag{
		"permit-dns": {&nc.PermittedDns, p.permitDNS}, "exclude-dns": {&nc.ExcludedDns, p.excludeDNS},
		"permit-ip": {&nc.PermittedIp, p.permitIP}, "exclude-ip": {&nc.ExcludedIp, p.excludeIP},
	})
	if changed("server-auth") {
		out.ServerAuth = p.serverAuth
	}
	if changed("client-auth") {
		out.ClientAuth = p.clientAuth
	}
	return out, nil
}

// listFlag is a list field of the policy and the value of the flag that
// sets it.
type listFlag struct {
	dst   *[]string
	value []string
}

// overrideLists replaces each list whose flag was given.
func overrideLists(cmd *cobra.Command, flags map[string]listFlag) {
	for name, f := range flags {
		if cmd.Flags().Changed(name) {
			*f.dst = f.value
		}
	}
}
