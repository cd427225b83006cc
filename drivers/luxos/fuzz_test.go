package luxos

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
)

// seeds adds the recorded LuxOS replies (when present) and the hand-made
// ones to a fuzz corpus.
func seeds(f *testing.F) {
	f.Add([]byte(`{"config":[{"STATUS":[{"STATUS":"S"}],"CONFIG":[{"CurtailMode":"Sleep"}]}],"id":1}`))
	f.Add([]byte(`{"summary":[{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"GHS 5s":"nan"}]}],"devs":[{"STATUS":[{"STATUS":"E"}]}]}`))
	f.Add([]byte("{\"STATUS\":[{\"STATUS\":\"E\",\"Msg\":\"Invalid command\"}]}\x00"))
	for _, dir := range []string{"testdata", filepath.Join(os.Getenv("SWITCHD_FIXTURES"), "luxos"), filepath.Join("..", "..", "..", "shared", "fixtures", "miners", "luxos")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && filepath.Ext(e.Name()) == ".json" {
				f.Add(b)
			}
		}
	}
}

// FuzzPoll: a poll reply of any shape never panics, and an observation
// comes only from a reply with a readable STATUS.
func FuzzPoll(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		rs, err := splitMulti(raw)
		if err == nil {
			if _, err := observe(rs); err != nil && !switchd.IsPermanent(err) {
				return
			}
		}
		// The same bytes as each single-command reply of the fallback.
		r, err := cgrpc.Check("fuzz", raw)
		if err != nil {
			return
		}
		var single replies
		for _, cmd := range replyParts {
			single.set(cmd, r)
		}
		o, err := observe(single)
		if err == nil && o.Known && o.Fault && o.Mode != switchd.ModeMining {
			t.Fatalf("fault outside mining: %+v", o)
		}
	})
}

// FuzzProfiles: the profiles reply and the nearest-profile choice never
// panic, and the choice is one of the parsed profiles.
func FuzzProfiles(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := cgrpc.Check("profiles", raw)
		if err != nil {
			return
		}
		ps, err := parseProfiles(r)
		if err != nil {
			return
		}
		for _, pct := range []float64{1, 50, 100, 200} {
			p, err := nearestProfile(ps, pct)
			if err != nil {
				continue
			}
			found := false
			for _, q := range ps {
				found = found || q == p
			}
			if !found {
				t.Fatalf("chose %+v, not a listed profile", p)
			}
		}
		_, _ = sessionID(r)
	})
}
