package cgrpc

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// TestNetErrorNamesTheAddressOnce: an operator reads these in probe output
// and the state API; "dial A: dial tcp A: …" said it twice.
func TestNetErrorNamesTheAddressOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Exchange(ctx, addr, Request("summary", ""), Options{})
	require.ErrorIs(t, err, switchd.ErrUnreachable)
	require.Equal(t, 1, strings.Count(err.Error(), addr), err.Error())
	require.Contains(t, err.Error(), "dial")
	require.Contains(t, err.Error(), "refused")

	// Errors that do not name the address get it.
	err = NetError("read", addr, io.ErrUnexpectedEOF)
	require.Equal(t, "read "+addr+": unexpected EOF", err.Error())
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF))
}
