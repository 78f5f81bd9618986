package api

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"anchor/cluster"
	"anchor/fsm"
)

// fsmCodes maps the domain error codes to gRPC status codes.
var fsmCodes = map[fsm.Code]codes.Code{
	fsm.CodeNotFound:           codes.NotFound,
	fsm.CodeAlreadyExists:      codes.AlreadyExists,
	fsm.CodeInvalidArgument:    codes.InvalidArgument,
	fsm.CodeFailedPrecondition: codes.FailedPrecondition,
	fsm.CodeUnavailable:        codes.Unavailable,
	fsm.CodeInternal:           codes.Internal,
}

// toStatus turns an error of the layers below into a gRPC status error: an
// fsm.Error by its code, a missing leader as UNAVAILABLE, a status error
// unchanged, and anything else as INTERNAL. The message is the error's,
// with its context.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var domain *fsm.Error
	if errors.As(err, &domain) {
		code, ok := fsmCodes[domain.Code]
		if !ok {
			code = codes.Internal
		}
		return status.Error(code, err.Error())
	}
	var noLeader *cluster.NoLeaderError
	if errors.As(err, &noLeader) {
		return status.Error(codes.Unavailable, err.Error())
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// invalid returns an INVALID_ARGUMENT status error.
func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
