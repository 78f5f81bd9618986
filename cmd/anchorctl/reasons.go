package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// reasonNames are the CRLReason codes of RFC 5280, 5.3.1, by the names the
// RFC gives them; code 7 is unused.
var reasonNames = map[int32]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
	9: "privilegeWithdrawn", 10: "aACompromise",
}

// parseReason accepts a reason name, in any case, or its code.
func parseReason(s string) (int32, error) {
	if n, err := strconv.ParseInt(s, 10, 32); err == nil {
		if _, ok := reasonNames[int32(n)]; ok {
			return int32(n), nil
		}
	}
	for code, name := range reasonNames {
		if strings.EqualFold(name, s) {
			return code, nil
		}
	}
	return 0, usagef("invalid --reason %q: use a CRLReason name such as keyCompromise, "+
		"or its code", s)
}

func reasonName(code int32) string {
	if name, ok := reasonNames[code]; ok {
		return name
	}
	return strconv.Itoa(int(code))
}

func addReasonFlag(cmd *cobra.Command, reason *string, examples string) {
	cmd.Flags().StringVar(reason, "reason", "unspecified", "CRLReason name or code: "+examples)
	names := make([]string, 0, len(reasonNames))
	for _, n := range reasonNames {
		names = append(names, n)
	}
	_ = cmd.RegisterFlagCompletionFunc("reason", cobra.FixedCompletions(names,
		cobra.ShellCompDirectiveNoFileComp))
}
