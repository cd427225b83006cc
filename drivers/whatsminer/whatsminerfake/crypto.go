package whatsminerfake

import (
	"crypto/aes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// This file is the fake's own copy of btminer's crypto. It deliberately
// shares nothing with the driver: a bug copied into both would pass every
// test. Written from the algorithm descriptions (md5-crypt as in
// FreeBSD's crypt-md5.c; AES-256-ECB with NUL padding per
// device-protocols.md §5).

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// cryptMD5 returns the 22-character hash field of "$1$salt$hash".
func cryptMD5(password, salt string) string {
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw := []byte(password)

	// Digest B: password, salt, password.
	b := md5.Sum([]byte(password + salt + password))

	// Digest A: password, "$1$", salt, then len(pw) bytes of B, then one
	// byte per bit of len(pw).
	a := append([]byte{}, pw...)
	a = append(a, "$1$"+salt...)
	for left := len(pw); left > 0; left -= 16 {
		n := 16
		if left < 16 {
			n = left
		}
		a = append(a, b[:n]...)
	}
	for bits := len(pw); bits > 0; bits >>= 1 {
		if bits&1 == 1 {
			a = append(a, 0)
		} else {
			a = append(a, pw[0])
		}
	}
	d := md5.Sum(a)

	for round := 0; round < 1000; round++ {
		var in []byte
		if round%2 == 1 {
			in = append(in, pw...)
		} else {
			in = append(in, d[:]...)
		}
		if round%3 != 0 {
			in = append(in, salt...)
		}
		if round%7 != 0 {
			in = append(in, pw...)
		}
		if round%2 == 1 {
			in = append(in, d[:]...)
		} else {
			in = append(in, pw...)
		}
		d = md5.Sum(in)
	}

	order := []int{0, 6, 12, 1, 7, 13, 2, 8, 14, 3, 9, 15, 4, 10, 5}
	var sb strings.Builder
	for i := 0; i < len(order); i += 3 {
		v := int(d[order[i]])<<16 | int(d[order[i+1]])<<8 | int(d[order[i+2]])
		for range 4 {
			sb.WriteByte(itoa64[v&63])
			v >>= 6
		}
	}
	v := int(d[11])
	sb.WriteByte(itoa64[v&63])
	sb.WriteByte(itoa64[(v>>6)&63])
	return sb.String()
}

// aesKey is the session key: SHA-256 of the password's md5-crypt hash.
func aesKey(passwdMD5 string) []byte {
	k := sha256.Sum256([]byte(passwdMD5))
	return k[:]
}

// sealECB zero-pads, encrypts block by block and base64-encodes.
func sealECB(key, msg []byte) string {
	c, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	padded := make([]byte, (len(msg)+15)&^15)
	copy(padded, msg)
	out := make([]byte, len(padded))
	for off := 0; off < len(padded); off += 16 {
		c.Encrypt(out[off:off+16], padded[off:off+16])
	}
	return base64.StdEncoding.EncodeToString(out)
}

// errBase64 marks data that is not base64 (btminer code 137).
var errBase64 = errors.New("base64 decode error")

// openECB reverses sealECB; garbage in (a wrong key) is garbage out.
func openECB(key []byte, data string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(ct) == 0 || len(ct)%16 != 0 {
		return nil, errBase64
	}
	c, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(ct))
	for off := 0; off < len(ct); off += 16 {
		c.Decrypt(out[off:off+16], ct[off:off+16])
	}
	end := len(out)
	for end > 0 && out[end-1] == 0 {
		end--
	}
	return out[:end], nil
}

// randomSalt returns 8 characters like the firmware's salts.
func randomSalt() string {
	const abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [8]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = abc[int(b[i])%len(abc)]
	}
	return string(b[:])
}
