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

// shedOnlyKey is the context key of a shed-only call.
type shedOnlyKey struct{}

// WithShedOnly returns ctx marking the calls made with it as part of a
// shed-only tick (the daemon's startup hold): a driver that acts on its own
// (re-commanding a device that drifted) then sends only moves that lower a
// device's draw.
func WithShedOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, shedOnlyKey{}, true)
}

// ShedOnlyFrom reports whether ctx came from WithShedOnly.
func ShedOnlyFrom(ctx context.Context) bool {
	v, _ := ctx.Value(shedOnlyKey{}).(bool)
	return v
}
