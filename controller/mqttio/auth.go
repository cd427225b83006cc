package mqttio

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// Account is what one user of the embedded broker may do once logged in.
type Account struct {
	// Publish are the topics the user may publish to, exact names (the
	// signal topics it feeds).
	Publish []string
	// Read are the topics the user may subscribe to, each with every topic
	// below it (the state topic and its fleets).
	Read []string
}

// maxPasswordFileBytes bounds a password file: a line is about 130 bytes,
// so this is some 8,000 users.
const maxPasswordFileBytes = 1 << 20

// ReadPasswordFile reads a Mosquitto password file, as mosquitto_passwd
// writes it: one "user:hash" line per user, where hash is
// "$7$<iterations>$<salt>$<key>" (PBKDF2-HMAC-SHA512, mosquitto_passwd's
// default since Mosquitto 2.0) or "$6$<salt>$<key>" (one round of SHA-512
// over password and salt, Mosquitto 1.x), salt and key in base64. Blank
// lines and lines starting with # are skipped. An error names the line;
// it never quotes a hash.
func ReadPasswordFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordFileBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("password file %s: %w", path, err)
	case len(data) > maxPasswordFileBytes:
		return nil, fmt.Errorf("password file %s: larger than %d KiB", path, maxPasswordFileBytes>>10)
	}
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "":
			return nil, fmt.Errorf("%s:%d: want user:hash (made by mosquitto_passwd)", path, n)
		case users[user] != "":
			return nil, fmt.Errorf("%s:%d: user %q appears twice", path, n, user)
		}
		if _, err := parseHash(hash); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %w", path, n, user, err)
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("password file %s: %w", path, err)
	}
	return users, nil
}

// passwordHash is a parsed Mosquitto password hash.
type passwordHash struct {
	pbkdf2     bool // $7$; $6$ otherwise
	iterations int
	salt, key  []byte
}

// maxHashIterations bounds the PBKDF2 rounds of a hash: each login runs
// them, and mosquitto_passwd uses 101. A file with millions is a mistake
// that would make every login slow.
const maxHashIterations = 1_000_000

// parseHash parses a Mosquitto password hash.
func parseHash(h string) (passwordHash, error) {
	parts := strings.Split(h, "$")
	var p passwordHash
	var salt, key string
	switch {
	case len(parts) == 5 && parts[0] == "" && parts[1] == "7":
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 || n > maxHashIterations {
			return p, fmt.Errorf("bad iteration count in a $7$ hash (want 1 to %d)", maxHashIterations)
		}
		p.pbkdf2, p.iterations, salt, key = true, n, parts[3], parts[4]
	case len(parts) == 4 && parts[0] == "" && parts[1] == "6":
		salt, key = parts[2], parts[3]
	default:
		return p, errors.New("not a mosquitto_passwd hash ($7$ sha512-pbkdf2 or $6$ sha512); a plain-text password is refused")
	}
	var err error
	if p.salt, err = base64.StdEncoding.DecodeString(salt); err != nil || len(p.salt) == 0 {
		return p, errors.New("bad salt in hash")
	}
	if p.key, err = base64.StdEncoding.DecodeString(key); err != nil || len(p.key) != sha512.Size {
		return p, errors.New("bad key in hash")
	}
	return p, nil
}

// checkPassword reports whether password matches a Mosquitto hash.
func checkPassword(hash string, password []byte) bool {
	p, err := parseHash(hash)
	if err != nil {
		return false
	}
	var got []byte
	if p.pbkdf2 {
		if got, err = pbkdf2.Key(sha512.New, string(password), p.salt, p.iterations, sha512.Size); err != nil {
			return false
		}
	} else {
		h := sha512.New()
		h.Write(password)
		h.Write(p.salt)
		got = h.Sum(nil)
	}
	return subtle.ConstantTimeCompare(got, p.key) == 1
}

// authHook is the embedded broker's authentication and ACL: switchd's own
// identity (its reserved client ID and user, with the password made at
// each start) may do anything; users of the password file log in with
// their password and get their Account's rights; clients without a user
// name are let in with every right only when anonymous access is allowed.
// A client giving a user name must always present its password: a failed
// login never falls back to anonymous.
type authHook struct {
	mochi.HookBase
	log       *zap.Logger
	id, user  string // switchd's reserved client ID and user name
	password  []byte
	anonymous bool
	accounts  map[string]Account

	file string // password file; "" for none
	mu   sync.Mutex
	mod  time.Time         // modification time of the file as last read
	size int64             // and its size
	hash map[string]string // user -> hash, from the file
}

// ID names the hook.
func (h *authHook) ID() string { return "switchd-auth" }

// Provides tells mochi which hook methods are implemented.
func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

// OnConnectAuthenticate decides whether a client may connect; mochi answers
// a refusal with "bad user name or password".
func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	c := pk.Connect
	if h.id != "" && c.ClientIdentifier == h.id {
		// switchd's own ID: no one else may take it over.
		return (h.user == "" || string(c.Username) == h.user) && subtle.ConstantTimeCompare(c.Password, h.password) == 1
	}
	if h.user != "" && string(c.Username) == h.user {
		return subtle.ConstantTimeCompare(c.Password, h.password) == 1
	}
	if len(c.Username) == 0 || h.file == "" {
		// Without a password file user names mean nothing: the broker is
		// open (loopback, or anonymous access asked for).
		return h.anonymous
	}
	hash, ok := h.lookup(string(c.Username))
	if !ok {
		// Spend the time a real check takes, so that timing does not tell
		// which user names exist.
		checkPassword(dummyHash, c.Password)
		return false
	}
	return checkPassword(hash, c.Password)
}

// dummyHash is checked against for an unknown user: a well-formed hash of
// mosquitto_passwd's default cost that no password matches in practice.
var dummyHash = "$7$101$" + base64.StdEncoding.EncodeToString(make([]byte, 12)) + "$" + base64.StdEncoding.EncodeToString(make([]byte, sha512.Size))

// lookup returns a user's hash from the password file, read again when it
// changed (a user added or a password changed needs no restart). A file
// that became unreadable or invalid keeps the users last read, with a log
// line.
func (h *authHook) lookup(user string) (string, bool) {
	if h.file == "" {
		return "", false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if fi, err := os.Stat(h.file); err == nil && (!fi.ModTime().Equal(h.mod) || fi.Size() != h.size) {
		users, err := ReadPasswordFile(h.file)
		if err != nil {
			h.log.Error("password file not reloaded: keeping the users last read", zap.Error(err))
		} else {
			h.hash = users
			h.log.Info("password file reloaded", zap.String("file", h.file), zap.Int("users", len(users)))
		}
		h.mod, h.size = fi.ModTime(), fi.Size()
	}
	hash, ok := h.hash[user]
	return hash, ok
}

// OnACLCheck allows switchd and anonymous clients (let in only when
// anonymous access is allowed) everything, and a user of the password file
// what its Account says: publishing to its exact topics, subscribing to
// its read topics and the topics below them. A subscription filter with a
// wildcard is allowed only below a read topic.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	switch {
	case h.id != "" && cl.ID == h.id, h.user != "" && user == h.user:
		return true // authenticated as switchd
	case user == "" || h.file == "":
		return true // anonymous, and let in: anonymous access is allowed
	}
	acc := h.accounts[user]
	if write {
		for _, t := range acc.Publish {
			if topic == t {
				return true
			}
		}
		return false
	}
	for _, r := range acc.Read {
		if topic == r || strings.HasPrefix(topic, r+"/") {
			return true
		}
	}
	return false
}
