package main

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatusMessage_CodeNamedOnce(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"message names code", status.Error(codes.AlreadyExists, `organization "acme" already exists`),
			`organization "acme" already exists`},
		{"upper case with underscore", status.Error(codes.FailedPrecondition,
			"FAILED_PRECONDITION: chain is disabled"), "FAILED_PRECONDITION: chain is disabled"},
		{"gRPC name", status.Error(codes.DeadlineExceeded, "context deadline exceeded"),
			"context deadline exceeded"},
		{"message without code", status.Error(codes.NotFound, "no such chain"),
			"no such chain (not found)"},
		{"code word inside another word", status.Error(codes.NotFound, "notfound.example"),
			"notfound.example (not found)"},
		{"failed dial", status.Error(codes.Unavailable, `connection error: desc = "transport: `+
			`Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`),
			"cannot connect to the node: dial tcp 127.0.0.1:1: connect: connection refused " +
				"(unavailable)"},
		{"not a status", errors.New("load admin credentials: missing"),
			"load admin credentials: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusMessage(tt.err); got != tt.want {
				t.Errorf("statusMessage = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExitCode_UnreachableError(t *testing.T) {
	err := unreachableError{errors.New("no node accepts connections")}
	if got := exitCode(err, true); got != exitUnreachable {
		t.Errorf("exit code %d, want %d", got, exitUnreachable)
	}
}
