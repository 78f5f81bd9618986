package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes, listed in the root command's help.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitUnreachable = 3
	exitDenied      = 4
	exitNotFound    = 5
	exitConflict    = 6
)

const exitCodesHelp = `Exit codes:
  0  success
  1  failure not listed below
  2  invalid usage: unknown command or flag, missing argument, unreadable
     credential file, or input the cluster rejected as invalid
  3  cannot reach the cluster: connection failed, no leader, timeout
  4  permission denied: the admin certificate's role does not allow the call
  5  not found: the named object does not exist
  6  conflict: the object already exists, or the operation does not fit its
     state (such as removing the last admin of an organization)`

// usageError marks an error in the command line or in local input files.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// unreachableError marks a failure to connect to any node, found before a
// call was sent.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// exitCode classifies err. started reports whether a command's own code
// ran: errors before it come from cobra's parsing and are usage errors.
func exitCode(err error, started bool) int {
	if err == nil {
		return exitOK
	}
	var u usageError
	if errors.As(err, &u) || !started {
		return exitUsage
	}
	var unreachable unreachableError
	if errors.As(err, &unreachable) {
		return exitUnreachable
	}
	st, ok := status.FromError(err)
	if !ok {
		return exitFailure
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return exitUsage
	case codes.Unavailable, codes.DeadlineExceeded:
		return exitUnreachable
	case codes.PermissionDenied, codes.Unauthenticated:
		return exitDenied
	case codes.NotFound:
		return exitNotFound
	case codes.AlreadyExists, codes.FailedPrecondition:
		return exitConflict
	}
	return exitFailure
}

// printError writes err to w, a gRPC status by its message and code.
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "anchorctl: %s\n", statusMessage(err))
}

func codeName(c codes.Code) string {
	switch c {
	case codes.PermissionDenied:
		return "permission denied"
	case codes.NotFound:
		return "not found"
	case codes.AlreadyExists:
		return "already exists"
	case codes.InvalidArgument:
		return "invalid argument"
	case codes.FailedPrecondition:
		return "failed precondition"
	case codes.Unavailable:
		return "unavailable"
	case codes.DeadlineExceeded:
		return "timed out"
	}
	return c.String()
}

// statusMessage returns the message of a gRPC status error followed by its
// code, unless the message already names the code, or the error text.
func statusMessage(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := st.Message()
	if st.Code() == codes.Unavailable {
		// gRPC's text for a failed dial quotes the dial error inside its own words.
		if _, dial, ok := strings.Cut(msg, "Error while dialing: "); ok {
			msg = "cannot connect to the node: " + strings.TrimSuffix(dial, `"`)
		}
	}
	if namesCode(msg, st.Code()) {
		return msg
	}
	return fmt.Sprintf("%s (%s)", msg, codeName(st.Code()))
}

// namesCode reports whether msg contains the name of c as whole words, as
// codeName writes it or as gRPC spells it (AlreadyExists, ALREADY_EXISTS),
// in any case. For AlreadyExists the word "already" is enough.
func namesCode(msg string, c codes.Code) bool {
	text := " " + normalizeWords(msg) + " "
	if c == codes.AlreadyExists && strings.Contains(text, " already ") {
		return true // "is already revoked" also names the code
	}
	return strings.Contains(text, " "+normalizeWords(codeName(c))+" ") ||
		strings.Contains(text, " "+normalizeWords(splitCamelCase(c.String()))+" ")
}

// normalizeWords lower-cases s and separates its words by single spaces.
// Every character other than a letter or digit, such as an underscore or a
// quote, separates words.
func normalizeWords(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return ' '
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// splitCamelCase puts a space before each inner upper-case letter:
// AlreadyExists becomes Already Exists.
func splitCamelCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
