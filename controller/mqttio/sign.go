package mqttio

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Reasons a message on a signed input (one with a publisher key) is
// rejected, beside those of ParsePayload and Check.
const (
	ReasonUnsigned     = "unsigned"      // no "sig": a bare number, or JSON without one
	ReasonBadSignature = "bad_signature" // "sig" does not verify over topic, ts and value (forged, altered, or sent to another topic)
	ReasonReplayed     = "replayed"      // ts not after the last accepted one's: a replay, or an older message
)

// SignedBytes returns the bytes a publisher signs with Ed25519 for a value
// sent on topic at ts:
//
//	<topic> "\n" <ts> "\n" <value>
//
// with no final newline, where ts is the payload's "ts" string and value
// the payload's "value" number, both exactly as they appear in the JSON
// (after JSON string unquoting for ts; the number's text is not
// reformatted). The topic is included so that a message signed for one
// signal cannot be replayed on another, and ts so that an old message
// cannot be replayed as new.
func SignedBytes(topic, ts, value string) []byte {
	b := make([]byte, 0, len(topic)+len(ts)+len(value)+2)
	b = append(b, topic...)
	b = append(b, '\n')
	b = append(b, ts...)
	b = append(b, '\n')
	return append(b, value...)
}

// Sign returns the signed payload of value sampled at ts for topic:
//
//	{"ts":"2024-08-20T19:30:00.123456789Z","value":42.5,"sig":"<base64>"}
//
// where sig is the standard (padded) base64 of the Ed25519 signature of
// SignedBytes(topic, ts, value) by key. It is what a publisher in Go sends.
func Sign(key ed25519.PrivateKey, topic string, ts time.Time, value float64) []byte {
	return SignJSON(key, topic, ts, []byte(strconv.FormatFloat(value, 'g', -1, 64)))
}

// signedPayload is what Verify reads of a signed payload; fields are raw so
// that the value's text is kept as sent.
type signedPayload struct {
	TS    json.RawMessage `json:"ts"`
	Value json.RawMessage `json:"value"`
	Sig   json.RawMessage `json:"sig"`
}

// Verify checks that payload, received on topic, carries a valid Ed25519
// signature by key over SignedBytes. It returns the signature (to tell a
// redelivered duplicate from a replay) or a Reason constant and what is
// wrong: ReasonUnsigned for a payload without "sig" (a bare number
// included), ReasonMalformed for one whose ts, value or sig cannot be
// read, ReasonBadSignature when the signature does not verify. It checks
// neither the value's plausibility nor the ts's order (see Check and
// Source). It never panics.
func Verify(key ed25519.PublicKey, topic string, payload []byte) (sig []byte, reason string, err error) {
	m, reason, err := verify(key, topic, payload, MaxPayloadBytes)
	return m.sig, reason, err
}

// signedMessage is a payload whose signature verified.
type signedMessage struct {
	ts    time.Time // the ts as signed
	value []byte    // the value's JSON text as sent
	sig   []byte
}

// verify is Verify for a payload of at most maxBytes, returning what the
// signature covers. The value may be any JSON: a structured input (a price
// forecast) signs its whole JSON object as the value.
func verify(key ed25519.PublicKey, topic string, payload []byte, maxBytes int) (m signedMessage, reason string, err error) {
	if len(payload) > maxBytes {
		return m, ReasonMalformed, fmt.Errorf("payload of %d bytes, want at most %d", len(payload), maxBytes)
	}
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || payload[0] != '{' {
		return m, ReasonUnsigned, errors.New(`this input is signed: want {"ts", "value", "sig"}, not a bare value`)
	}
	var p signedPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return m, ReasonMalformed, fmt.Errorf("decode json: %w", err)
	}
	if p.Sig == nil {
		return m, ReasonUnsigned, errors.New(`this input is signed: missing "sig"`)
	}
	var ts, sigText string
	if p.TS == nil || json.Unmarshal(p.TS, &ts) != nil {
		return m, ReasonMalformed, errors.New(`"ts": want an RFC 3339 string`)
	}
	if m.ts, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return m, ReasonMalformed, fmt.Errorf("ts: want RFC 3339 with a UTC offset: %w", err)
	}
	if p.Value == nil {
		return m, ReasonMalformed, errors.New(`missing "value"`)
	}
	if json.Unmarshal(p.Sig, &sigText) != nil {
		return m, ReasonMalformed, errors.New(`"sig": want a base64 string`)
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return m, ReasonMalformed, fmt.Errorf(`"sig": want the base64 of a %d-byte Ed25519 signature`, ed25519.SignatureSize)
	}
	m.value = bytes.TrimSpace(p.Value)
	if len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, SignedBytes(topic, ts, string(m.value)), sig) {
		return signedMessage{}, ReasonBadSignature, errors.New("signature does not verify over topic, ts and value with the publisher key")
	}
	m.sig = sig
	return m, "", nil
}

// SignJSON returns the signed payload of a structured input (value, a JSON
// object such as a price forecast) published at ts on topic: the same
// envelope as Sign, with the object as the value:
//
//	{"ts":"...","value":{...},"sig":"<base64>"}
//
// value is embedded as given (its text is what is signed), so it must be
// valid JSON.
func SignJSON(key ed25519.PrivateKey, topic string, ts time.Time, value []byte) []byte {
	t := ts.UTC().Format(time.RFC3339Nano)
	value = bytes.TrimSpace(value)
	sig := ed25519.Sign(key, SignedBytes(topic, t, string(value)))
	tsJSON, _ := json.Marshal(t) // a string: cannot fail
	var b bytes.Buffer
	b.WriteString(`{"ts":`)
	b.Write(tsJSON)
	b.WriteString(`,"value":`)
	b.Write(value)
	b.WriteString(`,"sig":"`)
	b.WriteString(base64.StdEncoding.EncodeToString(sig))
	b.WriteString(`"}`)
	return b.Bytes()
}
