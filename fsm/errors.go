package fsm

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The admin API maps it to a gRPC status code and
// the ACME server to a problem type.
type Code string

// Error codes.
const (
	CodeNotFound           Code = "not_found"
	CodeAlreadyExists      Code = "already_exists"
	CodeInvalidArgument    Code = "invalid_argument"
	CodeFailedPrecondition Code = "failed_precondition"
	CodeUnavailable        Code = "unavailable"
	CodeInternal           Code = "internal"
)

// Error is the domain error of the product. It crosses the Raft log, the
// internal forwarding RPC and the admin API unchanged.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or CodeInternal when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsNotFound reports whether err is an Error with CodeNotFound.
func IsNotFound(err error) bool { return err != nil && CodeOf(err) == CodeNotFound }
