package whatsminer

import (
	"bytes"
	"crypto/aes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// crypt64 is the alphabet of crypt(3)'s base-64 encoding (not RFC 4648).
const crypt64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// md5Crypt returns the hash part of the MD5-crypt ("$1$") of pw with salt:
// the 22 characters after "$1$salt$". It is Poul-Henning Kamp's algorithm
// as glibc and OpenSSL (`openssl passwd -1`) implement it. btminer uses it
// twice in its token flow; nothing here treats it as a secure hash.
func md5Crypt(pw, salt string) string {
	const magic = "$1$"
	salt = strings.TrimPrefix(salt, magic)
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > 8 {
		salt = salt[:8]
	}
	p, s := []byte(pw), []byte(salt)

	alt := md5.New()
	alt.Write(p)
	alt.Write(s)
	alt.Write(p)
	altSum := alt.Sum(nil)

	h := md5.New()
	h.Write(p)
	h.Write([]byte(magic))
	h.Write(s)
	for n := len(p); n > 0; n -= 16 {
		h.Write(altSum[:min(n, 16)])
	}
	// The bits of the length pick a NUL or the first password byte.
	for n := len(p); n != 0; n >>= 1 {
		if n&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write(p[:1])
		}
	}
	sum := h.Sum(nil)

	// 1000 rounds, meant to slow down brute force in 1994.
	for i := range 1000 {
		r := md5.New()
		if i&1 != 0 {
			r.Write(p)
		} else {
			r.Write(sum)
		}
		if i%3 != 0 {
			r.Write(s)
		}
		if i%7 != 0 {
			r.Write(p)
		}
		if i&1 != 0 {
			r.Write(sum)
		} else {
			r.Write(p)
		}
		sum = r.Sum(nil)
	}

	// The output permutes the digest bytes in groups of three.
	var out strings.Builder
	enc := func(v uint32, n int) {
		for ; n > 0; n-- {
			out.WriteByte(crypt64[v&0x3f])
			v >>= 6
		}
	}
	for _, g := range [][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		enc(uint32(sum[g[0]])<<16|uint32(sum[g[1]])<<8|uint32(sum[g[2]]), 4)
	}
	enc(uint32(sum[11]), 2)
	return out.String()
}

// session is what a get_token reply gives: the signature that goes into
// every privileged command as "token", and the AES key of the session.
type session struct {
	sign string
	key  []byte // 32 bytes, AES-256
}

// newSession derives a session from the admin password and a get_token
// reply: host_passwd_md5 = md5-crypt(password, salt); the AES key is
// SHA-256(host_passwd_md5); the token is md5-crypt(host_passwd_md5 + time,
// newsalt).
func newSession(password string, t tokenMsg) session {
	passwdMD5 := md5Crypt(password, t.Salt)
	key := sha256.Sum256([]byte(passwdMD5))
	return session{sign: md5Crypt(passwdMD5+t.Time, t.NewSalt), key: key[:]}
}

// encrypt is AES-256-ECB of plain padded with NUL bytes to whole blocks,
// in standard base64: the "data" of an {"enc":1,...} request. ECB is what
// the firmware speaks, not a choice.
func encrypt(key, plain []byte) (string, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("aes key: %w", err)
	}
	n := (len(plain) + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	buf := make([]byte, n)
	copy(buf, plain)
	ecb(buf, b.Encrypt)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// decrypt reverses encrypt and strips the NUL padding.
func decrypt(key []byte, data string) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes key: %w", err)
	}
	buf, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("encrypted reply: %w", err)
	}
	if len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return nil, errors.New("encrypted reply: not a whole number of AES blocks")
	}
	ecb(buf, b.Decrypt)
	return bytes.TrimRight(buf, "\x00"), nil
}

// ecb applies one block operation to each block of buf in place.
func ecb(buf []byte, op func(dst, src []byte)) {
	for i := 0; i < len(buf); i += aes.BlockSize {
		op(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
}
