package switchd

import "context"

// termKey is the context key of the high-availability term.
type termKey struct{}

// WithTerm returns ctx carrying the high-availability leader's term (its
// etcd election revision), checked just before the call: a driver whose
// protocol can carry it sends it with each command, so that a device agent
// can refuse a command of an older term than the newest it has seen.
func WithTerm(ctx context.Context, term int64) context.Context {
	return context.WithValue(ctx, termKey{}, term)
}

// TermFrom returns the term WithTerm put in ctx; false without HA.
func TermFrom(ctx context.Context) (int64, bool) {
	t, ok := ctx.Value(termKey{}).(int64)
	return t, ok && t > 0
}
