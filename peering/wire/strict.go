package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Strict decoding. encoding/json accepts fields the target does not have
// and keeps the last of two equal keys, matching names without regard to
// case. A peer could then pad a signed line with an unsigned field of
// 60 KB, or send one line that two decoders read differently. Every frame
// payload is therefore decoded by DecodeStrict: unknown fields, duplicate
// keys (compared as encoding/json matches them) and anything after the
// value are refused. What is relayed is never the received payload but
// the canonical encoding of what was verified (see ingest), so whitespace
// or escapes a peer adds die at the first node too.

// ErrStrictDecode reports a payload that is valid JSON but not a frame of
// this protocol version; errors wrap it with the detail.
var ErrStrictDecode = errors.New("payload is not in the frame's form")

// DecodeStrict decodes payload into v, refusing unknown fields, duplicate
// keys and trailing data.
func DecodeStrict(payload []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return fmt.Errorf("%w: %w", ErrStrictDecode, err)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", ErrStrictDecode)
	}
	// Only now is payload known to be one valid JSON value.
	return checkDuplicateKeys(payload)
}

// checkDuplicateKeys refuses an object of payload, which must be valid
// JSON, with two keys that encoding/json would map to the same field. It
// scans the bytes once without allocating: it runs on every frame,
// duplicates of lines already held included.
func checkDuplicateKeys(payload []byte) error {
	type level struct {
		object    bool
		keysStart int // this object's keys are keys[keysStart:]
	}
	var stackBuf [8]level
	var keysBuf [16][]byte
	stack, keys := stackBuf[:0], keysBuf[:0]
	wantKey := false
	for i := 0; i < len(payload); i++ {
		switch payload[i] {
		case '{', '[':
			stack = append(stack, level{object: payload[i] == '{', keysStart: len(keys)})
			wantKey = payload[i] == '{'
		case '}', ']':
			keys = keys[:stack[len(stack)-1].keysStart]
			stack = stack[:len(stack)-1]
			wantKey = false
		case ',':
			wantKey = stack[len(stack)-1].object
		case '"':
			end := i + 1
			for payload[end] != '"' {
				if payload[end] == '\\' {
					end++
				}
				end++
			}
			if wantKey {
				key := payload[i+1 : end]
				for _, seen := range keys[stack[len(stack)-1].keysStart:] {
					if sameKey(seen, key) {
						return fmt.Errorf("%w: key %q appears twice", ErrStrictDecode, key)
					}
				}
				keys = append(keys, key)
				wantKey = false
			}
			i = end
		}
	}
	return nil
}

// sameKey reports whether two raw keys name the same field for
// encoding/json, which unescapes them and ignores case.
func sameKey(a, b []byte) bool {
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return bytes.EqualFold(a, b)
	}
	var sa, sb string
	if json.Unmarshal(append(append([]byte{'"'}, a...), '"'), &sa) != nil ||
		json.Unmarshal(append(append([]byte{'"'}, b...), '"'), &sb) != nil {
		return false
	}
	return strings.EqualFold(sa, sb)
}
