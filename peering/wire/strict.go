package wire

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Strict decoding. encoding/json accepts fields the target does not have
// and keeps the last of two equal keys, matching names without regard to
// case. A peer could then pad a signed line with an unsigned field of
// 60 KB, or send one line that two decoders read differently. Every frame
// payload is therefore decoded by DecodeStrict: unknown fields, duplicate
// keys, names in another case than the protocol's, invalid UTF-8 and
// anything after the value are refused. What is relayed is never the
// received payload but the canonical encoding of what was verified (see
// ingest), so whitespace or escapes a peer adds die at the first node too.
//
// The decoder is go-json-experiment/json (the proposed encoding/json/v2),
// whose defaults already refuse duplicate names and invalid UTF-8 and whose
// names match exactly. It decodes a chat line about three times as fast as
// encoding/json with the duplicate-key scan that strictness needed on top
// of it, and every frame a node reads, a line of catch-up included, goes
// through here. Encoding stays with encoding/json: its output is what
// nodes of every version have relayed and signed around, and it is the
// cheaper half.

// ErrStrictDecode reports a payload that is valid JSON but not a frame of
// this protocol version; errors wrap it with the detail.
var ErrStrictDecode = errors.New("payload is not in the frame's form")

// strictOptions makes a member the target has no field for an error.
var strictOptions = json.RejectUnknownMembers(true)

// DecodeStrict decodes payload into v, which must hold the zero value,
// refusing unknown fields, duplicate keys and trailing data.
func DecodeStrict(payload []byte, v any) error {
	err := json.Unmarshal(payload, v, strictOptions)
	if err == nil {
		return nil
	}
	if errors.Is(err, json.ErrUnknownName) || errors.Is(err, jsontext.ErrDuplicateName) || valueThenMore(payload, err) {
		return fmt.Errorf("%w: %w", ErrStrictDecode, err)
	}
	return err
}

// valueThenMore reports whether err, from decoding payload, is about
// something after a complete JSON value: a second value or stray bytes.
// It runs only on payloads already refused.
func valueThenMore(payload []byte, err error) bool {
	var syntax *jsontext.SyntacticError
	if !errors.As(err, &syntax) {
		return false
	}
	_, first := jsontext.NewDecoder(bytes.NewReader(payload)).ReadValue()
	return first == nil
}
